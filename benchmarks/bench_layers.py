"""Pooling and batch norm on AlexNet / ResNet activation shapes at batch 16
(single-case timings; the side-by-side ratios against PyTorch come from
`pykernels bench layers`)."""

import numpy as np
import pytest

import pykernels.functional as F

MAXPOOL = {"alexnet-pool1": (16, 64, 55, 55), "alexnet-pool2": (16, 192, 27, 27),
           "alexnet-pool5": (16, 256, 13, 13)}
BATCHNORM = {"resnet-64x56x56": (16, 64, 56, 56), "resnet-256x14x14": (16, 256, 14, 14)}


def _x(shape):
    return np.random.default_rng(0).standard_normal(shape, dtype=np.float32)


@pytest.mark.benchmark(group="max_pool2d 3x3 s2")
@pytest.mark.parametrize("name", list(MAXPOOL))
def test_max_pool2d_forward(benchmark, nthreads, name):
    x = _x(MAXPOOL[name])
    benchmark(F.max_pool2d, x, 3, 2)


@pytest.mark.benchmark(group="max_pool2d 3x3 s2 backward")
@pytest.mark.parametrize("name", list(MAXPOOL))
def test_max_pool2d_backward(benchmark, nthreads, name):
    x = _x(MAXPOOL[name])
    y, idx = F.max_pool2d(x, 3, 2)
    benchmark(F.max_pool2d_backward, np.ones_like(y), idx, x.shape)


@pytest.mark.benchmark(group="global avg pool")
def test_global_avg_pool(benchmark, nthreads):
    benchmark(F.adaptive_avg_pool2d, _x((16, 512, 7, 7)), 1)


@pytest.mark.benchmark(group="batch_norm train forward")
@pytest.mark.parametrize("name", list(BATCHNORM))
def test_batch_norm_forward(benchmark, nthreads, name):
    x = _x(BATCHNORM[name])
    c = x.shape[1]
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    w, b = np.ones(c, np.float32), np.zeros(c, np.float32)
    benchmark(F.batch_norm, x, rm, rv, w, b, True)


@pytest.mark.benchmark(group="batch_norm train backward")
@pytest.mark.parametrize("name", list(BATCHNORM))
def test_batch_norm_backward(benchmark, nthreads, name):
    x = _x(BATCHNORM[name])
    w = np.ones(x.shape[1], np.float32)
    _, mean, invstd = F.batch_norm(x, None, None, w, None, True)
    benchmark(F.batch_norm_backward, x, x, w, mean, invstd)

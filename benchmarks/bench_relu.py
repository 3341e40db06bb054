import numpy as np
import pytest

import pykernels.functional as F


@pytest.mark.benchmark(group="relu-64MiB")
def test_relu_pykernels(benchmark, big_vector, nthreads):
    out = np.empty_like(big_vector)
    benchmark(F.relu, big_vector, out=out)


@pytest.mark.benchmark(group="relu-64MiB")
def test_relu_numpy_maximum(benchmark, big_vector, nthreads):
    out = np.empty_like(big_vector)
    benchmark(np.maximum, big_vector, 0, out=out)


@pytest.mark.benchmark(group="relu-64MiB")
def test_copy_numpy(benchmark, big_vector, nthreads):
    out = np.empty_like(big_vector)
    benchmark(np.copyto, out, big_vector)


@pytest.mark.benchmark(group="relu-backward-64MiB")
def test_relu_backward_pykernels(benchmark, big_vector, nthreads):
    out = np.empty_like(big_vector)
    benchmark(F.relu_backward, big_vector, big_vector, out=out)

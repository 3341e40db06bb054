"""conv2d on AlexNet's conv3 shape (batch 4): forward and forward+backward,
pykernels and PyTorch (skipped without torch). Ratios come from
`pykernels bench conv`; this suite times single cases."""

import numpy as np
import pytest

import pykernels.functional as F

SHAPE = dict(batch=4, c=192, o=384, k=3, hw=13, padding=1)


@pytest.fixture(scope="module")
def conv3():
    rng = np.random.default_rng(0)
    s = SHAPE
    x = rng.standard_normal((s["batch"], s["c"], s["hw"], s["hw"]), dtype=np.float32)
    w = rng.standard_normal((s["o"], s["c"], s["k"], s["k"]), dtype=np.float32) * 0.05
    b = rng.standard_normal(s["o"], dtype=np.float32)
    dy = rng.standard_normal((s["batch"], s["o"], s["hw"], s["hw"]), dtype=np.float32)
    return x, w, b, dy


@pytest.mark.benchmark(group="conv3-fwd")
def test_conv_forward_pykernels(benchmark, conv3, nthreads):
    x, w, b, _ = conv3
    benchmark(F.conv2d, x, w, b, 1, SHAPE["padding"])


@pytest.mark.benchmark(group="conv3-fwd")
def test_conv_forward_torch(benchmark, conv3, nthreads):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(nthreads)
    x, w, b, _ = (torch.from_numpy(a) for a in conv3)
    with torch.no_grad():
        benchmark(torch.nn.functional.conv2d, x, w, b, 1, SHAPE["padding"])


@pytest.mark.benchmark(group="conv3-fwd-bwd")
def test_conv_forward_backward_pykernels(benchmark, conv3, nthreads):
    x, w, b, dy = conv3

    def step():
        F.conv2d(x, w, b, 1, SHAPE["padding"])
        return F.conv2d_backward(dy, x, w, 1, SHAPE["padding"])

    benchmark(step)


@pytest.mark.benchmark(group="conv3-fwd-bwd")
def test_conv_forward_backward_torch(benchmark, conv3, nthreads):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(nthreads)
    x, w, b, dy = (torch.from_numpy(a) for a in conv3)
    x, w, b = (t.clone().requires_grad_() for t in (x, w, b))

    def step():
        x.grad = w.grad = b.grad = None
        torch.nn.functional.conv2d(x, w, b, 1, SHAPE["padding"]).backward(dy)

    benchmark(step)

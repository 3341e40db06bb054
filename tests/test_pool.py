import numpy as np
import pytest

import pykernels.functional as F
import pykernels.reference as R
from pykernels._backend import cpu
from helpers import random_f32

# (input shape, kernel_size, stride, padding)
WINDOW_CASES = [
    ((2, 3, 11, 13), 3, 2, 1),
    ((1, 1, 7, 5), 2, None, 0),                # batch 1, one channel
    ((3, 5, 13, 17), (3, 2), (2, 3), (1, 1)),  # primes, rectangular
    ((2, 2, 5, 7), (7, 9), 1, (1, 1)),         # kernel as large as the padded input
    ((2, 3, 17, 19), 2, 5, 0),                 # stride larger than the kernel
    ((2, 2, 6, 6), 1, 1, 0),
    ((1, 1, 1, 1), 1, None, 0),
    ((1, 2, 56, 56), 3, 2, 1),
    ((4, 7, 3, 3), 3, 3, 1),
    ((2, 3, 9, 8), (4, 1), (1, 2), (2, 0)),
    ((1, 2, 3, 601), (2, 3), (1, 2), (1, 1)),  # rows longer than one 256-column block
]
ADAPTIVE_CASES = [((2, 3, 7, 7), 1), ((1, 1, 13, 11), (3, 4)), ((2, 2, 5, 6), (5, None)),
                  ((3, 2, 4, 5), (7, 9)), ((1, 3, 1, 1), 1), ((2, 4, 10, 17), (3, 5))]


def _torch_stride(kernel, stride):
    return kernel if stride is None else stride


@pytest.mark.parametrize("shape,k,s,p", WINDOW_CASES)
def test_max_pool_matches_reference_and_torch(rng, torch, shape, k, s, p):
    x = random_f32(rng, shape)
    y, idx = F.max_pool2d(x, k, s, p)
    ry, ridx = R.max_pool2d(x, k, s, p)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(idx, ridx)
    assert idx.dtype == np.int64
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty, tidx = torch.nn.functional.max_pool2d(tx, k, _torch_stride(k, s), p,
                                              return_indices=True)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    dy = random_f32(rng, y.shape)
    ty.backward(torch.from_numpy(dy))
    dx = F.max_pool2d_backward(dy, idx, x.shape)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, R.max_pool2d_backward(dy, idx, x.shape), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("shape,k,s,p", WINDOW_CASES)
def test_avg_pool_matches_reference_and_torch(rng, torch, shape, k, s, p):
    x = random_f32(rng, shape)
    y = F.avg_pool2d(x, k, s, p)
    np.testing.assert_allclose(y, R.avg_pool2d(x.astype(np.float64), k, s, p), rtol=1e-5,
                               atol=1e-6)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = torch.nn.functional.avg_pool2d(tx, k, _torch_stride(k, s), p)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    dy = random_f32(rng, y.shape)
    ty.backward(torch.from_numpy(dy))
    dx = F.avg_pool2d_backward(dy, x.shape, k, s, p)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, R.avg_pool2d_backward(dy.astype(np.float64), x.shape, k, s, p),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,out", ADAPTIVE_CASES)
def test_adaptive_avg_pool_matches_reference_and_torch(rng, torch, shape, out):
    x = random_f32(rng, shape)
    y = F.adaptive_avg_pool2d(x, out)
    np.testing.assert_allclose(y, R.adaptive_avg_pool2d(x.astype(np.float64), out), rtol=1e-5,
                               atol=1e-6)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = torch.nn.functional.adaptive_avg_pool2d(tx, out)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    dy = random_f32(rng, y.shape)
    ty.backward(torch.from_numpy(dy))
    dx = F.adaptive_avg_pool2d_backward(dy, x.shape)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, R.adaptive_avg_pool2d_backward(dy.astype(np.float64), x.shape),
                               rtol=1e-5, atol=1e-6)


def test_global_average_pool_resnet_shape(rng, torch):
    x = random_f32(rng, (4, 512, 7, 7))
    y = F.adaptive_avg_pool2d(x, 1)
    assert y.shape == (4, 512, 1, 1)
    np.testing.assert_allclose(y[..., 0, 0], x.astype(np.float64).mean(axis=(2, 3)), rtol=1e-5,
                               atol=1e-6)
    dx = F.adaptive_avg_pool2d_backward(np.ones_like(y), x.shape)
    np.testing.assert_allclose(dx, np.full(x.shape, 1 / 49), rtol=1e-6)


def nan_and_inf_input(rng):
    x = random_f32(rng, (2, 3, 9, 10))
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 1, 3] = np.nan      # two NaNs in one window: torch keeps the last
    x[1, 2, 4:7, 4:7] = -np.inf  # a window of nothing but -inf
    x[0, 1, 0, 0] = np.inf
    return x


def test_max_pool_nan_and_inf_like_torch(rng, torch):
    x = nan_and_inf_input(rng)
    for k, s, p in [(3, 2, 1), (2, 2, 0), (3, 1, 0)]:
        y, idx = F.max_pool2d(x, k, s, p)
        ty, tidx = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, s, p,
                                                  return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())
        ry, ridx = R.max_pool2d(x, k, s, p)
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_array_equal(idx, ridx)
    assert np.isnan(F.max_pool2d(x, 3, 2, 1)[0][0, 0, 0:2, 0:2]).all()


def test_three_dimensional_input(rng, torch):
    x = random_f32(rng, (3, 8, 9))
    y, idx = F.max_pool2d(x, 2)
    ty, tidx = torch.nn.functional.max_pool2d(torch.from_numpy(x), 2, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    assert F.max_pool2d_backward(np.ones_like(y), idx, x.shape).shape == x.shape
    np.testing.assert_allclose(F.avg_pool2d(x, 3, 2, 1),
                               torch.nn.functional.avg_pool2d(torch.from_numpy(x), 3, 2, 1).numpy(),
                               rtol=1e-6)
    assert F.avg_pool2d_backward(F.avg_pool2d(x, 3, 2, 1), x.shape, 3, 2, 1).shape == x.shape
    assert F.adaptive_avg_pool2d(x, 2).shape == (3, 2, 2)


def test_non_contiguous_input(rng):
    base = random_f32(rng, (4, 6, 20, 22))
    view = base[::2, 1::2, :, ::-1].transpose(0, 1, 3, 2)
    assert not view.flags.c_contiguous
    y, idx = F.max_pool2d(view, 3, 2, 1)
    ry, ridx = R.max_pool2d(view, 3, 2, 1)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_allclose(F.avg_pool2d(view, 2), R.avg_pool2d(view.astype(np.float64), 2),
                               rtol=1e-5, atol=1e-6)
    dy = random_f32(rng, (2, 3, 22, 20))[..., ::2, ::2]
    np.testing.assert_allclose(F.avg_pool2d_backward(dy, view.shape, 2),
                               R.avg_pool2d_backward(dy.astype(np.float64), view.shape, 2),
                               rtol=1e-5, atol=1e-6)


def test_empty_batch():
    x = np.zeros((0, 3, 8, 8), np.float32)
    y, idx = F.max_pool2d(x, 2)
    assert y.shape == idx.shape == (0, 3, 4, 4)
    assert F.max_pool2d_backward(y, idx, x.shape).shape == x.shape
    assert F.avg_pool2d(x, 3, 2, 1).shape == (0, 3, 4, 4)
    assert F.avg_pool2d_backward(np.zeros((0, 3, 4, 4), np.float32), x.shape, 3, 2, 1).shape \
        == x.shape
    assert F.adaptive_avg_pool2d(x, 1).shape == (0, 3, 1, 1)
    assert F.adaptive_avg_pool2d_backward(np.zeros((0, 3, 1, 1), np.float32), x.shape).shape \
        == x.shape


def test_one_and_two_threads_give_the_same_result(rng, threads):
    x = random_f32(rng, (8, 64, 27, 27))
    odd = np.ascontiguousarray(x[:7, :61])  # 427 planes: thread ranges split groups of 4
    for op, args, inp in [(F.max_pool2d, (3, 2), x), (F.avg_pool2d, (3, 2, 1), x),
                          (F.adaptive_avg_pool2d, ((5, 4),), x), (F.adaptive_avg_pool2d, (1,), x),
                          (F.adaptive_avg_pool2d, (1,), odd)]:
        one = threads(1, op, inp, *args)
        two = threads(2, op, inp, *args)
        for a, b in zip(one if isinstance(one, tuple) else (one,),
                        two if isinstance(two, tuple) else (two,)):
            np.testing.assert_array_equal(a, b)
    y, idx = F.max_pool2d(x, 3, 2)
    dy = random_f32(rng, y.shape)
    np.testing.assert_array_equal(threads(1, F.max_pool2d_backward, dy, idx, x.shape),
                                  threads(2, F.max_pool2d_backward, dy, idx, x.shape))
    dy = random_f32(rng, F.avg_pool2d(x, 3, 2, 1).shape)
    np.testing.assert_array_equal(threads(1, F.avg_pool2d_backward, dy, x.shape, 3, 2, 1),
                                  threads(2, F.avg_pool2d_backward, dy, x.shape, 3, 2, 1))
    dy = random_f32(rng, (8, 64, 5, 4))
    np.testing.assert_array_equal(threads(1, F.adaptive_avg_pool2d_backward, dy, x.shape),
                                  threads(2, F.adaptive_avg_pool2d_backward, dy, x.shape))


# ---- finite differences of the reference backward, float64 -------------------

def _numeric_grad(f, x, dy, eps=1e-6):
    """d(sum(dy * f(x)))/dx by central differences."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        orig = x[i]
        x[i] = orig + eps
        up = (dy * f(x)).sum()
        x[i] = orig - eps
        down = (dy * f(x)).sum()
        x[i] = orig
        g[i] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("k,s,p", [(3, 2, 1), ((2, 3), (1, 2), (1, 1)), (2, 3, 0)])
def test_reference_backward_by_finite_differences(rng, k, s, p):
    # Distinct values, well apart, so no max flips within +-eps.
    shape = (2, 2, 6, 7)
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)
    y, idx = R.max_pool2d(x, k, s, p)
    dy = rng.standard_normal(y.shape)
    numeric = _numeric_grad(lambda v: R.max_pool2d(v, k, s, p)[0], x, dy)
    np.testing.assert_allclose(R.max_pool2d_backward(dy, idx, x.shape), numeric, atol=1e-7)
    x = rng.standard_normal((2, 2, 6, 7))
    dy = rng.standard_normal(R.avg_pool2d(x, k, s, p).shape)
    numeric = _numeric_grad(lambda v: R.avg_pool2d(v, k, s, p), x, dy)
    np.testing.assert_allclose(R.avg_pool2d_backward(dy, x.shape, k, s, p), numeric, atol=1e-7)


@pytest.mark.parametrize("out", [1, (2, 3), (4, 9)])
def test_adaptive_reference_backward_by_finite_differences(rng, out):
    x = rng.standard_normal((1, 2, 5, 7))
    dy = rng.standard_normal(R.adaptive_avg_pool2d(x, out).shape)
    numeric = _numeric_grad(lambda v: R.adaptive_avg_pool2d(v, out), x, dy)
    np.testing.assert_allclose(R.adaptive_avg_pool2d_backward(dy, x.shape), numeric, atol=1e-7)


# ---- bad input -------------------------------------------------------------------

X = np.ones((2, 3, 8, 8), np.float32)


@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d])
@pytest.mark.parametrize("kwargs,match", [
    (dict(kernel_size=3, padding=2), "at most half"),
    (dict(kernel_size=(2, 4), padding=(1, 3)), "at most half"),
    (dict(kernel_size=9), "below 1"),
    (dict(kernel_size=(3, 11), padding=(0, 1)), "below 1"),
    (dict(kernel_size=0), "kernel_size"),
    (dict(kernel_size=2, stride=0), "stride"),
    (dict(kernel_size=2, padding=-1), "padding"),
    (dict(kernel_size=(2, 2, 2)), "kernel_size"),
])
def test_bad_window_parameters(op, kwargs, match):
    with pytest.raises(ValueError, match=match):
        op(X, **kwargs)


@pytest.mark.parametrize("op", [F.max_pool2d, F.avg_pool2d])
def test_bad_inputs(op):
    for shape in [(8, 8), (1, 2, 3, 8, 8), (2, 0, 8, 8), (2, 3, 0, 8)]:
        with pytest.raises(ValueError, match="x"):
            op(np.ones(shape, np.float32), 2)
    with pytest.raises(TypeError, match="float32"):
        op(X.astype(np.float64), 2)
    with pytest.raises(TypeError, match="kernel_size"):
        op(X, 2.0)
    with pytest.raises(TypeError, match="stride"):
        op(X, 2, stride=True)
    with pytest.raises(TypeError):
        op(X.tolist(), 2)


def test_bad_backward_arguments():
    y, idx = F.max_pool2d(X, 2)
    with pytest.raises(TypeError, match="int64"):
        F.max_pool2d_backward(y, idx.astype(np.int32), X.shape)
    with pytest.raises(ValueError, match="indices"):
        F.max_pool2d_backward(y, idx[..., :2], X.shape)
    with pytest.raises(ValueError, match="input_shape"):
        F.max_pool2d_backward(y, idx, (2, 4, 8, 8))
    bad = idx.copy()
    bad[0, 0, 0, 0] = 64  # one past the 8 x 8 plane
    with pytest.raises(ValueError, match="outside"):
        F.max_pool2d_backward(y, bad, X.shape)
    bad[0, 0, 0, 0] = -1
    with pytest.raises(ValueError, match="outside"):
        F.max_pool2d_backward(y, bad, X.shape)
    with pytest.raises(ValueError, match="dy"):
        F.avg_pool2d_backward(np.ones((2, 3, 3, 3), np.float32), X.shape, 2)
    with pytest.raises(ValueError, match="input_shape"):
        F.avg_pool2d_backward(np.ones((2, 3, 4, 4), np.float32), (3, 8, 8, 8, 8), 2)
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_avg_pool2d(X, 0)
    with pytest.raises(ValueError, match="dy"):
        F.adaptive_avg_pool2d_backward(np.ones((2, 4, 1, 1), np.float32), X.shape)


def test_bindings_recheck_their_arguments():
    y = np.empty((2, 3, 4, 4), np.float32)
    idx = np.empty((2, 3, 4, 4), np.int64)
    with pytest.raises(ValueError):
        cpu().max_pool2d_forward(X, y, idx, (3, 3), (2, 2), (0, 0))  # y has the wrong shape
    with pytest.raises(ValueError):
        cpu().max_pool2d_forward(X, y, idx, (2, 2), (2, 2), (2, 2))  # padding over half
    with pytest.raises(TypeError):
        cpu().max_pool2d_forward(X, y, idx.astype(np.int32), (2, 2), (2, 2), (0, 0))
    with pytest.raises(ValueError):
        cpu().avg_pool2d_backward(np.ones((2, 3, 5, 5), np.float32), np.empty_like(X),
                                  (2, 2), (2, 2), (0, 0))


def test_max_pool_ties_pick_the_same_index_as_torch(rng, torch):
    # After a ReLU most windows hold several zeros: the first in row-major
    # order must win, in the vectorized interior and at the clipped edges.
    x = np.maximum(random_f32(rng, (2, 4, 23, 29)), 0)
    x[0, 0, 5:9, 5:9] = 1.5
    for k, s, p in [(3, 2, 0), (3, 1, 1), ((2, 4), (3, 1), (1, 2))]:
        y, idx = F.max_pool2d(x, k, s, p)
        ty, tidx = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, s, p,
                                                  return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())


# ---- GPU (real CuPy, or the CPU emulator through the `cp` fixture) ---------------
# Backward passes are gathers that add in the CPU scatter's order, and the
# forward passes scan windows as the CPU does, so GPU and CPU agree bit for
# bit except the adaptive forward (the CPU sums long runs in 8 lanes).

def _gpu_max_pool_round_trip(cp, x, k, s, p, dy):
    yg, ig = F.max_pool2d(cp.asarray(x), k, s, p)
    assert isinstance(yg, cp.ndarray) and ig.dtype == np.int64
    dxg = F.max_pool2d_backward(cp.asarray(dy), ig, x.shape)
    return cp.asnumpy(yg), cp.asnumpy(ig), cp.asnumpy(dxg)


@pytest.mark.gpu
@pytest.mark.parametrize("shape,k,s,p", WINDOW_CASES)
def test_gpu_max_pool_matches_cpu_and_reference(rng, cp, shape, k, s, p):
    x = random_f32(rng, shape)
    y, idx = F.max_pool2d(x, k, s, p)
    dy = random_f32(rng, y.shape)
    yg, ig, dxg = _gpu_max_pool_round_trip(cp, x, k, s, p, dy)
    np.testing.assert_array_equal(yg, y)
    np.testing.assert_array_equal(ig, idx)
    np.testing.assert_array_equal(ig, R.max_pool2d(x, k, s, p)[1])
    np.testing.assert_array_equal(dxg, F.max_pool2d_backward(dy, idx, x.shape))
    np.testing.assert_allclose(dxg, R.max_pool2d_backward(dy.astype(np.float64), idx, x.shape),
                               rtol=1e-6, atol=1e-6)
    again = _gpu_max_pool_round_trip(cp, x, k, s, p, dy)
    for first, second in zip((yg, ig, dxg), again):
        np.testing.assert_array_equal(first, second)


@pytest.mark.gpu
@pytest.mark.parametrize("shape,k,s,p", WINDOW_CASES)
def test_gpu_avg_pool_matches_cpu_and_reference(rng, cp, shape, k, s, p):
    x = random_f32(rng, shape)
    y = F.avg_pool2d(x, k, s, p)
    dy = random_f32(rng, y.shape)
    yg = F.avg_pool2d(cp.asarray(x), k, s, p)
    dxg = F.avg_pool2d_backward(cp.asarray(dy), x.shape, k, s, p)
    np.testing.assert_array_equal(cp.asnumpy(yg), y)
    np.testing.assert_allclose(cp.asnumpy(yg), R.avg_pool2d(x.astype(np.float64), k, s, p),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cp.asnumpy(dxg), F.avg_pool2d_backward(dy, x.shape, k, s, p))
    np.testing.assert_allclose(cp.asnumpy(dxg),
                               R.avg_pool2d_backward(dy.astype(np.float64), x.shape, k, s, p),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        cp.asnumpy(F.avg_pool2d_backward(cp.asarray(dy), x.shape, k, s, p)), cp.asnumpy(dxg))


@pytest.mark.gpu
@pytest.mark.parametrize("shape,out", ADAPTIVE_CASES + [((3, 5, 1, 1), 1), ((2, 3, 13, 11), 1),
                                                        ((1, 70, 7, 7), 1)])
def test_gpu_adaptive_avg_pool_matches_cpu_and_reference(rng, cp, shape, out):
    x = random_f32(rng, shape)
    y = F.adaptive_avg_pool2d(x, out)
    dy = random_f32(rng, y.shape)
    yg = F.adaptive_avg_pool2d(cp.asarray(x), out)
    assert yg.shape == y.shape
    np.testing.assert_allclose(cp.asnumpy(yg), y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cp.asnumpy(yg), R.adaptive_avg_pool2d(x.astype(np.float64), out),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(cp.asnumpy(F.adaptive_avg_pool2d(cp.asarray(x), out)),
                                  cp.asnumpy(yg))
    dxg = F.adaptive_avg_pool2d_backward(cp.asarray(dy), x.shape)
    np.testing.assert_array_equal(cp.asnumpy(dxg), F.adaptive_avg_pool2d_backward(dy, x.shape))
    np.testing.assert_allclose(cp.asnumpy(dxg),
                               R.adaptive_avg_pool2d_backward(dy.astype(np.float64), x.shape),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_gpu_max_pool_nan_inf_and_ties_like_cpu(rng, cp):
    x = nan_and_inf_input(rng)
    relu = np.maximum(random_f32(rng, (2, 4, 23, 29)), 0)  # many tied zeros
    for inp, k, s, p in [(x, 3, 2, 1), (x, 2, 2, 0), (x, 3, 1, 0), (relu, 3, 2, 0),
                         (relu, 3, 1, 1), (relu, (2, 4), (3, 1), (1, 2))]:
        y, idx = F.max_pool2d(inp, k, s, p)
        dy = random_f32(rng, y.shape)
        yg, ig, dxg = _gpu_max_pool_round_trip(cp, inp, k, s, p, dy)
        np.testing.assert_array_equal(yg, y)
        np.testing.assert_array_equal(ig, idx)
        np.testing.assert_array_equal(dxg, F.max_pool2d_backward(dy, idx, inp.shape))
    assert np.isnan(cp.asnumpy(F.max_pool2d(cp.asarray(x), 3, 2, 1)[0])[0, 0, 0:2, 0:2]).all()


@pytest.mark.gpu
@pytest.mark.parametrize("shape,out_hw", [((2, 3, 9, 7), (4, 5)), ((1, 2, 5, 1100), (2, 3))])
def test_gpu_max_pool_backward_any_in_plane_indices(rng, cp, shape, out_hw):
    # The gather learns which outputs may point at an input from the indices
    # themselves, so any in-plane indices (not only real argmaxes) must give
    # the CPU's scatter, bit for bit. Width 1100 takes the serial fallback.
    n, c, h, w = shape
    idx = rng.integers(0, h * w, size=(n, c, *out_hw)).astype(np.int64)
    idx[0, 0, 0, :2] = [h * w - 1, 0]
    dy = random_f32(rng, idx.shape)
    dxg = F.max_pool2d_backward(cp.asarray(dy), cp.asarray(idx), shape)
    np.testing.assert_array_equal(cp.asnumpy(dxg), F.max_pool2d_backward(dy, idx, shape))
    x = random_f32(rng, shape)  # and a real pool over the wide plane
    y, real = F.max_pool2d(x, (2, 3), (2, 2), (1, 1))
    dy = random_f32(rng, y.shape)
    yg, ig, dxg = _gpu_max_pool_round_trip(cp, x, (2, 3), (2, 2), (1, 1), dy)
    np.testing.assert_array_equal(ig, real)
    np.testing.assert_array_equal(dxg, F.max_pool2d_backward(dy, real, shape))


@pytest.mark.gpu
def test_gpu_backward_writes_every_element(rng, cp):
    # The raw bindings write into given buffers: poison them first.
    from pykernels._backend import require_cuda

    cuda = require_cuda()
    x = random_f32(rng, (2, 3, 11, 13))
    y, idx = F.max_pool2d(x, 3, 2, 1)
    dy = cp.asarray(random_f32(rng, y.shape))
    idx = cp.asarray(idx)  # held: a temporary's pointer would dangle
    for run in (
        lambda dx, bad: cuda.max_pool2d_backward(dy.data.ptr, idx.data.ptr,
                                                 dx.data.ptr, bad.data.ptr, 6, 11, 13, 6, 7, 0),
        lambda dx, bad: cuda.avg_pool2d_backward(dy.data.ptr, dx.data.ptr, 6, 11, 13, 6, 7,
                                                 (3, 3), (2, 2), (1, 1), 0),
        lambda dx, bad: cuda.adaptive_avg_pool2d_backward(dy.data.ptr, dx.data.ptr, 6, 11, 13,
                                                          6, 7, 0),
    ):
        dx = cp.asarray(np.full(x.shape, np.nan, np.float32))
        bad = cp.zeros(1, dtype=cp.int32)
        run(dx, bad)
        assert not np.isnan(cp.asnumpy(dx)).any()
        assert int(cp.asnumpy(bad)[0]) == 0
    with pytest.raises(ValueError, match="does not follow"):
        cuda.avg_pool2d_forward(dy.data.ptr, dy.data.ptr, 6, 11, 13, 5, 7, (3, 3), (2, 2),
                                (1, 1), 0)
    with pytest.raises(ValueError):
        cuda.max_pool2d_forward(dy.data.ptr, dy.data.ptr, dy.data.ptr, 6, 11, 13, 6, 7, (2, 2),
                                (2, 2), (2, 2), 0)  # padding over half the kernel


@pytest.mark.gpu
def test_gpu_shapes_views_empty_batch_and_bad_input(rng, cp):
    x = random_f32(rng, (3, 8, 9))  # CHW
    yg, ig = F.max_pool2d(cp.asarray(x), 2)
    y, idx = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(cp.asnumpy(yg), y)
    np.testing.assert_array_equal(cp.asnumpy(ig), idx)
    np.testing.assert_array_equal(cp.asnumpy(F.max_pool2d_backward(yg, ig, x.shape)),
                                  F.max_pool2d_backward(y, idx, x.shape))
    np.testing.assert_array_equal(cp.asnumpy(F.avg_pool2d(cp.asarray(x), 3, 2, 1)),
                                  F.avg_pool2d(x, 3, 2, 1))
    assert F.adaptive_avg_pool2d(cp.asarray(x), 2).shape == (3, 2, 2)
    base = random_f32(rng, (4, 6, 12, 10))
    view = base[::2, 1::2, :, ::-1].transpose(0, 1, 3, 2)
    gview = cp.asarray(base)[::2, 1::2, :, ::-1].transpose(0, 1, 3, 2)
    assert not gview.flags.c_contiguous
    np.testing.assert_array_equal(cp.asnumpy(F.max_pool2d(gview, 3, 2, 1)[1]),
                                  F.max_pool2d(view, 3, 2, 1)[1])
    np.testing.assert_array_equal(cp.asnumpy(F.avg_pool2d(gview, 2)), F.avg_pool2d(view, 2))
    empty = cp.zeros((0, 3, 8, 8), dtype=cp.float32)
    ye, ie = F.max_pool2d(empty, 2)
    assert ye.shape == ie.shape == (0, 3, 4, 4)
    assert F.max_pool2d_backward(ye, ie, empty.shape).shape == empty.shape
    assert F.avg_pool2d_backward(cp.zeros((0, 3, 4, 4), dtype=cp.float32), empty.shape, 3, 2,
                                 1).shape == empty.shape
    assert F.adaptive_avg_pool2d(empty, 1).shape == (0, 3, 1, 1)
    xg = cp.asarray(X)
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(xg, 3, padding=2)
    with pytest.raises(TypeError, match="float32"):
        F.avg_pool2d(cp.asarray(X.astype(np.float64)), 2)
    yg, ig = F.max_pool2d(xg, 2)
    with pytest.raises(TypeError, match="int64"):
        F.max_pool2d_backward(yg, ig.astype(np.int32), X.shape)
    with pytest.raises(TypeError, match="NumPy"):
        F.max_pool2d_backward(yg, cp.asnumpy(ig), X.shape)
    for value in (64, -1):  # one past the 8 x 8 plane, and negative
        bad = cp.asnumpy(ig)
        bad[1, 2, 3, 3] = value
        with pytest.raises(ValueError, match="outside"):
            F.max_pool2d_backward(yg, cp.asarray(bad), X.shape)
    with pytest.raises(ValueError, match="dy"):
        F.adaptive_avg_pool2d_backward(cp.ones((2, 4, 1, 1), dtype=cp.float32), X.shape)

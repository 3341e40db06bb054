import numpy as np
import pytest

import pykernels
import pykernels.functional as F
import pykernels.reference as R
from helpers import random_f32

SHAPES = [(), (1,), (7,), (13, 17), (2, 3, 5, 7), (1, 1, 1, 1), (4097,), (3, 65537), (0,), (5, 0)]


@pytest.mark.parametrize("shape", SHAPES)
def test_relu_matches_reference(rng, shape):
    x = random_f32(rng, shape)
    y = F.relu(x)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(y, R.relu(x))
    dy = random_f32(rng, shape)
    np.testing.assert_array_equal(F.relu_backward(dy, y), R.relu_backward(dy, y))


def test_relu_special_values_match_torch(torch):
    specials = np.array([np.nan, -0.0, 0.0, -1.0, 2.0, np.inf, -np.inf, 1e-45, -1e-45],
                        dtype=np.float32)
    x = np.tile(specials, 300)  # long enough that the SIMD body runs, not just the tail
    y = F.relu(x)
    expected = torch.relu(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(y, expected)  # treats NaN == NaN
    np.testing.assert_array_equal(np.signbit(y), np.signbit(expected))  # -0.0 kept

    dy = np.linspace(-3, 3, x.size, dtype=np.float32) + 0.25
    tx = torch.from_numpy(x.copy()).requires_grad_()
    torch.relu(tx).backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(F.relu_backward(dy, y), tx.grad.numpy())


@pytest.mark.parametrize("shape", [(31,), (8, 9, 10), (2, 3, 257)])
def test_relu_random_against_torch(rng, torch, shape):
    x = random_f32(rng, shape)
    dy = random_f32(rng, shape)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty = torch.relu(tx)
    ty.backward(torch.from_numpy(dy))
    y = F.relu(x)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(F.relu_backward(dy, y), tx.grad.numpy())


def test_relu_non_contiguous_input(rng):
    base = random_f32(rng, (40, 60))
    views = [base[::2, ::3], base.T, base[:, 5:17], base[::-1]]
    assert all(not v.flags.c_contiguous for v in views)  # the copy path really runs
    for view in views:
        np.testing.assert_array_equal(F.relu(view), R.relu(view))
        np.testing.assert_array_equal(F.relu_backward(view, view), R.relu_backward(view, view))


def test_relu_out_and_in_place(rng):
    x = random_f32(rng, (33, 5))
    expected = R.relu(x)
    out = np.full_like(x, np.nan)
    assert F.relu(x, out=out) is out
    np.testing.assert_array_equal(out, expected)
    assert F.relu(x, out=x) is x
    np.testing.assert_array_equal(x, expected)


def test_relu_same_for_one_and_two_threads(rng, threads):
    x = random_f32(rng, (1 << 20) + 3)
    dy = random_f32(rng, x.shape)
    y1 = threads(1, F.relu, x)
    y2 = threads(2, F.relu, x)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(threads(1, F.relu_backward, dy, y1),
                                  threads(2, F.relu_backward, dy, y2))


def test_reference_backward_by_finite_differences(rng):
    # Central differences in float64, away from the kink at 0.
    x = rng.uniform(0.1, 1.0, size=(6, 7)) * rng.choice([-1.0, 1.0], size=(6, 7))
    dy = rng.standard_normal(x.shape)
    eps = 1e-6
    numeric = (R.relu(x + eps) - R.relu(x - eps)) / (2 * eps) * dy
    np.testing.assert_allclose(R.relu_backward(dy, R.relu(x)), numeric, rtol=1e-7, atol=1e-9)


def test_relu_backward_shape_mismatch():
    with pytest.raises(ValueError, match=r"dy: \(3,\).*y: \(4,\)"):
        F.relu_backward(np.ones(3, np.float32), np.ones(4, np.float32))


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(1,), (7,), (1 << 16) + 1, (3, 5, 7)])
def test_relu_gpu_matches_cpu(rng, cp, shape):
    x = random_f32(rng, shape)
    x[..., 0] = np.nan
    dy = random_f32(rng, shape)
    xg, dyg = cp.asarray(x), cp.asarray(dy)
    yg = F.relu(xg)
    assert isinstance(yg, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(yg), F.relu(x))
    np.testing.assert_array_equal(cp.asnumpy(F.relu_backward(dyg, yg)),
                                  F.relu_backward(dy, F.relu(x)))


@pytest.mark.gpu
def test_relu_gpu_unaligned_and_strided_views(rng, cp):
    x = random_f32(rng, (1001,))
    xg = cp.asarray(x)
    for sl in (slice(1, None), slice(3, 998), slice(None, None, 3)):
        np.testing.assert_array_equal(cp.asnumpy(F.relu(xg[sl])), R.relu(x[sl]))


@pytest.mark.gpu
@pytest.mark.real_gpu
def test_relu_gpu_runs_on_current_stream(rng):
    import cupy

    x = cupy.asarray(random_f32(rng, (1 << 22,)))
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        y = F.relu(x)
        total = float(y.sum())  # ordered after the kernel on the same stream
    assert total == pytest.approx(float(cupy.maximum(x, 0).sum()), rel=1e-5)
    assert pykernels.cuda.is_available()

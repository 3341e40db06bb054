import numpy as np
import pytest

import pykernels.functional as F
import pykernels.reference as R
from pykernels._backend import cpu
from helpers import random_f32


@pytest.mark.parametrize("shape", [(1,), (7,), (2, 3, 5, 7), (4097,), (3, 65537), (1, 1, 1, 1)])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_matches_reference_bit_for_bit(rng, shape, p):
    x = random_f32(rng, shape)
    y, mask = F.dropout(x, p, seed=12345)
    ry, rmask = R.dropout(x, p, seed=12345)
    assert mask.dtype == np.uint8 and mask.shape == x.shape
    np.testing.assert_array_equal(mask, rmask)
    np.testing.assert_array_equal(y, ry)
    np.testing.assert_array_equal(y, np.where(mask == 1, x * np.float32(1 / (1 - p)), 0))
    dy = random_f32(rng, shape)
    np.testing.assert_array_equal(F.dropout_backward(dy, mask, p), R.dropout_backward(dy, mask, p))


def test_keep_fraction_and_pairs_are_independent(rng):
    n = 1 << 22
    x = np.ones(n, np.float32)
    for p in (0.1, 0.5, 0.8):
        _, mask = F.dropout(x, p, seed=7)
        keep = 1 - p
        sigma = np.sqrt(keep * p / n)
        assert abs(mask.mean() - keep) < 5 * sigma
        # Even and odd elements share one 64-bit hash: they must still be
        # independent, as must neighbours across pairs.
        both = (mask[0::2] & mask[1::2]).mean()
        assert abs(both - keep**2) < 5 * np.sqrt(keep**2 * (1 - keep**2) / (n // 2))
        across = (mask[1:-1:2] & mask[2::2]).mean()
        assert abs(across - keep**2) < 5 * np.sqrt(keep**2 * (1 - keep**2) / (n // 2))
    y, _ = F.dropout(x, 0.5, seed=3)
    assert abs(y.mean() - 1.0) < 0.01  # inverted dropout keeps the expectation


def test_seeds_threads_and_fresh_seeds(rng, threads):
    x = random_f32(rng, (1 << 20) + 5)
    y1, m1 = threads(1, F.dropout, x, 0.3, seed=99)
    y2, m2 = threads(2, F.dropout, x, 0.3, seed=99)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(y1, y2)
    _, m3 = F.dropout(x, 0.3, seed=100)
    assert (m1 != m3).mean() > 0.3  # about 2 p (1 - p) = 0.42 of them differ
    _, fresh_a = F.dropout(x, 0.3)
    _, fresh_b = F.dropout(x, 0.3)
    assert (fresh_a != fresh_b).mean() > 0.3
    dy = random_f32(rng, x.shape)
    np.testing.assert_array_equal(threads(1, F.dropout_backward, dy, m1, 0.3),
                                  threads(2, F.dropout_backward, dy, m1, 0.3))


def test_edge_probabilities_and_eval_mode(rng):
    x = random_f32(rng, (5, 9))
    y, mask = F.dropout(x, 0.0, seed=1)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(mask, 1)
    y, mask = F.dropout(x, 1.0, seed=1)
    np.testing.assert_array_equal(y, 0)
    np.testing.assert_array_equal(mask, 0)
    np.testing.assert_array_equal(F.dropout_backward(x, mask, 1.0), 0)
    y, mask = F.dropout(x, 0.7, training=False)
    assert mask is None and y is not x
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(F.dropout_backward(x, None, 0.7), x)
    empty, emask = F.dropout(np.zeros((0, 4), np.float32), 0.5, seed=1)
    assert empty.shape == emask.shape == (0, 4)


def test_nan_and_inf_follow_torch(torch):
    # torch multiplies by the scaled mask, so a dropped NaN or inf gives NaN.
    x = np.array([np.nan, np.inf, -np.inf, 1.0] * 64, np.float32)
    y, mask = F.dropout(x, 0.5, seed=5)
    expected = torch.from_numpy(x) * torch.from_numpy(mask.astype(np.float32)) * 2.0
    np.testing.assert_array_equal(y, expected.numpy())
    dy = random_f32(np.random.default_rng(1), x.shape)
    tdx = torch.ops.aten.native_dropout_backward(torch.from_numpy(dy),
                                                 torch.from_numpy(mask.astype(bool)), 2.0)
    np.testing.assert_array_equal(F.dropout_backward(dy, mask, 0.5), tdx.numpy())


def test_keep_fraction_like_torch(torch):
    torch.manual_seed(0)
    x = np.ones(1 << 20, np.float32)
    theirs = (torch.nn.functional.dropout(torch.from_numpy(x), 0.25) != 0).float().mean().item()
    ours = F.dropout(x, 0.25, seed=0)[1].mean()
    assert abs(ours - theirs) < 0.003


def test_reference_backward_by_finite_differences(rng):
    x = rng.standard_normal((4, 6))
    dy = rng.standard_normal(x.shape)
    _, mask = R.dropout(x, 0.4, seed=11)
    eps = 1e-6
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        v = x.copy()
        v[i] += eps
        up = (dy * R.dropout(v, 0.4, seed=11)[0]).sum()
        v[i] -= 2 * eps
        down = (dy * R.dropout(v, 0.4, seed=11)[0]).sum()
        numeric[i] = (up - down) / (2 * eps)
    np.testing.assert_allclose(R.dropout_backward(dy, mask, 0.4), numeric, rtol=1e-7, atol=1e-8)


def test_bad_input(rng):
    x = random_f32(rng, (3, 4))
    for p in (-0.1, 1.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="p must lie in"):
            F.dropout(x, p)
        with pytest.raises(ValueError, match="p must lie in"):
            F.dropout_backward(x, np.ones(x.shape, np.uint8), p)
    with pytest.raises(TypeError, match="p"):
        F.dropout(x, "0.5")
    with pytest.raises(ValueError, match="seed"):
        F.dropout(x, 0.5, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        F.dropout(x, 0.5, seed=1.5)
    with pytest.raises(TypeError, match="float32"):
        F.dropout(x.astype(np.float64), 0.5)
    with pytest.raises(TypeError, match="uint8"):
        F.dropout_backward(x, np.ones(x.shape, bool), 0.5)
    with pytest.raises(ValueError, match="mask"):
        F.dropout_backward(x, np.ones((4, 3), np.uint8), 0.5)
    with pytest.raises(ValueError):
        cpu().dropout_forward(x, np.empty_like(x), np.empty(x.shape, np.uint8), 2.0, 1)
    with pytest.raises(ValueError):
        cpu().dropout_backward(x, np.empty(5, np.uint8), np.empty_like(x), 0.5)


# ---- GPU (real CuPy, or the CPU emulator through the `cp` fixture) -------------

@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(1,), (7,), (2, 3, 5, 7), (4097,), (1, 1, 1, 1), (3, 331)])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_gpu_mask_equals_cpu_mask(rng, cp, shape, p):
    x = random_f32(rng, shape)
    dy = random_f32(rng, shape)
    yg, mg = F.dropout(cp.asarray(x), p, seed=12345)
    assert isinstance(yg, cp.ndarray) and mg.dtype == np.uint8 and mg.shape == x.shape
    y, mask = F.dropout(x, p, seed=12345)
    np.testing.assert_array_equal(cp.asnumpy(mg), mask)
    np.testing.assert_array_equal(cp.asnumpy(yg), y)
    np.testing.assert_array_equal(cp.asnumpy(mg), R.dropout(x, p, seed=12345)[1])
    dxg = F.dropout_backward(cp.asarray(dy), mg, p)
    np.testing.assert_array_equal(cp.asnumpy(dxg), F.dropout_backward(dy, mask, p))
    np.testing.assert_array_equal(cp.asnumpy(dxg), R.dropout_backward(dy, mask, p))


@pytest.mark.gpu
def test_gpu_seeds_repeatability_and_unaligned_views(rng, cp):
    x = random_f32(rng, (1031,))
    xg = cp.asarray(x)
    y1, m1 = F.dropout(xg, 0.3, seed=2**64 - 1)
    y2, m2 = F.dropout(xg, 0.3, seed=2**64 - 1)
    np.testing.assert_array_equal(cp.asnumpy(m1), cp.asnumpy(m2))
    np.testing.assert_array_equal(cp.asnumpy(y1), cp.asnumpy(y2))
    np.testing.assert_array_equal(cp.asnumpy(m1), F.dropout(x, 0.3, seed=2**64 - 1)[1])
    _, m3 = F.dropout(xg, 0.3, seed=2**64 - 2)
    assert (cp.asnumpy(m1) != cp.asnumpy(m3)).mean() > 0.3
    # Views at odd offsets (unaligned: the scalar kernels) and strided views:
    # the mask depends on the index within the array, not on its address.
    for sl in (slice(1, None), slice(3, 1030), slice(None, None, 3)):
        yg, mg = F.dropout(xg[sl], 0.4, seed=77)
        y, mask = F.dropout(x[sl], 0.4, seed=77)
        np.testing.assert_array_equal(cp.asnumpy(mg), mask)
        np.testing.assert_array_equal(cp.asnumpy(yg), y)
        dyg = xg[sl]
        dxg = F.dropout_backward(dyg, mg[::-1][::-1], 0.4)
        np.testing.assert_array_equal(cp.asnumpy(dxg), F.dropout_backward(x[sl], mask, 0.4))
    # An unaligned mask for the backward pass.
    dy = random_f32(rng, (1030,))
    buf = cp.zeros(1031, dtype=cp.uint8)
    buf[1:] = F.dropout(cp.asarray(dy), 0.5, seed=3)[1]
    mask = F.dropout(dy, 0.5, seed=3)[1]
    np.testing.assert_array_equal(cp.asnumpy(F.dropout_backward(cp.asarray(dy), buf[1:], 0.5)),
                                  F.dropout_backward(dy, mask, 0.5))


@pytest.mark.gpu
def test_gpu_edge_probabilities_nan_and_eval_mode(rng, cp):
    x = random_f32(rng, (5, 9))
    x[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    xg = cp.asarray(x)
    y, mask = F.dropout(xg, 0.0, seed=1)
    np.testing.assert_array_equal(cp.asnumpy(y), x)
    np.testing.assert_array_equal(cp.asnumpy(mask), 1)
    y, mask = F.dropout(xg, 1.0, seed=1)
    np.testing.assert_array_equal(cp.asnumpy(y), F.dropout(x, 1.0, seed=1)[0])  # NaN where x is
    assert (cp.asnumpy(y)[np.isfinite(x)] == 0).all()
    np.testing.assert_array_equal(cp.asnumpy(mask), 0)
    np.testing.assert_array_equal(cp.asnumpy(F.dropout_backward(xg, mask, 1.0)),
                                  F.dropout_backward(x, cp.asnumpy(mask), 1.0))
    y, mask = F.dropout(xg, 0.5, seed=5)
    np.testing.assert_array_equal(cp.asnumpy(y), F.dropout(x, 0.5, seed=5)[0])
    y, mask = F.dropout(xg, 0.7, training=False)
    assert mask is None and isinstance(y, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(y), x)
    np.testing.assert_array_equal(cp.asnumpy(F.dropout_backward(xg, None, 0.7)), x)
    empty, emask = F.dropout(cp.zeros((0, 4), dtype=cp.float32), 0.5, seed=1)
    assert empty.shape == emask.shape == (0, 4)


@pytest.mark.gpu
def test_gpu_bad_input(rng, cp):
    x = random_f32(rng, (3, 4))
    xg = cp.asarray(x)
    with pytest.raises(ValueError, match="p must lie in"):
        F.dropout(xg, 1.5)
    with pytest.raises(TypeError, match="float32"):
        F.dropout(cp.asarray(x.astype(np.float64)), 0.5)
    with pytest.raises(TypeError, match="uint8"):
        F.dropout_backward(xg, cp.ones(x.shape, dtype=bool), 0.5)
    with pytest.raises(ValueError, match="mask"):
        F.dropout_backward(xg, cp.ones((4, 3), dtype=cp.uint8), 0.5)
    with pytest.raises(TypeError, match="NumPy"):
        F.dropout_backward(xg, np.ones(x.shape, np.uint8), 0.5)

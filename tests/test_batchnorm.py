import numpy as np
import pytest

import pykernels.functional as F
import pykernels.reference as R
from pykernels._backend import cpu
from helpers import random_f32

SHAPES = [(4, 3, 5, 7), (1, 1, 3, 3), (2, 5), (7, 3, 11), (16, 8, 13, 13), (3, 1, 2, 2),
          (1, 4, 1, 2), (5, 2, 1, 1), (31, 17)]


def _params(rng, channels, affine):
    if not affine:
        return None, None
    return rng.uniform(0.5, 2.0, channels).astype(np.float32), random_f32(rng, channels)


def _f64(v):
    return None if v is None else v.astype(np.float64)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_training_matches_reference(rng, shape, affine):
    x = random_f32(rng, shape) + 0.5
    c = shape[1]
    w, b = _params(rng, c, affine)
    rm, rv = random_f32(rng, c), rng.uniform(0.5, 2, c).astype(np.float32)
    rm64, rv64 = rm.astype(np.float64), rv.astype(np.float64)
    y, mean, invstd = F.batch_norm(x, rm, rv, w, b, True, momentum=0.3, eps=1e-3)
    ry, rmean, rinvstd = R.batch_norm(x.astype(np.float64), rm64, rv64, _f64(w), _f64(b), True,
                                      momentum=0.3, eps=1e-3)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean, rmean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(invstd, rinvstd, rtol=1e-5)
    np.testing.assert_allclose(rm, rm64, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rv, rv64, rtol=1e-5)

    dy = random_f32(rng, shape)
    dx, dw, db = F.batch_norm_backward(dy, x, w, mean, invstd)
    rdx, rdw, rdb = R.batch_norm_backward(dy.astype(np.float64), x.astype(np.float64), _f64(w),
                                          rmean, rinvstd)
    scale = np.abs(rdx).max()
    np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(dw, rdw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, rdb, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_eval_matches_reference(rng, shape, affine):
    x = random_f32(rng, shape)
    c = shape[1]
    w, b = _params(rng, c, affine)
    rm, rv = random_f32(rng, c), rng.uniform(0.5, 2, c).astype(np.float32)
    rm0, rv0 = rm.copy(), rv.copy()
    y, mean, invstd = F.batch_norm(x, rm, rv, w, b, False)
    np.testing.assert_array_equal(rm, rm0)  # eval never touches the running statistics
    np.testing.assert_array_equal(rv, rv0)
    ry, rmean, rinvstd = R.batch_norm(x.astype(np.float64), _f64(rm), _f64(rv), _f64(w), _f64(b),
                                      False)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(mean, rm)
    np.testing.assert_allclose(invstd, rinvstd, rtol=1e-6)
    dy = random_f32(rng, shape)
    dx, dw, db = F.batch_norm_backward(dy, x, w, mean, invstd, training=False)
    rdx, rdw, rdb = R.batch_norm_backward(dy.astype(np.float64), x.astype(np.float64), _f64(w),
                                          rmean, rinvstd, training=False)
    np.testing.assert_allclose(dx, rdx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, rdw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, rdb, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(4, 3, 5, 7), (2, 5), (7, 3, 11), (1, 6, 13, 11), (9, 1, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_matches_torch_including_running_stats_and_autograd(rng, torch, shape, training):
    tf = torch.nn.functional
    x = random_f32(rng, shape) * 3 + 1
    c = shape[1]
    w, b = _params(rng, c, True)
    rm, rv = random_f32(rng, c), rng.uniform(0.5, 2, c).astype(np.float32)
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    tx = torch.from_numpy(x.copy()).requires_grad_()
    tw = torch.from_numpy(w.copy()).requires_grad_()
    tb = torch.from_numpy(b.copy()).requires_grad_()
    ty = tf.batch_norm(tx, trm, trv, tw, tb, training, 0.2, 1e-4)
    y, mean, invstd = F.batch_norm(x, rm, rv, w, b, training, 0.2, 1e-4)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-6, atol=1e-6)
    dy = random_f32(rng, shape)
    ty.backward(torch.from_numpy(dy))
    dx, dw, db = F.batch_norm_backward(dy, x, w, mean, invstd, training=training)
    # With N = 2 (shape (2, 5)) dx is a difference of O(|dy| * w * invstd)
    # terms that nearly cancel, so the tolerance is on that scale.
    scale = np.abs(dy).max() * np.abs(w * invstd).max()
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_running_stats_none_in_training(rng, torch):
    x = random_f32(rng, (6, 4, 3, 3))
    y, mean, invstd = F.batch_norm(x, None, None, None, None, True)
    ty = torch.nn.functional.batch_norm(torch.from_numpy(x), None, None, training=True)
    np.testing.assert_allclose(y, ty.numpy(), rtol=1e-4, atol=1e-5)


def test_large_offset_stays_accurate(rng):
    # 1000 + N(0, 1): naive E[x^2] - E[x]^2 in float32 loses every digit here.
    x = (1000.0 + rng.standard_normal((32, 4, 24, 24))).astype(np.float32)
    w, b = _params(rng, 4, True)
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32)
    y, mean, invstd = F.batch_norm(x, rm, rv, w, b, True)
    x64 = x.astype(np.float64)
    ry, rmean, rinvstd = R.batch_norm(x64, np.zeros(4), np.ones(4), _f64(w), _f64(b), True)

    def rel(a, ref):
        return np.abs(a - ref).max() / np.abs(ref).max()

    assert rel(y, ry) < 1e-4
    assert rel(invstd, rinvstd) < 1e-4
    assert rel(mean, rmean) < 1e-6
    assert rel(rv, 0.9 + 0.1 * x64.var(axis=(0, 2, 3), ddof=1)) < 1e-4
    dy = random_f32(rng, x.shape)
    dx, dw, db = F.batch_norm_backward(dy, x, w, mean, invstd)
    rdx, rdw, rdb = R.batch_norm_backward(dy.astype(np.float64), x64, _f64(w), rmean, rinvstd)
    assert rel(dx, rdx) < 1e-4
    assert rel(dw, rdw) < 1e-4
    assert rel(db, rdb) < 1e-5


def test_one_and_two_threads_give_the_same_result(rng, threads):
    for shape in [(16, 64, 14, 14), (4, 3, 100, 100), (512, 256)]:
        x = random_f32(rng, shape)
        c = shape[1]
        w, b = _params(rng, c, True)
        dy = random_f32(rng, shape)
        results = []
        for n in (1, 2):
            rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
            y, mean, invstd = threads(n, F.batch_norm, x, rm, rv, w, b, True)
            grads = threads(n, F.batch_norm_backward, dy, x, w, mean, invstd)
            results.append((y, mean, invstd, rm, rv, *grads))
        for a, b2 in zip(*results):
            np.testing.assert_array_equal(a, b2)


def test_weight_without_bias_and_bias_without_weight(rng, torch):
    x = random_f32(rng, (5, 3, 4, 4))
    w, b = _params(rng, 3, True)
    for weight, bias in [(w, None), (None, b)]:
        y, _, _ = F.batch_norm(x, None, None, weight, bias, True)
        ty = torch.nn.functional.batch_norm(
            torch.from_numpy(x), None, None, None if weight is None else torch.from_numpy(weight),
            None if bias is None else torch.from_numpy(bias), True)
        np.testing.assert_allclose(y, ty.numpy(), rtol=1e-4, atol=1e-5)


def test_non_contiguous_input(rng):
    base = random_f32(rng, (6, 8, 10, 12))
    x = base[::2, ::2].transpose(0, 1, 3, 2)
    dy = random_f32(rng, x.shape)
    y, mean, invstd = F.batch_norm(x, None, None, None, None, True)
    ry, rmean, rinvstd = R.batch_norm(x.astype(np.float64), None, None, None, None, True)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)
    dx = F.batch_norm_backward(dy.T.copy().T, x, None, mean, invstd)[0]
    rdx = R.batch_norm_backward(dy.astype(np.float64), x.astype(np.float64), None, rmean,
                                rinvstd)[0]
    np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-5)


def test_empty_batch():
    x = np.zeros((0, 3, 4, 4), np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    y, mean, invstd = F.batch_norm(x, rm, rv, None, None, True)
    assert y.shape == x.shape and mean.shape == (3,)
    np.testing.assert_array_equal(rm, 0)  # no statistics, no update
    y, mean, invstd = F.batch_norm(x, rm, rv, None, None, False)
    assert y.shape == x.shape
    dx, dw, db = F.batch_norm_backward(x, x, None, mean, invstd)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(db, 0)


# ---- finite differences of the reference backward, float64 -------------------

@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(3, 2, 2, 3), (5, 3)])
def test_reference_backward_by_finite_differences(rng, shape, training):
    x = rng.standard_normal(shape) + 0.3
    c = shape[1]
    w, b = rng.uniform(0.5, 2, c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    dy = rng.standard_normal(shape)

    def loss(x_, w_, b_):
        return (dy * R.batch_norm(x_, rm.copy(), rv.copy(), w_, b_, training)[0]).sum()

    _, mean, invstd = R.batch_norm(x, rm.copy(), rv.copy(), w, b, training)
    dx, dw, db = R.batch_norm_backward(dy, x, w, mean, invstd, training=training)
    eps = 1e-6
    for analytic, arg in ((dx, 0), (dw, 1), (db, 2)):
        args = [x, w, b]
        numeric = np.zeros_like(args[arg])
        for i in np.ndindex(args[arg].shape):
            v = args[arg].copy()
            v[i] += eps
            up = loss(*[v if j == arg else a for j, a in enumerate(args)])
            v[i] -= 2 * eps
            down = loss(*[v if j == arg else a for j, a in enumerate(args)])
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


# ---- bad input -------------------------------------------------------------------

def test_bad_input(rng):
    x = random_f32(rng, (4, 3, 2, 2))
    z3, o3 = np.zeros(3, np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match="x"):
        F.batch_norm(np.ones(3, np.float32), None, None, None, None, True)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(x, np.zeros(4, np.float32), o3, None, None, True)
    with pytest.raises(ValueError, match="weight"):
        F.batch_norm(x, z3, o3, np.ones((3, 1), np.float32), None, True)
    with pytest.raises(TypeError, match="running_var"):
        F.batch_norm(x, z3, np.ones(3), None, None, True)
    with pytest.raises(ValueError, match="in place"):
        F.batch_norm(x, np.zeros(6, np.float32)[::2], o3, None, None, True)
    with pytest.raises(ValueError, match="more than 1 value"):
        F.batch_norm(np.ones((1, 3), np.float32), z3, o3, None, None, True)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(x, None, None, None, None, False)
    with pytest.raises(TypeError, match="float32"):
        F.batch_norm(x.astype(np.float64), z3, o3, None, None, True)
    with pytest.raises(ValueError, match="eps"):
        F.batch_norm(x, z3, o3, None, None, True, eps=0.0)
    with pytest.raises(ValueError, match="dy"):
        F.batch_norm_backward(x[:2], x, None, z3, o3)
    with pytest.raises(ValueError, match="save_invstd"):
        F.batch_norm_backward(x, x, None, z3, np.ones(2, np.float32))
    # the binding re-checks what Python would have caught
    with pytest.raises(ValueError):
        cpu().batch_norm_forward(x, None, None, z3, o3, True, 0.1, 1e-5, np.empty_like(x),
                                 np.empty(2, np.float32), np.empty(3, np.float32))
    with pytest.raises(ValueError):
        cpu().batch_norm_forward(x, None, None, None, None, False, 0.1, 1e-5, np.empty_like(x),
                                 np.empty(3, np.float32), np.empty(3, np.float32))


def test_eval_backward_ignores_x(rng, torch):
    # In eval mode the statistics are constants: dx = dy * weight * invstd,
    # so an inf in x must not leak into dx.
    x = random_f32(rng, (3, 4, 5, 5))
    x[0, 1, 2, 2] = np.inf
    for shape_x in (x, x[:, :, 0, 0]):
        c = shape_x.shape[1]
        w = rng.uniform(0.5, 2, c).astype(np.float32)
        rm, rv = np.zeros(c, np.float32), np.full(c, 4.0, np.float32)
        _, mean, invstd = F.batch_norm(shape_x, rm, rv, w, None, False)
        dy = random_f32(rng, shape_x.shape)
        dx = F.batch_norm_backward(dy, shape_x, w, mean, invstd, training=False)[0]
        tw = torch.from_numpy(w)
        tdx = dy * (tw / torch.sqrt(torch.from_numpy(rv) + 1e-5)).numpy().reshape(
            1, c, *([1] * (shape_x.ndim - 2)))
        np.testing.assert_allclose(dx, tdx, rtol=1e-6)


# ---- GPU (real CuPy on a GPU machine, the CPU emulator elsewhere) -------------

GPU_SHAPES = [(4, 3, 5, 7), (1, 1, 3, 3), (2, 5), (7, 3, 11), (3, 1, 2, 2), (1, 4, 1, 2),
              (5, 2, 1, 1), (31, 17),
              (3, 2, 47, 31),   # 4371 values per channel: two tiles of the planar layout
              (1, 3, 67, 67),   # batch 1, two tiles
              (300, 40),        # (N, C): three row tiles, two 32-channel groups
              # S % 4 == 0: float4 chunks
              (3, 2, 44, 36),   # 4752 values per channel: two tiles, the last partial
              (5, 3, 4, 6),     # S = 24: a thread's chunks 1024 values apart cross images
              (2, 2, 64, 64)]   # a tile per image


def _gpu(cp, *arrays):
    return [None if a is None else cp.asarray(a) for a in arrays]


def _host(cp, *arrays):
    return [cp.asnumpy(a) for a in arrays]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_gpu_training_matches_cpu_and_reference(rng, poisoned, shape, affine):
    cp = poisoned
    x = random_f32(rng, shape) * 3 + 0.5
    c = shape[1]
    w, b = _params(rng, c, affine)
    rm, rv = random_f32(rng, c), rng.uniform(0.5, 2, c).astype(np.float32)
    xg, wg, bg, rmg, rvg = _gpu(cp, x, w, b, rm, rv)
    rm64, rv64 = rm.astype(np.float64), rv.astype(np.float64)
    y, mean, invstd = _host(cp, *F.batch_norm(xg, rmg, rvg, wg, bg, True, momentum=0.3, eps=1e-3))
    cy, cmean, cinvstd = F.batch_norm(x, rm, rv, w, b, True, momentum=0.3, eps=1e-3)
    ry, rmean, rinvstd = R.batch_norm(x.astype(np.float64), rm64, rv64, _f64(w), _f64(b), True,
                                      momentum=0.3, eps=1e-3)
    for got, cpu_value, ref in ((y, cy, ry), (mean, cmean, rmean), (invstd, cinvstd, rinvstd)):
        np.testing.assert_allclose(got, cpu_value, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # running statistics updated in place, as the CPU did
    np.testing.assert_allclose(cp.asnumpy(rmg), rm, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cp.asnumpy(rvg), rv, rtol=1e-5)
    np.testing.assert_allclose(cp.asnumpy(rvg), rv64, rtol=1e-5)

    dy = random_f32(rng, shape)
    dx, dw, db = _host(cp, *F.batch_norm_backward(cp.asarray(dy), xg, wg, cp.asarray(mean),
                                                  cp.asarray(invstd)))
    cdx, cdw, cdb = F.batch_norm_backward(dy, x, w, cmean, cinvstd)
    rdx, rdw, rdb = R.batch_norm_backward(dy.astype(np.float64), x.astype(np.float64), _f64(w),
                                          rmean, rinvstd)
    # dx is a difference of O(|dy| * w * invstd) terms that nearly cancel at
    # N = 2, so the tolerance is on that scale.
    scale = np.abs(dy).max() * np.abs(rinvstd * (1.0 if w is None else w)).max()
    for got in (dx, cdx):
        np.testing.assert_allclose(got, rdx, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(dw, rdw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, rdb, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dw, cdw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, cdb, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
def test_gpu_eval_matches_cpu_and_reference(rng, poisoned, shape):
    cp = poisoned
    x = random_f32(rng, shape)
    c = shape[1]
    w, b = _params(rng, c, True)
    rm, rv = random_f32(rng, c), rng.uniform(0.5, 2, c).astype(np.float32)
    xg, wg, bg, rmg, rvg = _gpu(cp, x, w, b, rm, rv)
    y, mean, invstd = _host(cp, *F.batch_norm(xg, rmg, rvg, wg, bg, False))
    np.testing.assert_array_equal(cp.asnumpy(rmg), rm)  # eval leaves them alone
    np.testing.assert_array_equal(cp.asnumpy(rvg), rv)
    cy, cmean, cinvstd = F.batch_norm(x, rm, rv, w, b, False)
    ry, _, _ = R.batch_norm(x.astype(np.float64), _f64(rm), _f64(rv), _f64(w), _f64(b), False)
    np.testing.assert_allclose(y, cy, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(mean, cmean)
    np.testing.assert_array_equal(invstd, cinvstd)  # same double formula on both
    dy = random_f32(rng, shape)
    dx, dw, db = _host(cp, *F.batch_norm_backward(cp.asarray(dy), xg, wg, cp.asarray(mean),
                                                  cp.asarray(invstd), training=False))
    cdx, cdw, cdb = F.batch_norm_backward(dy, x, w, cmean, cinvstd, training=False)
    np.testing.assert_array_equal(dx, cdx)  # dx = a * dy with the same a
    np.testing.assert_allclose(dw, cdw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, cdb, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(8, 3, 30, 30), (600, 3)])
def test_gpu_large_offset_stays_accurate(rng, cp, shape):
    # 1000 + N(0, 1), several tiles per channel in both layouts.
    x = (1000.0 + rng.standard_normal(shape)).astype(np.float32)
    c = shape[1]
    w, b = _params(rng, c, True)
    rmg, rvg = cp.zeros(c, dtype=np.float32), cp.ones(c, dtype=np.float32)
    xg, wg, bg = _gpu(cp, x, w, b)
    y, mean, invstd = _host(cp, *F.batch_norm(xg, rmg, rvg, wg, bg, True))
    x64 = x.astype(np.float64)
    ry, rmean, rinvstd = R.batch_norm(x64, np.zeros(c), np.ones(c), _f64(w), _f64(b), True)
    axes = (0,) + tuple(range(2, x.ndim))

    def rel(a, ref):
        return np.abs(a - ref).max() / np.abs(ref).max()

    assert rel(y, ry) < 1e-4
    assert rel(invstd, rinvstd) < 1e-4
    assert rel(mean, rmean) < 1e-6
    assert rel(cp.asnumpy(rvg), 0.9 + 0.1 * x64.var(axis=axes, ddof=1)) < 1e-4
    dy = random_f32(rng, shape)
    dx, dw, db = _host(cp, *F.batch_norm_backward(cp.asarray(dy), xg, wg, cp.asarray(mean),
                                                  cp.asarray(invstd)))
    rdx, rdw, rdb = R.batch_norm_backward(dy.astype(np.float64), x64, _f64(w), rmean, rinvstd)
    assert rel(dx, rdx) < 1e-4
    assert rel(dw, rdw) < 1e-4
    assert rel(db, rdb) < 1e-5


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(3, 2, 47, 31), (300, 40)])
def test_gpu_runs_are_bitwise_equal(rng, cp, shape):
    x = random_f32(rng, shape)
    c = shape[1]
    w, b = _params(rng, c, True)
    dy = random_f32(rng, shape)
    xg, wg, bg, dyg = _gpu(cp, x, w, b, dy)
    results = []
    for _ in range(2):
        rmg, rvg = cp.zeros(c, dtype=np.float32), cp.ones(c, dtype=np.float32)
        y, mean, invstd = F.batch_norm(xg, rmg, rvg, wg, bg, True)
        grads = F.batch_norm_backward(dyg, xg, wg, mean, invstd)
        results.append(_host(cp, y, mean, invstd, rmg, rvg, *grads))
    for first, second in zip(*results):
        np.testing.assert_array_equal(first, second)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(3, 2, 44, 36), (5, 3, 4, 6)])
def test_gpu_misaligned_tensors_take_scalar_loads(rng, cp, shape):
    """A view one float into its buffer cannot take float4 loads: the same
    tiles summed in another order inside a thread, so close, not bitwise."""
    x, dy = random_f32(rng, shape) * 3 + 0.5, random_f32(rng, shape)
    size = x.size
    buffers = cp.asarray(np.concatenate([[7.0], x.ravel(), [7.0], dy.ravel()]).astype(np.float32))
    x_off = buffers[1:1 + size].reshape(shape)
    dy_off = buffers[2 + size:].reshape(shape)
    assert x_off.data.ptr % 16 != 0 and dy_off.data.ptr % 16 != 0
    results = []
    for xg, dyg in ((x_off, dy_off), (cp.asarray(x), cp.asarray(dy))):
        y, mean, invstd = F.batch_norm(xg, None, None, None, None, True)
        results.append(_host(cp, y, mean, invstd, *F.batch_norm_backward(dyg, xg, None, mean,
                                                                         invstd)[:1]))
    ry, rmean, rinvstd = R.batch_norm(x.astype(np.float64), None, None, None, None, True)
    rdx = R.batch_norm_backward(dy.astype(np.float64), x.astype(np.float64), None, rmean,
                                rinvstd)[0]
    for got in results:
        for value, ref in zip(got, (ry, rmean, rinvstd, rdx)):
            np.testing.assert_allclose(value, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_gpu_non_contiguous_input_and_no_running_stats(rng, cp):
    base = random_f32(rng, (6, 8, 10, 12))
    x = base[::2, ::2].transpose(0, 1, 3, 2)
    dy = random_f32(rng, x.shape)
    xg = cp.asarray(base)[::2, ::2].transpose(0, 1, 3, 2)
    y, mean, invstd = F.batch_norm(xg, None, None, None, None, True)
    ry, rmean, rinvstd = R.batch_norm(x.astype(np.float64), None, None, None, None, True)
    np.testing.assert_allclose(cp.asnumpy(y), ry, rtol=1e-5, atol=1e-5)
    dx = F.batch_norm_backward(cp.asarray(dy.T.copy()).T, xg, None, mean, invstd)[0]
    rdx = R.batch_norm_backward(dy.astype(np.float64), x.astype(np.float64), None, rmean,
                                rinvstd)[0]
    np.testing.assert_allclose(cp.asnumpy(dx), rdx, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_gpu_empty_batch_and_eval_backward_ignores_x(rng, cp):
    x = cp.zeros((0, 3, 4, 4), dtype=np.float32)
    rmg, rvg = cp.zeros(3, dtype=np.float32), cp.ones(3, dtype=np.float32)
    y, mean, invstd = F.batch_norm(x, rmg, rvg, None, None, True)
    assert y.shape == x.shape and np.isnan(cp.asnumpy(mean)).all()
    np.testing.assert_array_equal(cp.asnumpy(rmg), 0)
    y, mean, invstd = F.batch_norm(x, rmg, rvg, None, None, False)
    dx, dw, db = F.batch_norm_backward(x, x, None, mean, invstd)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(cp.asnumpy(db), 0)

    h = random_f32(rng, (3, 4, 5, 5))
    h[0, 1, 2, 2] = np.inf
    w = rng.uniform(0.5, 2, 4).astype(np.float32)
    rm, rv = np.zeros(4, np.float32), np.full(4, 4.0, np.float32)
    dy = random_f32(rng, h.shape)
    hg, wg, rmg, rvg, dyg = _gpu(cp, h, w, rm, rv, dy)
    _, mean, invstd = F.batch_norm(hg, rmg, rvg, wg, None, False)
    dx = cp.asnumpy(F.batch_norm_backward(dyg, hg, wg, mean, invstd, training=False)[0])
    assert np.isfinite(dx).all()
    np.testing.assert_allclose(dx, dy * (w / np.sqrt(rv + 1e-5)).reshape(1, 4, 1, 1), rtol=1e-6)


@pytest.mark.gpu
def test_gpu_bad_input(rng, cp):
    x = random_f32(rng, (4, 3, 2, 2))
    xg = cp.asarray(x)
    z3, o3 = cp.zeros(3, dtype=np.float32), cp.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="running_mean"):
        F.batch_norm(xg, np.zeros(3, np.float32), o3, None, None, True)
    with pytest.raises(TypeError, match="weight"):
        F.batch_norm(xg, z3, o3, np.ones(3, np.float32), None, True)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(xg, cp.zeros(4, dtype=np.float32), o3, None, None, True)
    with pytest.raises(ValueError, match="in place"):
        F.batch_norm(xg, cp.zeros(6, dtype=np.float32)[::2], o3, None, None, True)
    with pytest.raises(ValueError, match="more than 1 value"):
        F.batch_norm(cp.ones((1, 3), dtype=np.float32), z3, o3, None, None, True)
    with pytest.raises(ValueError, match="running_mean and running_var"):
        F.batch_norm(xg, None, None, None, None, False)
    with pytest.raises(TypeError, match="float32"):
        F.batch_norm(cp.asarray(x.astype(np.float64)), z3, o3, None, None, True)
    with pytest.raises(ValueError, match="save_invstd"):
        F.batch_norm_backward(xg, xg, None, z3, cp.ones(2, dtype=np.float32))
    with pytest.raises(TypeError, match="NumPy"):
        F.batch_norm_backward(x, xg, None, z3, o3)

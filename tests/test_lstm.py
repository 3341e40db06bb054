import numpy as np
import pytest

import pykernels
import pykernels.functional as F
import pykernels.reference as R
from pykernels.bench.peak import available_isas
from helpers import random_f32

# (T, N, I, H): T = 1, N = 1, H not a multiple of 8 or 16, I != H.
LAYER_SHAPES = [(1, 3, 5, 7), (4, 1, 6, 13), (6, 5, 17, 11), (3, 4, 32, 32), (2, 2, 1, 19)]


def make_params(rng, n, i, h, scale=0.5):
    return dict(
        x=random_f32(rng, (n, i), -1, 1), h=random_f32(rng, (n, h), -1, 1),
        c=random_f32(rng, (n, h), -1, 1),
        w_ih=random_f32(rng, (4 * h, i), -scale, scale),
        w_hh=random_f32(rng, (4 * h, h), -scale, scale),
        b_ih=random_f32(rng, (4 * h,), -scale, scale),
        b_hh=random_f32(rng, (4 * h,), -scale, scale))


def torch_lstm(torch, p, x, h0, c0):
    i, h = p["w_ih"].shape[1], p["w_hh"].shape[1]
    mod = torch.nn.LSTM(i, h)
    with torch.no_grad():
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            torch_name = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0",
                          "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}[name]
            getattr(mod, torch_name).copy_(torch.from_numpy(p[name]))
    tx = torch.from_numpy(x.copy()).requires_grad_()
    th0 = torch.from_numpy(h0.copy())[None].requires_grad_()
    tc0 = torch.from_numpy(c0.copy())[None].requires_grad_()
    y, (hn, cn) = mod(tx, (th0, tc0))
    return mod, tx, th0, tc0, y, hn[0], cn[0]


@pytest.mark.parametrize("algo", ["fused", "naive"])
@pytest.mark.parametrize("n,i,h", [(1, 5, 7), (4, 9, 13), (3, 16, 16), (2, 3, 33)])
def test_cell_matches_torch(rng, torch, algo, n, i, h):
    p = make_params(rng, n, i, h)
    cell = torch.nn.LSTMCell(i, h)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(p["w_ih"]))
        cell.weight_hh.copy_(torch.from_numpy(p["w_hh"]))
        cell.bias_ih.copy_(torch.from_numpy(p["b_ih"]))
        cell.bias_hh.copy_(torch.from_numpy(p["b_hh"]))
    tx, th, tc = (torch.from_numpy(p[k].copy()).requires_grad_() for k in ("x", "h", "c"))
    th1, tc1 = cell(tx, (th, tc))
    dh1, dc1 = random_f32(rng, (n, h)), random_f32(rng, (n, h))
    (th1 * torch.from_numpy(dh1)).sum().add((tc1 * torch.from_numpy(dc1)).sum()).backward()

    h1, c1, gates = F.lstm_cell(**p, algo=algo)
    np.testing.assert_allclose(h1, th1.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c1, tc1.detach().numpy(), rtol=1e-5, atol=1e-6)
    dx, dh, dc, dw_ih, dw_hh, db = F.lstm_cell_backward(
        dh1, dc1, p["x"], p["h"], p["c"], p["w_ih"], p["w_hh"], gates)
    for got, want in [(dx, tx.grad), (dh, th.grad), (dc, tc.grad), (dw_ih, cell.weight_ih.grad),
                      (dw_hh, cell.weight_hh.grad), (db, cell.bias_ih.grad),
                      (db, cell.bias_hh.grad)]:
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("algo", ["fused", "naive"])
@pytest.mark.parametrize("t,n,i,h", LAYER_SHAPES)
def test_layer_matches_torch(rng, torch, algo, t, n, i, h):
    p = make_params(rng, n, i, h)
    x = random_f32(rng, (t, n, i), -1, 1)
    mod, tx, th0, tc0, ty, thn, tcn = torch_lstm(torch, p, x, p["h"], p["c"])
    dy, dhn, dcn = (random_f32(rng, s) for s in ((t, n, h), (n, h), (n, h)))
    loss = (ty * torch.from_numpy(dy)).sum() + (thn * torch.from_numpy(dhn)).sum() + \
        (tcn * torch.from_numpy(dcn)).sum()
    loss.backward()

    y, hn, cn, cache = F.lstm(x, p["h"], p["c"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                              algo=algo)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hn, thn.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cn, tcn.detach().numpy(), rtol=1e-5, atol=1e-6)
    dx, dh0, dc0, dw_ih, dw_hh, db = F.lstm_backward(dy, dhn, dcn, cache)
    for got, want in [(dx, tx.grad), (dh0, th0.grad[0]), (dc0, tc0.grad[0]),
                      (dw_ih, mod.weight_ih_l0.grad), (dw_hh, mod.weight_hh_l0.grad),
                      (db, mod.bias_ih_l0.grad)]:
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)


def test_long_sequence_stays_finite_and_agrees(rng, torch):
    t, n, i, h = 200, 4, 24, 20
    p = make_params(rng, n, i, h, scale=0.8)
    x = random_f32(rng, (t, n, i), -2, 2)
    mod, tx, th0, tc0, ty, thn, tcn = torch_lstm(torch, p, x, p["h"], p["c"])
    dy = random_f32(rng, (t, n, h))
    (ty * torch.from_numpy(dy)).sum().backward()
    y, hn, cn, cache = F.lstm(x, p["h"], p["c"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    grads = F.lstm_backward(dy, np.zeros((n, h), np.float32), np.zeros((n, h), np.float32), cache)
    assert all(np.isfinite(g).all() for g in (y, hn, cn, *grads))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads[0], tx.grad.numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(grads[3], mod.weight_ih_l0.grad.numpy(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("t,n,i,h", LAYER_SHAPES[:3])
def test_layer_matches_reference(rng, t, n, i, h):
    p = make_params(rng, n, i, h)
    x = random_f32(rng, (t, n, i), -1, 1)
    args64 = [a.astype(np.float64) for a in (x, p["h"], p["c"], p["w_ih"], p["w_hh"],
                                              p["b_ih"], p["b_hh"])]
    y, hn, cn, cache = F.lstm(x, p["h"], p["c"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    yr, hr, cr, cache_r = R.lstm(*args64)
    np.testing.assert_allclose(y, yr, rtol=1e-5, atol=1e-6)
    dy, dhn, dcn = (random_f32(rng, s) for s in ((t, n, h), (n, h), (n, h)))
    got = F.lstm_backward(dy, dhn, dcn, cache)
    want = R.lstm_backward(dy.astype(np.float64), dhn.astype(np.float64),
                           dcn.astype(np.float64), cache_r)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_reference_layer_backward_by_finite_differences(rng):
    t, n, i, h = 3, 2, 3, 4
    x = rng.standard_normal((t, n, i))
    h0, c0 = rng.standard_normal((n, h)), rng.standard_normal((n, h))
    w_ih, w_hh = rng.standard_normal((4 * h, i)) * 0.5, rng.standard_normal((4 * h, h)) * 0.5
    b_ih, b_hh = rng.standard_normal(4 * h) * 0.5, rng.standard_normal(4 * h) * 0.5
    dy, dhn, dcn = rng.standard_normal((t, n, h)), rng.standard_normal((n, h)), \
        rng.standard_normal((n, h))
    params = [x, h0, c0, w_ih, w_hh, b_ih, b_hh]

    def loss(ps):
        y, hn, cn, _ = R.lstm(*ps)
        return np.sum(y * dy) + np.sum(hn * dhn) + np.sum(cn * dcn)

    _, _, _, cache = R.lstm(*params)
    dx, dh0, dc0, dw_ih, dw_hh, db = R.lstm_backward(dy, dhn, dcn, cache)
    eps = 1e-6
    for index, analytic in [(0, dx), (1, dh0), (2, dc0), (3, dw_ih), (4, dw_hh), (5, db),
                            (6, db)]:
        numeric = np.zeros_like(params[index])
        for idx in np.ndindex(params[index].shape):
            plus = [p.copy() for p in params]
            minus = [p.copy() for p in params]
            plus[index][idx] += eps
            minus[index][idx] -= eps
            numeric[idx] = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_one_and_two_threads_equal(rng, threads):
    t, n, i, h = 5, 9, 40, 37
    p = make_params(rng, n, i, h)
    x = random_f32(rng, (t, n, i), -1, 1)
    dy = random_f32(rng, (t, n, h))
    zeros = np.zeros((n, h), np.float32)

    def run():
        y, hn, cn, cache = F.lstm(x, p["h"], p["c"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
        return (y, hn, cn, *F.lstm_backward(dy, zeros, zeros, cache))

    for a, b in zip(threads(1, run), threads(2, run)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("isa", available_isas())
def test_every_isa_pointwise(rng, isa):
    # Inputs across the whole range of the activations, including saturation.
    n, h = 3, 2000
    gates = (np.linspace(-40, 40, n * 4 * h, dtype=np.float32).reshape(n, 4 * h)
             + random_f32(rng, (n, 4 * h), -0.01, 0.01))
    bias = random_f32(rng, (4 * h,), -0.1, 0.1)
    c = random_f32(rng, (n, h), -3, 3)
    pre = gates.astype(np.float64) + bias
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    i, f, g, o = sig(pre[:, :h]), sig(pre[:, h:2 * h]), np.tanh(pre[:, 2 * h:3 * h]), \
        sig(pre[:, 3 * h:])
    c1_ref = f * c + i * g
    before = pykernels.get_isa()
    try:
        pykernels.set_isa(isa)
        out_gates, c1, h1 = gates.copy(), np.empty_like(c), np.empty_like(c)
        pykernels._cpu.lstm_pointwise_forward(out_gates, bias, c, c1, h1)
    finally:
        pykernels.set_isa(before)
    np.testing.assert_allclose(out_gates, np.concatenate([i, f, g, o], axis=1),
                               rtol=3e-6, atol=1e-7)
    np.testing.assert_allclose(c1, c1_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h1, o * np.tanh(c1_ref), rtol=1e-5, atol=1e-6)


def test_bad_input():
    f32 = lambda *s: np.ones(s, np.float32)  # noqa: E731
    x, h0, c0 = f32(2, 3, 5), f32(3, 4), f32(3, 4)
    w_ih, w_hh, b = f32(16, 5), f32(16, 4), f32(16)
    with pytest.raises(ValueError, match=r"w_ih must have shape .*\(16, 6\)"):
        F.lstm(f32(2, 3, 6), h0, c0, w_ih, w_hh, b, b)
    with pytest.raises(ValueError, match="w_hh must have shape"):
        F.lstm(x, h0, c0, w_ih, f32(15, 4), b, b)
    with pytest.raises(ValueError, match=r"h must have shape \(N, H\) = \(3, 4\), got \(2, 4\)"):
        F.lstm(x, f32(2, 4), c0, w_ih, w_hh, b, b)
    with pytest.raises(ValueError, match="b_hh must have shape"):
        F.lstm(x, h0, c0, w_ih, w_hh, b, f32(12))
    with pytest.raises(ValueError, match="3-D"):
        F.lstm(f32(3, 5), h0, c0, w_ih, w_hh, b, b)
    with pytest.raises(TypeError, match="x has dtype float64"):
        F.lstm(np.ones((2, 3, 5)), h0, c0, w_ih, w_hh, b, b)
    with pytest.raises(ValueError, match="algo"):
        F.lstm(x, h0, c0, w_ih, w_hh, b, b, algo="fast")
    y, hn, cn, cache = F.lstm(x, h0, c0, w_ih, w_hh, b, b)
    with pytest.raises(ValueError, match="dy must have shape"):
        F.lstm_backward(f32(2, 3, 5), hn, cn, cache)
    with pytest.raises(TypeError, match="cache"):
        F.lstm_backward(y, hn, cn, {"not": "a cache"})


# ---- GPU (a real one, or the CPU emulator through the `cp` fixture) -------------------
# Shapes stay tiny: under emulation every GPU thread is an OS thread.

def _reference_cell(p):
    return R.lstm_cell(*(p[k].astype(np.float64) for k in
                         ("x", "h", "c", "w_ih", "w_hh", "b_ih", "b_hh")))


def _to_gpu(cp, arrays):
    return {k: cp.asarray(v) for k, v in arrays.items()}


def _assert_close_all(got, want, rtol, atol):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def _poisoned(cp, shape):
    return cp.asarray(np.full(shape, np.nan, np.float32))


def _sigmoid64(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.gpu
@pytest.mark.parametrize("n,h", [(1, 7), (3, 13), (2, 300)])
def test_gpu_pointwise_kernels_match_cpu(rng, cp, n, h):
    # The fused kernels alone, straight through the bindings, over the whole
    # range of the activations (saturation included), into poisoned outputs.
    from pykernels._backend import current_stream_ptr, require_cuda

    gpu = require_cuda()
    gates = (np.linspace(-40, 40, n * 4 * h, dtype=np.float32).reshape(n, 4 * h)
             + random_f32(rng, (n, 4 * h), -0.01, 0.01))
    bias = random_f32(rng, (4 * h,), -0.1, 0.1)
    c = random_f32(rng, (n, h), -3, 3)
    out_cpu = gates.copy(), np.empty_like(c), np.empty_like(c)
    pykernels._cpu.lstm_pointwise_forward(out_cpu[0], bias, c, out_cpu[1], out_cpu[2])
    gg, bg, cg = cp.asarray(gates), cp.asarray(bias), cp.asarray(c)
    c1g, h1g = _poisoned(cp, (n, h)), _poisoned(cp, (n, h))
    gpu.lstm_pointwise_forward(gg.data.ptr, bg.data.ptr, cg.data.ptr, c1g.data.ptr,
                               h1g.data.ptr, n, h, current_stream_ptr())
    out_gpu = cp.asnumpy(gg), cp.asnumpy(c1g), cp.asnumpy(h1g)
    pre = gates.astype(np.float64) + bias
    i, f, g, o = (_sigmoid64(pre[:, :h]), _sigmoid64(pre[:, h:2 * h]),
                  np.tanh(pre[:, 2 * h:3 * h]), _sigmoid64(pre[:, 3 * h:]))
    c1 = f * c + i * g
    want = np.concatenate([i, f, g, o], axis=1), c1, o * np.tanh(c1)
    _assert_close_all(out_gpu, want, rtol=3e-6, atol=1e-7)
    _assert_close_all(out_gpu, out_cpu, rtol=5e-6, atol=2e-7)

    # Backward, with and without the recurrent gradient; dc is updated in place.
    act = out_cpu[0]
    dh1, dh_rec, dc1 = (random_f32(rng, (n, h)) for _ in range(3))
    for rec in (None, dh_rec):
        dc_cpu, dg_cpu = dc1.copy(), np.empty_like(act)
        pykernels._cpu.lstm_pointwise_backward(dh1, rec, dc_cpu, act, c, dg_cpu)
        dc_g, dg_g = cp.asarray(dc1), _poisoned(cp, (n, 4 * h))
        rec_g = None if rec is None else cp.asarray(rec)
        ag, dh1g = cp.asarray(act), cp.asarray(dh1)
        gpu.lstm_pointwise_backward(dh1g.data.ptr, 0 if rec_g is None else rec_g.data.ptr,
                                    dc_g.data.ptr, ag.data.ptr, cg.data.ptr, dg_g.data.ptr,
                                    n, h, current_stream_ptr())
        _assert_close_all((cp.asnumpy(dg_g), cp.asnumpy(dc_g)), (dg_cpu, dc_cpu),
                          rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("algo", ["fused", "naive"])
@pytest.mark.parametrize("n,i,h", [(1, 5, 7), (4, 9, 13), (2, 13, 7), (2, 3, 33)])
def test_gpu_cell_matches_cpu_and_reference(rng, cp, algo, n, i, h):
    p = make_params(rng, n, i, h)
    pg = _to_gpu(cp, p)
    fwd = F.lstm_cell(**pg, algo=algo)
    assert all(isinstance(a, cp.ndarray) for a in fwd)
    fwd_np = [cp.asnumpy(a) for a in fwd]
    _assert_close_all(fwd_np, F.lstm_cell(**p, algo=algo), rtol=1e-5, atol=1e-6)
    _assert_close_all(fwd_np, _reference_cell(p), rtol=1e-5, atol=1e-6)

    dh1, dc1 = random_f32(rng, (n, h)), random_f32(rng, (n, h))
    args = [dh1, dc1, p["x"], p["h"], p["c"], p["w_ih"], p["w_hh"]]
    bwd = F.lstm_cell_backward(*map(cp.asarray, args), fwd[2])
    assert all(isinstance(a, cp.ndarray) for a in bwd)
    bwd_np = [cp.asnumpy(a) for a in bwd]
    _assert_close_all(bwd_np, F.lstm_cell_backward(*args, fwd_np[2]), rtol=1e-4, atol=1e-5)
    args64 = [a.astype(np.float64) for a in args]
    _assert_close_all(bwd_np, R.lstm_cell_backward(*args64, _reference_cell(p)[2]),
                      rtol=1e-4, atol=1e-5)


def _gpu_layer(cp, p, x, dy, dhn, dcn, algo="fused"):
    y, hn, cn, cache = F.lstm(cp.asarray(x), cp.asarray(p["h"]), cp.asarray(p["c"]),
                              cp.asarray(p["w_ih"]), cp.asarray(p["w_hh"]),
                              cp.asarray(p["b_ih"]), cp.asarray(p["b_hh"]), algo=algo)
    grads = F.lstm_backward(cp.asarray(dy), cp.asarray(dhn), cp.asarray(dcn), cache)
    outs = (y, hn, cn, *grads)
    assert all(isinstance(a, cp.ndarray) for a in outs)
    return [cp.asnumpy(a) for a in outs]


def _assert_layer_matches_reference(got, p, x, dy, dhn, dcn):
    """got = _gpu_layer's outputs, against the float64 NumPy reference."""
    args64 = [a.astype(np.float64) for a in (x, p["h"], p["c"], p["w_ih"], p["w_hh"],
                                              p["b_ih"], p["b_hh"])]
    yr, hr, cr, cache_r = R.lstm(*args64)
    _assert_close_all(got[:3], (yr, hr, cr), rtol=1e-5, atol=1e-6)
    ref = R.lstm_backward(*(a.astype(np.float64) for a in (dy, dhn, dcn)), cache_r)
    _assert_close_all(got[3:], ref, rtol=1e-4, atol=1e-5)


# T = 1, N = 1, H = 7 and 13 (not multiples of 8), I != H, I = 1, and 4H = 132
# (two GEMM tiles wide).
GPU_LAYER_SHAPES = [(1, 3, 5, 7), (4, 1, 6, 13), (3, 2, 1, 7), (2, 2, 17, 33)]


@pytest.mark.gpu
@pytest.mark.parametrize("t,n,i,h", GPU_LAYER_SHAPES)
def test_gpu_layer_matches_cpu_and_reference(rng, cp, t, n, i, h):
    p = make_params(rng, n, i, h)
    x = random_f32(rng, (t, n, i), -1, 1)
    dy, dhn, dcn = (random_f32(rng, s) for s in ((t, n, h), (n, h), (n, h)))
    got = _gpu_layer(cp, p, x, dy, dhn, dcn)

    y, hn, cn, cache = F.lstm(x, p["h"], p["c"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    cpu = [y, hn, cn, *F.lstm_backward(dy, dhn, dcn, cache)]
    _assert_close_all(got[:3], cpu[:3], rtol=1e-5, atol=1e-6)
    _assert_close_all(got[3:], cpu[3:], rtol=1e-4, atol=1e-5)

    _assert_layer_matches_reference(got, p, x, dy, dhn, dcn)


def _assert_recurrent_products_split(n, h):
    """auto cuts K of both recurrent products (N x 4H x H forward, N x H x 4H
    backward) into slabs on the current device."""
    from pykernels import _backend

    gpu, auto = _backend.require_cuda(), F.GPU_GEMM_ALGOS.index("auto")
    assert gpu.sgemm_split_count(auto, n, 4 * h, h) > 1
    assert gpu.sgemm_split_count(auto, n, h, 4 * h) > 1


@pytest.mark.gpu
@pytest.mark.parametrize("scratch", ["available", "out of memory"])
def test_gpu_layer_with_split_recurrent_products(rng, cp, monkeypatch, scratch):
    # H = 200 on a 64-SM GPU: the recurrent products (N x 4H x H forward,
    # N x H x 4H backward) have few enough tiles that auto cuts K into slabs.
    # Without memory for the slabs the time loops run them unsplit.
    from pykernels import _backend

    monkeypatch.setenv("PYKERNELS_EMU_SMS", "64")  # read by the emulator only
    if scratch == "out of memory":
        if not hasattr(_backend.require_cuda(), "emu_launch_count"):
            pytest.skip("fails allocations on the CPU emulator only")
        monkeypatch.setenv("PYKERNELS_EMU_MALLOC_FAIL", "1")
    t, n, i, h = 3, 3, 5, 200
    _assert_recurrent_products_split(n, h)  # so on any GPU of 16+ SMs
    p = make_params(rng, n, i, h)
    x = random_f32(rng, (t, n, i), -1, 1)
    dy, dhn, dcn = (random_f32(rng, s) for s in ((t, n, h), (n, h), (n, h)))
    got = _gpu_layer(cp, p, x, dy, dhn, dcn)
    _assert_layer_matches_reference(got, p, x, dy, dhn, dcn)


def _split_recurrence_inputs(rng, cp, t, n, h):
    """Arrays for the GPU time loops, at a size whose recurrent products auto splits."""
    _assert_recurrent_products_split(n, h)
    shapes = dict(gates=(t, n, 4 * h), w_hh=(4 * h, h), bias=(4 * h,), h0=(n, h), c0=(n, h),
                  dy=(t, n, h), dh=(n, h), dc=(n, h))
    return {k: cp.asarray(random_f32(rng, s, -1, 1)) for k, s in shapes.items()}


@pytest.mark.gpu
def test_gpu_time_loops_fold_the_split_sum_bit_for_bit(rng, cp, monkeypatch):
    # The C++ time loops leave the recurrent product in its K slabs and sum
    # them inside the pointwise pass; that must be bitwise sgemm's own split
    # product followed by the pointwise kernel, step by step from Python.
    from types import SimpleNamespace

    from pykernels._functional import lstm as L

    monkeypatch.setenv("PYKERNELS_EMU_SMS", "64")  # read by the emulator only
    t, n, h = 3, 3, 200
    a = _split_recurrence_inputs(rng, cp, t, n, h)
    empty = lambda: cp.full((t, n, h), cp.nan, cp.float32)  # noqa: E731

    fused = dict(gates=a["gates"].copy(), y=empty(), cells=empty())
    L._recurrence_forward(fused["gates"], a["w_hh"], a["bias"], a["h0"], a["c0"], fused["y"],
                          fused["cells"])
    steps = dict(gates=a["gates"].copy(), y=empty(), cells=empty())
    h_prev, c_prev = a["h0"], a["c0"]
    for s in range(t):
        F.gemm(h_prev, a["w_hh"], steps["gates"][s], beta=1.0, trans_b=True)
        L._pointwise_forward(steps["gates"][s], a["bias"], c_prev, steps["cells"][s],
                             steps["y"][s])
        h_prev, c_prev = steps["y"][s], steps["cells"][s]
    for name in fused:
        np.testing.assert_array_equal(cp.asnumpy(fused[name]), cp.asnumpy(steps[name]), name)

    cache = SimpleNamespace(gates=fused["gates"], cells=fused["cells"], c0=a["c0"],
                            w_hh=a["w_hh"])
    grads = lambda: dict(dh=a["dh"].copy(), dc=a["dc"].copy(),  # noqa: E731
                         dgates=cp.full((t, n, 4 * h), cp.nan, cp.float32))
    fused = grads()
    L._recurrence_backward(a["dy"], fused["dh"], fused["dc"], cache, fused["dgates"])
    steps = grads()
    for s in range(t - 1, -1, -1):
        c_prev = cache.cells[s - 1] if s else a["c0"]
        L._pointwise_backward(a["dy"][s], steps["dh"], steps["dc"], cache.gates[s], c_prev,
                              steps["dgates"][s])
        F.gemm(steps["dgates"][s], a["w_hh"], steps["dh"])
    for name in fused:
        np.testing.assert_array_equal(cp.asnumpy(fused[name]), cp.asnumpy(steps[name]), name)


@pytest.mark.gpu
def test_gpu_time_loops_launch_two_kernels_a_step(rng, cp, monkeypatch):
    # A step's GPU time is mostly launch latency: the split product's partials
    # and the pointwise pass that sums them, nothing else (backward: plus the
    # sum of step 0's dL/dh, which the caller gets whole).
    from types import SimpleNamespace

    from pykernels import _backend
    from pykernels._functional import lstm as L

    gpu = _backend.require_cuda()
    if not hasattr(gpu, "emu_launch_count"):
        pytest.skip("counts launches on the CPU emulator")
    monkeypatch.setenv("PYKERNELS_EMU_SMS", "64")
    t, n, h = 4, 3, 200
    a = _split_recurrence_inputs(rng, cp, t, n, h)
    y, cells = cp.empty((t, n, h), cp.float32), cp.empty((t, n, h), cp.float32)
    before = gpu.emu_launch_count()
    L._recurrence_forward(a["gates"], a["w_hh"], a["bias"], a["h0"], a["c0"], y, cells)
    assert gpu.emu_launch_count() - before == 2 * t
    cache = SimpleNamespace(gates=a["gates"], cells=cells, c0=a["c0"], w_hh=a["w_hh"])
    before = gpu.emu_launch_count()
    L._recurrence_backward(a["dy"], a["dh"], a["dc"], cache, cp.empty((t, n, 4 * h), cp.float32))
    assert gpu.emu_launch_count() - before == 2 * t + 1


@pytest.mark.gpu
def test_gpu_layer_is_bitwise_repeatable(rng, cp):
    t, n, i, h = 3, 2, 6, 13
    p = make_params(rng, n, i, h)
    x = random_f32(rng, (t, n, i), -1, 1)
    dy, dhn, dcn = (random_f32(rng, s) for s in ((t, n, h), (n, h), (n, h)))
    first = _gpu_layer(cp, p, x, dy, dhn, dcn)
    second = _gpu_layer(cp, p, x, dy, dhn, dcn)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
def test_gpu_layer_naive_matches_fused(rng, cp):
    t, n, i, h = 2, 2, 5, 7
    p = make_params(rng, n, i, h)
    x = random_f32(rng, (t, n, i), -1, 1)
    dy, dhn, dcn = (random_f32(rng, s) for s in ((t, n, h), (n, h), (n, h)))
    fused = _gpu_layer(cp, p, x, dy, dhn, dcn, algo="fused")
    naive = _gpu_layer(cp, p, x, dy, dhn, dcn, algo="naive")
    _assert_close_all(naive, fused, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_gpu_layer_zero_steps(rng, cp):
    n, i, h = 2, 3, 7
    p = make_params(rng, n, i, h)
    x = np.zeros((0, n, i), np.float32)
    dy = np.zeros((0, n, h), np.float32)
    dhn, dcn = random_f32(rng, (n, h)), random_f32(rng, (n, h))
    y, hn, cn, dx, dh0, dc0, dw_ih, dw_hh, db = _gpu_layer(cp, p, x, dy, dhn, dcn)
    assert y.shape == (0, n, h) and dx.shape == (0, n, i)
    np.testing.assert_array_equal(hn, p["h"])
    np.testing.assert_array_equal(cn, p["c"])
    np.testing.assert_array_equal(dh0, dhn)
    np.testing.assert_array_equal(dc0, dcn)
    for g in (dw_ih, dw_hh, db):
        np.testing.assert_array_equal(g, np.zeros_like(g))


@pytest.mark.gpu
def test_gpu_bad_input(cp):
    f32 = lambda *s: np.ones(s, np.float32)  # noqa: E731
    g32 = lambda *s: cp.asarray(f32(*s))  # noqa: E731
    x, h0, c0 = g32(2, 3, 5), g32(3, 4), g32(3, 4)
    w_ih, w_hh, b = g32(16, 5), g32(16, 4), g32(16)
    with pytest.raises(ValueError, match=r"w_ih must have shape .*\(16, 6\)"):
        F.lstm(g32(2, 3, 6), h0, c0, w_ih, w_hh, b, b)
    with pytest.raises(ValueError, match=r"h must have shape \(N, H\) = \(3, 4\), got \(2, 4\)"):
        F.lstm(x, g32(2, 4), c0, w_ih, w_hh, b, b)
    with pytest.raises(ValueError, match="x must be 2-D"):
        F.lstm_cell(x, h0, c0, w_ih, w_hh, b, b)
    with pytest.raises(TypeError, match="x has dtype float64"):
        F.lstm(cp.asarray(np.ones((2, 3, 5))), h0, c0, w_ih, w_hh, b, b)
    with pytest.raises(TypeError, match="all be NumPy .* or all CuPy"):
        F.lstm(x, f32(3, 4), c0, w_ih, w_hh, b, b)
    y, hn, cn, cache = F.lstm(x, h0, c0, w_ih, w_hh, b, b)
    with pytest.raises(ValueError, match="dy must have shape"):
        F.lstm_backward(g32(2, 3, 5), hn, cn, cache)
    with pytest.raises(TypeError, match="all be NumPy .* or all CuPy"):
        F.lstm_backward(f32(2, 3, 4), f32(3, 4), f32(3, 4), cache)


@pytest.mark.gpu
@pytest.mark.real_gpu
def test_gpu_layer_benchmark_shape_matches_cpu(rng, cp):
    # Many GEMM tiles and row blocks per launch: the shape class of the benchmark.
    t, n, i, h = 8, 64, 384, 257
    p = make_params(rng, n, i, h, scale=0.1)
    x = random_f32(rng, (t, n, i), -1, 1)
    dy, dhn, dcn = (random_f32(rng, s) for s in ((t, n, h), (n, h), (n, h)))
    got = _gpu_layer(cp, p, x, dy, dhn, dcn)
    y, hn, cn, cache = F.lstm(x, p["h"], p["c"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    want = [y, hn, cn, *F.lstm_backward(dy, dhn, dcn, cache)]
    _assert_close_all(got[:3], want[:3], rtol=1e-4, atol=1e-5)
    _assert_close_all(got[3:], want[3:], rtol=1e-3, atol=1e-3)
    again = _gpu_layer(cp, p, x, dy, dhn, dcn)
    for a, b in zip(got, again):
        np.testing.assert_array_equal(a, b)

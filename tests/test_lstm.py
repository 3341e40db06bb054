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

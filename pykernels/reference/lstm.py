"""LSTM cell and layer in NumPy (gate order i, f, g, o, as torch.nn.LSTM).
Computed in the inputs' dtype: float64 for gradient checks."""

import numpy as np


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _bias_sum(b_ih, b_hh, like):
    total = np.zeros(like.shape[0], dtype=like.dtype)
    for b in (b_ih, b_hh):
        if b is not None:
            total = total + b
    return total


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, algo="fused"):
    del algo
    pre = x @ w_ih.T + h @ w_hh.T + _bias_sum(b_ih, b_hh, w_ih)
    zi, zf, zg, zo = np.split(pre, 4, axis=1)
    i, f, g, o = _sigmoid(zi), _sigmoid(zf), np.tanh(zg), _sigmoid(zo)
    c1 = f * c + i * g
    h1 = o * np.tanh(c1)
    return h1, c1, np.concatenate([i, f, g, o], axis=1)


def lstm_cell_backward(dh1, dc1, x, h, c, w_ih, w_hh, gates):
    i, f, g, o = np.split(gates, 4, axis=1)
    tc = np.tanh(f * c + i * g)
    dcell = dc1 + dh1 * o * (1 - tc**2)
    dpre = np.concatenate([dcell * g * i * (1 - i), dcell * c * f * (1 - f),
                           dcell * i * (1 - g**2), dh1 * tc * o * (1 - o)], axis=1)
    return (dpre @ w_ih, dpre @ w_hh, dcell * f, dpre.T @ x, dpre.T @ h, dpre.sum(axis=0))


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, algo="fused"):
    del algo
    h, c = h0, c0
    ys, cells, gates, hs, cs = [], [], [], [], []
    for t in range(x.shape[0]):
        hs.append(h)
        cs.append(c)
        h, c, gt = lstm_cell(x[t], h, c, w_ih, w_hh, b_ih, b_hh)
        ys.append(h)
        gates.append(gt)
    y = np.stack(ys) if ys else np.zeros((0, *h0.shape), h0.dtype)
    cache = {"x": x, "h_prev": hs, "c_prev": cs, "gates": gates, "w_ih": w_ih, "w_hh": w_hh}
    return y, h, c, cache


def lstm_backward(dy, dhn, dcn, cache):
    x, w_ih, w_hh = cache["x"], cache["w_ih"], cache["w_hh"]
    dx = np.zeros_like(x)
    dw_ih, dw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    db = np.zeros(w_ih.shape[0], dtype=w_ih.dtype)
    dh, dc = dhn, dcn
    for t in reversed(range(x.shape[0])):
        dxt, dh, dc, dwi, dwh, dbt = lstm_cell_backward(
            dy[t] + dh, dc, x[t], cache["h_prev"][t], cache["c_prev"][t], w_ih, w_hh,
            cache["gates"][t])
        dx[t] = dxt
        dw_ih += dwi
        dw_hh += dwh
        db += dbt
    return dx, dh, dc, dw_ih, dw_hh, db

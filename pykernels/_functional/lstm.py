"""LSTM cell and layer on the CPU and the GPU (gate order i, f, g, o; weights
(4H, in); two biases, as torch.nn.LSTM).

Fused path (algo="fused", the default):
- forward: one GEMM projects the inputs of all T steps at once; each step
  then adds one recurrent GEMM into its slice and runs one fused pointwise
  pass (bias, activations, cell update) that keeps the activated gates; on
  the CPU the recurrent weights are packed for the GEMM once, not per step;
  on the GPU the whole time loop is one C++ call (cuda/lstm.cu);
- backward: back through time, each step runs one fused pointwise pass and
  one GEMM for dh; the weight gradients and dx come after the loop as three
  large GEMMs over all T*N rows (dx, dW_ih, dW_hh) and one sum (db).

Naive path (algo="naive"): per-gate GEMMs and unfused NumPy pointwise ops at
every step, kept so the benchmark can show what fusing and batching buy.

One code path serves both devices: GEMMs go through functional.gemm (pk::sgemm
or pk::cuda::sgemm), allocation and sums through the array module `xp`
(NumPy or CuPy), and only the fused pointwise pass dispatches to _cpu or
_cuda (csrc/lstm.cpp, cuda/lstm.cu).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._backend import (accepts_cuda_interface, array_module, cpu, current_stream_ptr,
                        is_cupy_array, require_cuda)
from .._validate import device_of, float32_contiguous

LSTM_ALGOS = ("fused", "naive")


def _gemm(*args, **kwargs):
    from ..functional import gemm

    return gemm(*args, **kwargs)


def _packed_b(w, trans: bool):
    """op(w) packed once as the B of the CPU's GEMM at every time step
    (functional.gemm_pack; repacking it per step was about half of a
    32 x 2048 x 512 step). The GPU's time loops run in C++ instead."""
    from ..functional import gemm_pack

    return gemm_pack(w, side="b", trans=trans)


# ---- argument checks --------------------------------------------------------

def _check_weights(w_ih, w_hh, b_ih, b_hh, input_size: int):
    if w_hh.ndim != 2 or w_hh.shape[0] != 4 * w_hh.shape[1]:
        raise ValueError(f"w_hh must have shape (4*H, H), got {w_hh.shape}")
    hidden = w_hh.shape[1]
    if w_ih.shape != (4 * hidden, input_size):
        raise ValueError(f"w_ih must have shape (4*H, I) = ({4 * hidden}, {input_size}) for "
                         f"w_hh {w_hh.shape} and input size {input_size}, got {w_ih.shape}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and b.shape != (4 * hidden,):
            raise ValueError(f"{name} must have shape ({4 * hidden},) for w_hh {w_hh.shape}, "
                             f"got {b.shape}")
    return hidden


def _check_state(h, c, batch: int, hidden: int):
    for name, s in (("h", h), ("c", c)):
        if s.shape != (batch, hidden):
            raise ValueError(f"{name} must have shape (N, H) = ({batch}, {hidden}), "
                             f"got {s.shape}")


def _f32(**arrays):
    device_of(**{k: v for k, v in arrays.items() if v is not None})
    return [None if v is None else float32_contiguous(v, k) for k, v in arrays.items()]


def _bias(b_ih, b_hh, hidden, xp):
    bias = xp.zeros(4 * hidden, np.float32)
    for b in (b_ih, b_hh):
        if b is not None:
            bias += b
    return bias


def _check_algo(algo):
    if algo not in LSTM_ALGOS:
        raise ValueError(f"algo must be one of {LSTM_ALGOS}, got {algo!r}")


# ---- the fused pointwise passes, on either device ---------------------------------

def _pointwise_forward(gates, bias, c, c1, h1):
    """Activates gates (N, 4H) in place and writes c1, h1 (see lstm.h)."""
    if not is_cupy_array(gates):
        cpu().lstm_pointwise_forward(gates, bias, c, c1, h1)
        return
    n, hidden = c.shape
    require_cuda().lstm_pointwise_forward(gates.data.ptr, bias.data.ptr, c.data.ptr,
                                          c1.data.ptr, h1.data.ptr, n, hidden,
                                          current_stream_ptr())


def _pointwise_backward(dh1, dh_rec, dc, gates, c, dgates):
    """dgates = dL/d(pre-activations); dc goes from dL/dc1 to dL/dc in place."""
    if not is_cupy_array(gates):
        cpu().lstm_pointwise_backward(dh1, dh_rec, dc, gates, c, dgates)
        return
    n, hidden = c.shape
    dh_rec_ptr = 0 if dh_rec is None else dh_rec.data.ptr  # 0: no recurrent gradient
    require_cuda().lstm_pointwise_backward(dh1.data.ptr, dh_rec_ptr, dc.data.ptr, gates.data.ptr,
                                           c.data.ptr, dgates.data.ptr, n, hidden,
                                           current_stream_ptr())


# ---- the time loops: in Python on the CPU, one C++ call on the GPU -------------

def _recurrence_forward(gates, w_hh, bias, h0, c0, y, cells):
    """Step t: gates[t] += h_{t-1} W_hh^T, then the pointwise pass writes
    cells[t] and y[t]. On the GPU the loop runs in C++ (cuda/lstm.cu): from
    Python each step would cost more host time than its kernels take."""
    steps, batch, hidden = y.shape
    if is_cupy_array(gates):
        require_cuda().lstm_recurrence_forward(
            steps, batch, hidden, gates.data.ptr, w_hh.data.ptr, bias.data.ptr, h0.data.ptr,
            c0.data.ptr, y.data.ptr, cells.data.ptr, current_stream_ptr())
        return
    h, c = h0, c0
    w_rec = _packed_b(w_hh, trans=True) if steps else None
    for t in range(steps):
        _gemm(h, w_rec, gates[t], beta=1.0)
        _pointwise_forward(gates[t], bias, c, cells[t], y[t])
        h, c = y[t], cells[t]


def _recurrence_backward(dy, dh, dc, cache, dgates):
    """Back through time: dgates[t] for every step; dh and dc go from the
    last step's gradients to the first's, in place."""
    steps, batch, hidden = dy.shape
    if is_cupy_array(dy):
        require_cuda().lstm_recurrence_backward(
            steps, batch, hidden, dy.data.ptr, dh.data.ptr, dc.data.ptr, cache.gates.data.ptr,
            cache.cells.data.ptr, cache.c0.data.ptr, cache.w_hh.data.ptr, dgates.data.ptr,
            current_stream_ptr())
        return
    w_rec = _packed_b(cache.w_hh, trans=False) if steps else None
    for t in range(steps - 1, -1, -1):
        c_prev = cache.cells[t - 1] if t else cache.c0
        _pointwise_backward(dy[t], dh, dc, cache.gates[t], c_prev, dgates[t])
        _gemm(dgates[t], w_rec, dh)  # dh for step t-1 (overwrites: beta = 0)


# ---- the cell -----------------------------------------------------------------

@accepts_cuda_interface
def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, algo="fused"):
    """One LSTM step: returns h1, c1 and the activated gates (N, 4H) that
    lstm_cell_backward needs."""
    _check_algo(algo)
    x, h, c, w_ih, w_hh, b_ih, b_hh = _f32(x=x, h=h, c=c, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih,
                                           b_hh=b_hh)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (N, I), got shape {x.shape}")
    hidden = _check_weights(w_ih, w_hh, b_ih, b_hh, x.shape[1])
    _check_state(h, c, x.shape[0], hidden)
    xp = array_module(x)
    bias = _bias(b_ih, b_hh, hidden, xp)
    if algo == "naive":
        return _naive_cell(x, h, c, w_ih, w_hh, bias)
    gates = _gemm(x, w_ih, trans_b=True)
    _gemm(h, w_hh, gates, beta=1.0, trans_b=True)
    h1, c1 = xp.empty_like(h), xp.empty_like(c)
    _pointwise_forward(gates, bias, c, c1, h1)
    return h1, c1, gates


@accepts_cuda_interface
def lstm_cell_backward(dh1, dc1, x, h, c, w_ih, w_hh, gates):
    """Gradients of lstm_cell: dx, dh, dc, dw_ih, dw_hh, db (db is the
    gradient of each bias, b_ih and b_hh alike)."""
    dh1, dc1, x, h, c, w_ih, w_hh, gates = _f32(dh1=dh1, dc1=dc1, x=x, h=h, c=c, w_ih=w_ih,
                                                w_hh=w_hh, gates=gates)
    hidden = _check_weights(w_ih, w_hh, None, None, x.shape[1])
    _check_state(h, c, x.shape[0], hidden)
    _check_state(dh1, dc1, x.shape[0], hidden)
    if gates.shape != (x.shape[0], 4 * hidden):
        raise ValueError(f"gates must have shape {(x.shape[0], 4 * hidden)}, got {gates.shape}")
    dc = dc1.copy()
    dgates = array_module(gates).empty_like(gates)
    _pointwise_backward(dh1, None, dc, gates, c, dgates)
    dx = _gemm(dgates, w_ih)
    dh = _gemm(dgates, w_hh)
    dw_ih = _gemm(dgates, x, trans_a=True)
    dw_hh = _gemm(dgates, h, trans_a=True)
    return dx, dh, dc, dw_ih, dw_hh, dgates.sum(axis=0)


# ---- the layer ------------------------------------------------------------------

@dataclass
class LSTMCache:
    """What lstm_backward needs: inputs, weights and per-step activations,
    NumPy or CuPy arrays like the inputs of lstm."""

    x: np.ndarray          # (T, N, I)
    h0: np.ndarray         # (N, H)
    c0: np.ndarray         # (N, H)
    w_ih: np.ndarray
    w_hh: np.ndarray
    y: np.ndarray          # (T, N, H): h_1 .. h_T
    cells: np.ndarray      # (T, N, H): c_1 .. c_T
    gates: np.ndarray      # (T, N, 4H): activated gates of every step
    algo: str = "fused"


@accepts_cuda_interface
def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, algo="fused"):
    """Run an LSTM over x of shape (T, N, I): returns y (T, N, H), hn, cn and
    the cache for lstm_backward."""
    _check_algo(algo)
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = _f32(x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh,
                                             b_ih=b_ih, b_hh=b_hh)
    if x.ndim != 3:
        raise ValueError(f"x must be 3-D (T, N, I), got shape {x.shape}")
    steps, batch, inputs = x.shape
    hidden = _check_weights(w_ih, w_hh, b_ih, b_hh, inputs)
    _check_state(h0, c0, batch, hidden)
    xp = array_module(x)
    bias = _bias(b_ih, b_hh, hidden, xp)
    y = xp.empty((steps, batch, hidden), np.float32)
    cells = xp.empty((steps, batch, hidden), np.float32)
    if algo == "naive":
        gates = xp.empty((steps, batch, 4 * hidden), np.float32)
        h, c = h0, c0
        for t in range(steps):
            h, c, gates[t] = _naive_cell(x[t], h, c, w_ih, w_hh, bias)
            y[t], cells[t] = h, c
    else:
        gates = _gemm(x.reshape(steps * batch, inputs), w_ih, trans_b=True)
        gates = gates.reshape(steps, batch, 4 * hidden)
        _recurrence_forward(gates, w_hh, bias, h0, c0, y, cells)
    hn = y[-1].copy() if steps else h0.copy()
    cn = cells[-1].copy() if steps else c0.copy()
    return y, hn, cn, LSTMCache(x, h0, c0, w_ih, w_hh, y, cells, gates, algo)


@accepts_cuda_interface
def lstm_backward(dy, dhn, dcn, cache: LSTMCache):
    """Backpropagation through time: dx, dh0, dc0, dw_ih, dw_hh, db."""
    if not isinstance(cache, LSTMCache):
        raise TypeError(f"cache must be the LSTMCache returned by lstm, got {type(cache).__name__}")
    steps, batch, hidden = cache.y.shape
    device_of(dy=dy, dhn=dhn, dcn=dcn, **{"cache.y": cache.y})  # one device for all
    dy, dhn, dcn = _f32(dy=dy, dhn=dhn, dcn=dcn)
    if dy.shape != cache.y.shape:
        raise ValueError(f"dy must have shape {cache.y.shape} like y, got {dy.shape}")
    _check_state(dhn, dcn, batch, hidden)
    if cache.algo == "naive":
        return _naive_layer_backward(dy, dhn, dcn, cache)
    xp = array_module(dy)
    dgates = xp.empty_like(cache.gates)
    dh, dc = dhn.copy(), dcn.copy()
    _recurrence_backward(dy, dh, dc, cache, dgates)
    rows = steps * batch
    dgates2 = dgates.reshape(rows, 4 * hidden)
    h_prev = xp.empty((steps, batch, hidden), np.float32)  # h_0 .. h_{T-1}
    if steps:
        h_prev[0] = cache.h0
        h_prev[1:] = cache.y[:-1]
    h_prev = h_prev.reshape(rows, hidden)
    dx = _gemm(dgates2, cache.w_ih).reshape(cache.x.shape)
    dw_ih = _gemm(dgates2, cache.x.reshape(rows, cache.x.shape[2]), trans_a=True)
    dw_hh = _gemm(dgates2, h_prev, trans_a=True)
    return dx, dh, dc, dw_ih, dw_hh, dgates2.sum(axis=0)


# ---- the naive composition ----------------------------------------------------------

def _sigmoid(z):
    return 1.0 / (1.0 + array_module(z).exp(-z))


def _naive_cell(x, h, c, w_ih, w_hh, bias):
    hidden = h.shape[1]
    pre = []
    for k in range(4):  # one GEMM per gate and per input: what fusing removes
        rows = slice(k * hidden, (k + 1) * hidden)
        g = _gemm(x, w_ih[rows], trans_b=True)
        _gemm(h, w_hh[rows], g, beta=1.0, trans_b=True)
        pre.append(g + bias[rows])
    xp = array_module(x)
    i, f, g, o = _sigmoid(pre[0]), _sigmoid(pre[1]), xp.tanh(pre[2]), _sigmoid(pre[3])
    c1 = f * c + i * g
    h1 = o * xp.tanh(c1)
    return h1, c1, xp.concatenate([i, f, g, o], axis=1)


def _naive_layer_backward(dy, dhn, dcn, cache):
    steps, batch, hidden = cache.y.shape
    w_ih, w_hh = cache.w_ih, cache.w_hh
    xp = array_module(dy)
    dx = xp.empty_like(cache.x)
    dw_ih, dw_hh = xp.zeros_like(w_ih), xp.zeros_like(w_hh)
    db = xp.zeros(4 * hidden, np.float32)
    dh, dc = dhn.copy(), dcn.copy()
    for t in range(steps - 1, -1, -1):
        h_prev = cache.y[t - 1] if t else cache.h0
        c_prev = cache.cells[t - 1] if t else cache.c0
        i, f, g, o = xp.split(cache.gates[t], 4, axis=1)
        dh_t = dy[t] + dh
        tc = xp.tanh(cache.cells[t])
        dcell = dc + dh_t * o * (1 - tc * tc)
        dpre = [dcell * g * i * (1 - i), dcell * c_prev * f * (1 - f),
                dcell * i * (1 - g * g), dh_t * tc * o * (1 - o)]
        dc = dcell * f
        dxt = xp.zeros_like(cache.x[t])
        dh = xp.zeros_like(dh)
        for k, dp in enumerate(dpre):  # per-gate GEMMs again
            rows = slice(k * hidden, (k + 1) * hidden)
            _gemm(dp, w_ih[rows], dxt, beta=1.0)
            _gemm(dp, w_hh[rows], dh, beta=1.0)
            _gemm(dp, cache.x[t], dw_ih[rows], beta=1.0, trans_a=True)
            _gemm(dp, h_prev, dw_hh[rows], beta=1.0, trans_a=True)
            db[rows] += dp.sum(axis=0)
        dx[t] = dxt
    return dx, dh, dc, dw_ih, dw_hh, db

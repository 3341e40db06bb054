"""LSTM layer, forward and forward+backward, side by side: pykernels' fused
layer, its naive per-gate variant, PyTorch CPU nn.LSTM (when installed) and
the NumPy reference, all on the same thread count, interleaved, medians."""

from __future__ import annotations


import numpy as np

from .. import functional as F
from .. import reference as R
from .timing import interleaved_medians, pinned_threads

SHAPES = [(50, 32, 256, 256), (50, 64, 256, 256), (50, 32, 512, 512), (50, 64, 512, 512)]


def _params(t, n, i, h, seed=0):
    rng = np.random.default_rng(seed)
    u = lambda *s: rng.uniform(-0.1, 0.1, s).astype(np.float32)  # noqa: E731
    return dict(x=u(t, n, i), h0=u(n, h), c0=u(n, h), w_ih=u(4 * h, i), w_hh=u(4 * h, h),
                b_ih=u(4 * h), b_hh=u(4 * h), dy=u(t, n, h))


def _ours(p, algo, backward):
    y, hn, cn, cache = F.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"],
                              p["b_hh"], algo=algo)
    if backward:
        F.lstm_backward(p["dy"], np.zeros_like(hn), np.zeros_like(cn), cache)


def _reference(p, backward):
    y, hn, cn, cache = R.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"],
                              p["b_hh"])
    if backward:
        R.lstm_backward(p["dy"], np.zeros_like(hn), np.zeros_like(cn), cache)


def _torch_case(p, backward):
    try:
        import torch
    except ImportError:
        return None
    t, n, i = p["x"].shape
    h = p["h0"].shape[1]
    mod = torch.nn.LSTM(i, h)
    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.from_numpy(p["w_ih"]))
        mod.weight_hh_l0.copy_(torch.from_numpy(p["w_hh"]))
        mod.bias_ih_l0.copy_(torch.from_numpy(p["b_ih"]))
        mod.bias_hh_l0.copy_(torch.from_numpy(p["b_hh"]))
    x = torch.from_numpy(p["x"])
    state = (torch.from_numpy(p["h0"])[None], torch.from_numpy(p["c0"])[None])
    dy = torch.from_numpy(p["dy"])

    def run():
        if backward:
            xg = x.detach().requires_grad_()
            y, _ = mod(xg, state)
            y.backward(dy)
        else:
            with torch.no_grad():
                mod(x, state)

    return run


def run(threads=(2,), repeats: int = 5, quick: bool = False, **_):
    rows = []
    for t_count in threads:
        for shape in (SHAPES[:1] if quick else SHAPES):
            p = _params(*shape)
            for backward in (False, True):
                cases = {
                    "fused": lambda: _ours(p, "fused", backward),
                    "naive": lambda: _ours(p, "naive", backward),
                    "numpy ref": lambda: _reference(p, backward),
                }
                torch_run = _torch_case(p, backward)
                if torch_run is not None:
                    cases["torch"] = torch_run
                with pinned_threads(t_count):  # torch, once imported, is pinned too
                    med = interleaved_medians(cases, repeats=repeats)
                t, n, i, h = shape
                row = {"T": t, "N": n, "I": i, "H": h, "threads": t_count,
                       "pass": "fwd+bwd" if backward else "fwd",
                       "fused ms": med["fused"] * 1e3,
                       "vs naive": med["naive"] / med["fused"],
                       "vs numpy ref": med["numpy ref"] / med["fused"]}
                if "torch" in med:
                    row["torch ms"] = med["torch"] * 1e3
                    row["vs torch"] = med["torch"] / med["fused"]
                rows.append(row)
    return rows

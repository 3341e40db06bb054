"""Pooling and batch norm on AlexNet / ResNet activation shapes at batch 16,
pykernels beside PyTorch CPU (same thread count), interleaved medians.

GB/s counts the minimal traffic of each op, the same for both libraries (the
ratio is the number to read): max-pool forward reads x and writes y and its
int64 indices; backward reads dy and the indices and writes dx; avg-pool
forward reads x and writes y, backward reads dy and writes dx; batch-norm
training forward reads x and writes y, backward reads dy and x and writes dx.
"""

from __future__ import annotations


import numpy as np

from .. import functional as F
from .timing import interleaved_medians, pinned_threads

# (label, op, input shape, kernel, stride, padding)
POOL_CASES = (
    ("alexnet pool1", "max", (16, 64, 55, 55), 3, 2, 0),
    ("alexnet pool2", "max", (16, 192, 27, 27), 3, 2, 0),
    ("alexnet pool5", "max", (16, 256, 13, 13), 3, 2, 0),
    ("resnet stem pool", "max", (16, 64, 112, 112), 3, 2, 1),
    ("avg 3x3 s2", "avg", (16, 64, 55, 55), 3, 2, 1),
    ("resnet global avg", "global", (16, 512, 7, 7), None, None, None),
)
BN_CASES = (
    ("resnet bn 64x56x56", (16, 64, 56, 56)),
    ("resnet bn 128x28x28", (16, 128, 28, 28)),
    ("resnet bn 256x14x14", (16, 256, 14, 14)),
    ("bn1d 4096", (16, 4096)),
)


def _pool_cases(kind, x, k, s, p, backward):
    """(pykernels callable, torch callable, bytes moved)."""
    import torch

    aten = torch.ops.aten
    tx = torch.from_numpy(x)
    if kind == "max":
        y, idx = F.max_pool2d(x, k, s, p)
        if not backward:
            return (lambda: F.max_pool2d(x, k, s, p),
                    lambda: torch.nn.functional.max_pool2d(tx, k, s, p, return_indices=True),
                    4 * x.size + 12 * y.size)
        dy, tdy, tidx = np.ones_like(y), torch.ones(y.shape), torch.from_numpy(idx)
        return (lambda: F.max_pool2d_backward(dy, idx, x.shape),
                lambda: aten.max_pool2d_with_indices_backward(tdy, tx, [k, k], [s, s], [p, p],
                                                              [1, 1], False, tidx),
                4 * x.size + 12 * y.size)
    if kind == "avg":
        y = F.avg_pool2d(x, k, s, p)
        if not backward:
            return (lambda: F.avg_pool2d(x, k, s, p),
                    lambda: torch.nn.functional.avg_pool2d(tx, k, s, p),
                    4 * x.size + 4 * y.size)
        dy, tdy = np.ones_like(y), torch.ones(y.shape)
        return (lambda: F.avg_pool2d_backward(dy, x.shape, k, s, p),
                lambda: aten.avg_pool2d_backward(tdy, tx, [k, k], [s, s], [p, p], False, True,
                                                 None),
                4 * x.size + 4 * y.size)
    y = F.adaptive_avg_pool2d(x, 1)
    if not backward:
        return (lambda: F.adaptive_avg_pool2d(x, 1),
                lambda: torch.nn.functional.adaptive_avg_pool2d(tx, 1),
                4 * x.size + 4 * y.size)
    dy, tdy = np.ones_like(y), torch.ones(y.shape)
    return (lambda: F.adaptive_avg_pool2d_backward(dy, x.shape),
            lambda: aten._adaptive_avg_pool2d_backward(tdy, tx),
            4 * x.size + 4 * y.size)


def _bn_cases(x, backward):
    import torch

    aten = torch.ops.aten
    c = x.shape[1]
    rng = np.random.default_rng(1)
    w = rng.uniform(0.5, 2, c).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    trm, trv = torch.zeros(c), torch.ones(c)
    if not backward:
        return (lambda: F.batch_norm(x, rm, rv, w, b, True),
                lambda: aten.native_batch_norm(tx, tw, tb, trm, trv, True, 0.1, 1e-5),
                8 * x.size)
    _, mean, invstd = F.batch_norm(x, rm, rv, w, b, True)
    _, tmean, tinvstd = aten.native_batch_norm(tx, tw, tb, trm, trv, True, 0.1, 1e-5)
    dy = rng.standard_normal(x.shape, dtype=np.float32)
    tdy = torch.from_numpy(dy)
    return (lambda: F.batch_norm_backward(dy, x, w, mean, invstd),
            lambda: aten.native_batch_norm_backward(tdy, tx, tw, trm, trv, tmean, tinvstd, True,
                                                    1e-5, [True, True, True]),
            12 * x.size)


def _measure(label, shape, threads, repeats, ours, theirs, nbytes):
    with pinned_threads(threads):  # torch is imported: pinned too
        med = interleaved_medians({"pykernels": ours, "torch": theirs}, repeats=repeats)
    g_ours, g_torch = nbytes / med["pykernels"] / 1e9, nbytes / med["torch"] / 1e9
    return {"case": label, "shape": "x".join(map(str, shape)), "threads": threads,
            "pykernels ms": 1e3 * med["pykernels"], "torch ms": 1e3 * med["torch"],
            "pykernels GB/s": g_ours, "torch GB/s": g_torch, "ratio": g_ours / g_torch}


def run(threads=(1, 2), repeats: int = 7, quick: bool = False, **_):
    try:
        import torch  # noqa: F401
    except ImportError:
        return [{"case": "layers", "note": "PyTorch is not installed: nothing to compare"}]
    rng = np.random.default_rng(0)
    rows = []
    pool_cases = POOL_CASES[::2] if quick else POOL_CASES
    bn_cases = BN_CASES[::2] if quick else BN_CASES
    for t in threads:
        for label, kind, shape, k, s, p in pool_cases:
            x = rng.standard_normal(shape, dtype=np.float32)
            for backward in (False, True):
                ours, theirs, nbytes = _pool_cases(kind, x, k, s, p, backward)
                name = f"{label} {'bwd' if backward else 'fwd'}"
                rows.append(_measure(name, shape, t, repeats, ours, theirs, nbytes))
        for label, shape in bn_cases:
            x = rng.standard_normal(shape, dtype=np.float32)
            for backward in (False, True):
                ours, theirs, nbytes = _bn_cases(x, backward)
                name = f"{label} train {'bwd' if backward else 'fwd'}"
                rows.append(_measure(name, shape, t, repeats, ours, theirs, nbytes))
    return rows

"""Inverted dropout in NumPy, drawing the very same mask as the C++ kernel:
splitmix64 of (seed, i // 2), low 32 bits for even i, high 32 for odd i,
kept when the draw is >= round(p * 2**32)."""

import numpy as np

from .._functional.dropout import _check_p, _check_seed

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(shape, p, seed):
    """The uint8 keep-mask for (shape, p, seed)."""
    n = int(np.prod(shape, dtype=np.int64))
    key = _mix64(np.array([seed], dtype=np.uint64))[0]
    pairs = np.arange((n + 1) // 2, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = _mix64(key + (pairs + np.uint64(1)) * _GOLDEN)
    draws = np.empty(2 * pairs.size, dtype=np.uint64)
    draws[0::2] = h & np.uint64(0xFFFFFFFF)
    draws[1::2] = h >> np.uint64(32)
    threshold = min(int(np.rint(p * 2.0**32)), 2**32)
    return (draws[:n] >= threshold).astype(np.uint8).reshape(shape)


def dropout(x, p, training=True, seed=None):
    p = _check_p(p)
    seed = _check_seed(seed)
    if not training:
        return x.copy(), None
    mask = dropout_mask(x.shape, p, seed)
    scale = 1 / (1 - p) if p < 1 else 0.0
    return (x * (mask * scale).astype(x.dtype)).astype(x.dtype), mask


def dropout_backward(dy, mask, p):
    p = _check_p(p)
    if mask is None:
        return dy.copy()
    scale = 1 / (1 - p) if p < 1 else 0.0
    return (dy * (mask * scale).astype(dy.dtype)).astype(dy.dtype)

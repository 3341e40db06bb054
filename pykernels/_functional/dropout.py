"""Inverted dropout on the CPU and the GPU.

dropout(x, p, training=True, seed=None) -> (y, mask):
- mask is a uint8 array of x's shape, 1 where the element is kept (each with
  probability 1 - p), drawn by a counter-based generator from (seed, element
  index): the same seed gives the same mask for any thread count;
- y = x * mask / (1 - p). Dropped elements are multiplied by 0, as torch does,
  so a NaN or inf input stays NaN there; p = 1 gives zeros for finite x;
- seed=None draws a fresh 64-bit seed from NumPy's OS-entropy generator;
- p = 0 returns y equal to x and a mask of ones; training=False returns a copy
  of x and mask None (dropout is the identity in eval mode).
dropout_backward(dy, mask, p) -> dx = dy * mask / (1 - p); with mask None (eval
mode) dx is a copy of dy.
On CuPy arrays the GPU kernels (cuda/dropout.cu) use the same generator
(csrc/include/pykernels/counter_rng.h): one seed gives the same mask on the
CPU and the GPU.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._backend import accepts_cuda_interface, cpu, current_stream_ptr, require_cuda
from .._validate import device_of, float32_contiguous

__all__ = ["dropout", "dropout_backward"]


def _check_p(p):
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a real number, got {p!r}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must lie in [0, 1], got {p}")
    return p


def _check_seed(seed):
    if seed is None:
        return int(np.random.default_rng().integers(0, 2**64, dtype=np.uint64))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must lie in [0, 2**64), got {seed}")
    return seed


def _empty(device, shape, dtype):
    if device == "cpu":
        return np.empty(shape, dtype=dtype)
    import cupy

    return cupy.empty(shape, dtype=dtype)


@accepts_cuda_interface
def dropout(x, p, training=True, seed=None):
    """Inverted dropout; returns (y, mask) with a uint8 mask (see module doc)."""
    device = device_of(x=x)
    p = _check_p(p)
    seed = _check_seed(seed)
    x = float32_contiguous(x, "x")
    if not training:
        return x.copy(), None
    y = _empty(device, x.shape, np.float32)
    mask = _empty(device, x.shape, np.uint8)
    if device == "cpu":
        cpu().dropout_forward(x, y, mask, p, seed)
    else:
        require_cuda().dropout_forward(x.data.ptr, y.data.ptr, mask.data.ptr, x.size, p, seed,
                                       current_stream_ptr())
    return y, mask


@accepts_cuda_interface
def dropout_backward(dy, mask, p):
    """dx = dy * mask / (1 - p); mask None (eval mode) gives a copy of dy."""
    device = device_of(dy=dy)
    p = _check_p(p)
    dy = float32_contiguous(dy, "dy")
    if mask is None:
        return dy.copy()
    device_of(dy=dy, mask=mask)
    if mask.dtype != np.uint8:
        raise TypeError(f"mask has dtype {mask.dtype}, expected uint8 (from dropout)")
    if tuple(mask.shape) != tuple(dy.shape):
        raise ValueError(f"dy and mask must have the same shape, got dy: {tuple(dy.shape)} "
                         f"and mask: {tuple(mask.shape)}")
    dx = _empty(device, dy.shape, np.float32)
    if device == "cpu":
        cpu().dropout_backward(dy, np.ascontiguousarray(mask), dx, p)
    else:
        import cupy

        mask = cupy.ascontiguousarray(mask)
        require_cuda().dropout_backward(dy.data.ptr, mask.data.ptr, dx.data.ptr, dy.size, p,
                                        current_stream_ptr())
    return dx

"""2-D max, average and adaptive average pooling on the CPU, NCHW (or CHW).

Semantics are torch.nn.functional's with ceil_mode=False, dilation=1 and,
for avg_pool2d, count_include_pad=True:
- output size (H + 2 * padding - kernel) // stride + 1, which must be >= 1;
- padding at most half the kernel (PyTorch refuses more too);
- max_pool2d pads with -inf, returns indices as int64 flat positions
  h * W + w within each H x W input plane (PyTorch's return_indices), and lets
  a NaN in the window win;
- adaptive_avg_pool2d bins rows floor(i * H / OH) .. ceil((i + 1) * H / OH);
  output_size 1 is the global average pooling of ResNet.
"""

from __future__ import annotations

import numpy as np

from .._backend import cpu
from .._validate import device_of, float32_contiguous, int_pair

__all__ = [
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
]


# ---- argument checks --------------------------------------------------------

def _as_nchw(x, name: str = "x"):
    """x as a 4-D contiguous float32 array (a CHW input gains N = 1)."""
    if device_of(**{name: x}) != "cpu":
        raise NotImplementedError("pooling on CuPy arrays is not available yet")
    if x.ndim not in (3, 4):
        raise ValueError(f"{name} must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}")
    if any(d == 0 for d in x.shape[-3:]):
        raise ValueError(f"{name} has shape {x.shape}: only the batch dimension may be 0")
    x = float32_contiguous(x, name)
    return x if x.ndim == 4 else x[None]


def _input_shape(input_shape):
    shape = tuple(int(d) for d in input_shape)
    if len(shape) not in (3, 4) or any(d < 0 for d in shape) or any(d == 0 for d in shape[-3:]):
        raise ValueError(f"input_shape must be (N, C, H, W) or (C, H, W) with C, H, W >= 1, "
                         f"got {input_shape}")
    return shape


def _window(in_hw, kernel_size, stride, padding):
    """((kh, kw), (sh, sw), (ph, pw), (oh, ow)) checked as PyTorch does."""
    k = int_pair(kernel_size, "kernel_size")
    s = k if stride is None else int_pair(stride, "stride")
    p = int_pair(padding, "padding")
    if min(k) < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size!r}")
    if min(s) < 1:
        raise ValueError(f"stride must be >= 1, got {stride!r}")
    if min(p) < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    if max(*k, *s, *p) >= 2**31:  # int32 in PyTorch too; kh * kw would overflow
        raise ValueError(f"kernel_size {k}, stride {s} and padding {p} must be below 2**31")
    if 2 * p[0] > k[0] or 2 * p[1] > k[1]:
        raise ValueError(f"padding {p} must be at most half of kernel_size {k}")
    out = tuple((n + 2 * pad - kk) // ss + 1 for n, kk, ss, pad in zip(in_hw, k, s, p))
    if any(n + 2 * pad < kk for n, kk, pad in zip(in_hw, k, p)) or min(out) < 1:
        raise ValueError(f"output size {out} is below 1: input H, W {tuple(in_hw)} with "
                         f"kernel_size {k}, stride {s}, padding {p}")
    return k, s, p, out


def _check_grad(dy, expected, name="dy"):
    if tuple(dy.shape) != tuple(expected):
        raise ValueError(f"{name} has shape {tuple(dy.shape)}, expected {tuple(expected)}")


# ---- max pooling -------------------------------------------------------------

def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling; returns (y, indices) with int64 indices h * W + w into each
    input plane, as torch's max_pool2d(..., return_indices=True)."""
    x4 = _as_nchw(x)
    k, s, p, out = _window(x4.shape[2:], kernel_size, stride, padding)
    y = np.empty((*x4.shape[:2], *out), dtype=np.float32)
    indices = np.empty(y.shape, dtype=np.int64)
    cpu().max_pool2d_forward(x4, y, indices, k, s, p)
    if x.ndim == 3:
        return y[0], indices[0]
    return y, indices


def max_pool2d_backward(dy, indices, input_shape):
    """dx of input_shape with dy scattered (added) onto the positions in indices."""
    shape = _input_shape(input_shape)
    if device_of(dy=dy, indices=indices) != "cpu":
        raise NotImplementedError("pooling on CuPy arrays is not available yet")
    if indices.dtype != np.int64:
        raise TypeError(f"indices has dtype {indices.dtype}, expected int64 (from max_pool2d)")
    if dy.ndim != len(shape) or tuple(dy.shape[:-2]) != shape[:-2]:
        raise ValueError(f"dy has shape {dy.shape}, which does not fit input_shape {shape}")
    _check_grad(indices, dy.shape, "indices")
    dy4 = float32_contiguous(dy, "dy")
    idx4 = np.ascontiguousarray(indices)
    if dy4.ndim == 3:
        dy4, idx4 = dy4[None], idx4[None]
    dx = np.empty(shape if len(shape) == 4 else (1, *shape), dtype=np.float32)
    cpu().max_pool2d_backward(dy4, idx4, dx)
    return dx.reshape(shape)


# ---- average pooling ---------------------------------------------------------

def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling, count_include_pad=True, ceil_mode=False (torch defaults)."""
    x4 = _as_nchw(x)
    k, s, p, out = _window(x4.shape[2:], kernel_size, stride, padding)
    y = np.empty((*x4.shape[:2], *out), dtype=np.float32)
    cpu().avg_pool2d_forward(x4, y, k, s, p)
    return y[0] if x.ndim == 3 else y


def avg_pool2d_backward(dy, input_shape, kernel_size, stride=None, padding=0):
    """dx of input_shape: each dy spread evenly over its window (kh * kw)."""
    shape = _input_shape(input_shape)
    if device_of(dy=dy) != "cpu":
        raise NotImplementedError("pooling on CuPy arrays is not available yet")
    k, s, p, out = _window(shape[-2:], kernel_size, stride, padding)
    _check_grad(dy, (*shape[:-2], *out))
    dy4 = float32_contiguous(dy, "dy")
    dy4 = dy4 if dy4.ndim == 4 else dy4[None]
    dx = np.empty(shape if len(shape) == 4 else (1, *shape), dtype=np.float32)
    cpu().avg_pool2d_backward(dy4, dx, k, s, p)
    return dx.reshape(shape)


# ---- adaptive average pooling --------------------------------------------------

def _adaptive_out(output_size, in_hw):
    out = int_pair(output_size, "output_size", allow_none=True)
    out = tuple(n if o is None else o for o, n in zip(out, in_hw))
    if min(out) < 1:
        raise ValueError(f"output_size must be >= 1, got {output_size!r}")
    return out


def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling to output_size (int, pair, None = keep), as torch;
    output_size=1 is global average pooling."""
    x4 = _as_nchw(x)
    out = _adaptive_out(output_size, x4.shape[2:])
    y = np.empty((*x4.shape[:2], *out), dtype=np.float32)
    cpu().adaptive_avg_pool2d_forward(x4, y)
    return y[0] if x.ndim == 3 else y


def adaptive_avg_pool2d_backward(dy, input_shape):
    """dx of input_shape: each dy spread evenly over its bin; the output size is
    dy's last two dimensions."""
    shape = _input_shape(input_shape)
    if device_of(dy=dy) != "cpu":
        raise NotImplementedError("pooling on CuPy arrays is not available yet")
    if dy.ndim != len(shape) or tuple(dy.shape[:-2]) != shape[:-2] or min(dy.shape[-2:]) < 1:
        raise ValueError(f"dy has shape {dy.shape}, which does not fit input_shape {shape}")
    dy4 = float32_contiguous(dy, "dy")
    dy4 = dy4 if dy4.ndim == 4 else dy4[None]
    dx = np.empty(shape if len(shape) == 4 else (1, *shape), dtype=np.float32)
    cpu().adaptive_avg_pool2d_backward(dy4, dx)
    return dx.reshape(shape)

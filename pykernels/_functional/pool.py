"""2-D max, average and adaptive average pooling, NCHW (or CHW), on NumPy
arrays (the C++ kernels of csrc/pool.cpp) or CuPy arrays (cuda/pool.cu).

Semantics are torch.nn.functional's with ceil_mode=False, dilation=1 and,
for avg_pool2d, count_include_pad=True:
- output size (H + 2 * padding - kernel) // stride + 1, which must be >= 1;
- padding at most half the kernel (PyTorch refuses more too);
- max_pool2d pads with -inf, returns indices as int64 flat positions
  h * W + w within each H x W input plane (PyTorch's return_indices), and lets
  a NaN in the window win;
- adaptive_avg_pool2d bins rows floor(i * H / OH) .. ceil((i + 1) * H / OH);
  output_size 1 is the global average pooling of ResNet.
On the GPU every backward pass is a gather without atomics, adding in the
CPU's order, so GPU gradients are bitwise equal to the CPU's and repeatable.
max_pool2d_backward on the GPU reads back one flag (a stream sync) to raise,
as the CPU does, on indices outside their input plane.
"""

from __future__ import annotations

import numpy as np

from .._backend import accepts_cuda_interface, cpu, current_stream_ptr, require_cuda
from .._validate import device_of, float32_contiguous, int_pair

__all__ = [
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
]


# ---- argument checks --------------------------------------------------------

def _as_nchw(x, name: str = "x"):
    """x as a 4-D contiguous float32 array (a CHW input gains N = 1)."""
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


def _empty(device, shape, dtype=np.float32):
    if device == "cpu":
        return np.empty(shape, dtype=dtype)
    import cupy

    return cupy.empty(shape, dtype=dtype)


def _contiguous(device, a):
    if device == "cpu":
        return np.ascontiguousarray(a)
    import cupy

    return cupy.ascontiguousarray(a)


def _planes(shape4):
    """(N * C, H, W) of an NCHW shape: the kernels see independent planes."""
    return shape4[0] * shape4[1], shape4[2], shape4[3]


def _check_grad(dy, expected, name="dy"):
    if tuple(dy.shape) != tuple(expected):
        raise ValueError(f"{name} has shape {tuple(dy.shape)}, expected {tuple(expected)}")


# ---- max pooling -------------------------------------------------------------

@accepts_cuda_interface
def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling; returns (y, indices) with int64 indices h * W + w into each
    input plane, as torch's max_pool2d(..., return_indices=True)."""
    device = device_of(x=x)
    x4 = _as_nchw(x)
    k, s, p, out = _window(x4.shape[2:], kernel_size, stride, padding)
    y = _empty(device, (*x4.shape[:2], *out))
    indices = _empty(device, y.shape, np.int64)
    if device == "cpu":
        cpu().max_pool2d_forward(x4, y, indices, k, s, p)
    else:
        require_cuda().max_pool2d_forward(x4.data.ptr, y.data.ptr, indices.data.ptr,
                                          *_planes(x4.shape), *out, k, s, p,
                                          current_stream_ptr())
    if x.ndim == 3:
        return y[0], indices[0]
    return y, indices


@accepts_cuda_interface
def max_pool2d_backward(dy, indices, input_shape):
    """dx of input_shape with dy scattered (added) onto the positions in indices."""
    shape = _input_shape(input_shape)
    device = device_of(dy=dy, indices=indices)
    if indices.dtype != np.int64:
        raise TypeError(f"indices has dtype {indices.dtype}, expected int64 (from max_pool2d)")
    if dy.ndim != len(shape) or tuple(dy.shape[:-2]) != shape[:-2]:
        raise ValueError(f"dy has shape {dy.shape}, which does not fit input_shape {shape}")
    _check_grad(indices, dy.shape, "indices")
    dy4 = float32_contiguous(dy, "dy")
    idx4 = _contiguous(device, indices)
    if dy4.ndim == 3:
        dy4, idx4 = dy4[None], idx4[None]
    dx = _empty(device, shape if len(shape) == 4 else (1, *shape))
    if device == "cpu":
        cpu().max_pool2d_backward(dy4, idx4, dx)
    else:
        _max_pool2d_backward_gpu(dy4, idx4, dx)
    return dx.reshape(shape)


def _max_pool2d_backward_gpu(dy4, idx4, dx):
    import cupy

    bad = cupy.zeros(1, dtype=cupy.int32)
    require_cuda().max_pool2d_backward(dy4.data.ptr, idx4.data.ptr, dx.data.ptr, bad.data.ptr,
                                       *_planes(dx.shape), *dy4.shape[2:], current_stream_ptr())
    if cupy.asnumpy(bad)[0]:  # ordered after the kernel: same (current) stream
        raise ValueError("indices lie outside their H x W input plane")


# ---- average pooling ---------------------------------------------------------

@accepts_cuda_interface
def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling, count_include_pad=True, ceil_mode=False (torch defaults)."""
    device = device_of(x=x)
    x4 = _as_nchw(x)
    k, s, p, out = _window(x4.shape[2:], kernel_size, stride, padding)
    y = _empty(device, (*x4.shape[:2], *out))
    if device == "cpu":
        cpu().avg_pool2d_forward(x4, y, k, s, p)
    else:
        require_cuda().avg_pool2d_forward(x4.data.ptr, y.data.ptr, *_planes(x4.shape), *out, k,
                                          s, p, current_stream_ptr())
    return y[0] if x.ndim == 3 else y


@accepts_cuda_interface
def avg_pool2d_backward(dy, input_shape, kernel_size, stride=None, padding=0):
    """dx of input_shape: each dy spread evenly over its window (kh * kw)."""
    shape = _input_shape(input_shape)
    device = device_of(dy=dy)
    k, s, p, out = _window(shape[-2:], kernel_size, stride, padding)
    _check_grad(dy, (*shape[:-2], *out))
    dy4 = float32_contiguous(dy, "dy")
    dy4 = dy4 if dy4.ndim == 4 else dy4[None]
    dx = _empty(device, shape if len(shape) == 4 else (1, *shape))
    if device == "cpu":
        cpu().avg_pool2d_backward(dy4, dx, k, s, p)
    else:
        require_cuda().avg_pool2d_backward(dy4.data.ptr, dx.data.ptr, *_planes(dx.shape), *out,
                                           k, s, p, current_stream_ptr())
    return dx.reshape(shape)


# ---- adaptive average pooling --------------------------------------------------

def _adaptive_out(output_size, in_hw):
    out = int_pair(output_size, "output_size", allow_none=True)
    out = tuple(n if o is None else o for o, n in zip(out, in_hw))
    if min(out) < 1:
        raise ValueError(f"output_size must be >= 1, got {output_size!r}")
    return out


@accepts_cuda_interface
def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling to output_size (int, pair, None = keep), as torch;
    output_size=1 is global average pooling."""
    device = device_of(x=x)
    x4 = _as_nchw(x)
    out = _adaptive_out(output_size, x4.shape[2:])
    y = _empty(device, (*x4.shape[:2], *out))
    if device == "cpu":
        cpu().adaptive_avg_pool2d_forward(x4, y)
    else:
        require_cuda().adaptive_avg_pool2d_forward(x4.data.ptr, y.data.ptr, *_planes(x4.shape),
                                                   *out, current_stream_ptr())
    return y[0] if x.ndim == 3 else y


@accepts_cuda_interface
def adaptive_avg_pool2d_backward(dy, input_shape):
    """dx of input_shape: each dy spread evenly over its bin; the output size is
    dy's last two dimensions."""
    shape = _input_shape(input_shape)
    device = device_of(dy=dy)
    if dy.ndim != len(shape) or tuple(dy.shape[:-2]) != shape[:-2] or min(dy.shape[-2:]) < 1:
        raise ValueError(f"dy has shape {dy.shape}, which does not fit input_shape {shape}")
    dy4 = float32_contiguous(dy, "dy")
    dy4 = dy4 if dy4.ndim == 4 else dy4[None]
    dx = _empty(device, shape if len(shape) == 4 else (1, *shape))
    if device == "cpu":
        cpu().adaptive_avg_pool2d_backward(dy4, dx)
    else:
        require_cuda().adaptive_avg_pool2d_backward(dy4.data.ptr, dx.data.ptr,
                                                    *_planes(dx.shape), *dy4.shape[2:],
                                                    current_stream_ptr())
    return dx.reshape(shape)

"""Public ops: validate arguments, pick the backend from the array type, call
the kernel. NumPy arrays run on `_cpu` with the GIL released; CuPy arrays run
on `_cuda` on CuPy's current stream and come back as CuPy arrays.
"""

from __future__ import annotations

import numpy as np

from ._backend import cpu, current_stream_ptr, require_cuda
from ._validate import device_of, float32_contiguous, output_array, same_shape


def _empty_like(x):
    if isinstance(x, np.ndarray):
        return np.empty(x.shape, dtype=np.float32)
    import cupy

    return cupy.empty(x.shape, dtype=cupy.float32)


def _result(out, like, device):
    return _empty_like(like) if out is None else output_array(out, like.shape, device)


def relu(x, *, out=None):
    """max(x, 0) elementwise, keeping NaN and -0.0 as torch.relu does.

    `out`, if given, must be a C-contiguous float32 array of x's shape; it may
    be x itself for an in-place ReLU.
    """
    device = device_of(x=x)
    x = float32_contiguous(x, "x")
    y = _result(out, x, device)
    if device == "cpu":
        cpu().relu_forward(x, y)
    else:
        require_cuda().relu_forward(x.data.ptr, y.data.ptr, x.size, current_stream_ptr())
    return y


def relu_backward(dy, y, *, out=None):
    """Gradient of relu given the upstream gradient `dy` and relu's output `y`."""
    device = device_of(dy=dy, y=y)
    same_shape(dy, y, "dy", "y")
    dy = float32_contiguous(dy, "dy")
    y = float32_contiguous(y, "y")
    dx = _result(out, dy, device)
    if device == "cpu":
        cpu().relu_backward(dy, y, dx)
    else:
        require_cuda().relu_backward(
            dy.data.ptr, y.data.ptr, dx.data.ptr, dy.size, current_stream_ptr()
        )
    return dx

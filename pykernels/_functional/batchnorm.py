"""Batch normalization over x of shape (N, C, *): (N, C, H, W) for
BatchNorm2d, (N, C) or (N, C, L) for BatchNorm1d. Statistics are per channel
over the N * prod(*) values of that channel.

training=True: normalize with the batch mean and the biased batch variance;
update running_mean / running_var (when given) in place, as torch does, with
`momentum` and the unbiased variance. training=False: normalize with the
running statistics.

Returns (y, save_mean, save_invstd). In training they are the batch mean and
1 / sqrt(var + eps); in eval mode the running mean and
1 / sqrt(running_var + eps) (torch returns empty tensors there; these are what
an eval-mode backward needs).

NumPy arrays run on the CPU (csrc/batchnorm.cpp), CuPy arrays on the GPU
(cuda/batchnorm.cu) with the same validation; every array of one call lives
on one device, and the outputs are arrays of that device.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._backend import accepts_cuda_interface, cpu, current_stream_ptr, require_cuda
from .._validate import device_of, float32_contiguous

__all__ = ["batch_norm", "batch_norm_backward"]


def _check_x(x, name="x"):
    if x.ndim < 2:
        raise ValueError(f"{name} must be (N, C, ...) with at least 2 dimensions, got shape "
                         f"{x.shape}")


def _channel_vector(v, name, channels, device):
    if v is None:
        return None
    _same_device(v, name, device)
    if tuple(v.shape) != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) for x with {channels} "
                         f"channels, got {tuple(v.shape)}")
    return float32_contiguous(v, name)


def _same_device(v, name, device):
    if device_of(**{name: v}) != device:
        kind = "numpy.ndarray" if device == "cpu" else "cupy.ndarray"
        raise TypeError(f"{name} must be a {kind} like x, got {type(v).__name__}")


def _running_stat(v, name, channels, training, device):
    """Running statistics are written in place in training, so they must be
    usable as they are (a copy would silently drop the update)."""
    if v is None:
        return None
    if device == "cpu" and not isinstance(v, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(v).__name__}")
    _same_device(v, name, device)
    if v.dtype != np.float32:
        raise TypeError(f"{name} has dtype {v.dtype}, it must be float32")
    if tuple(v.shape) != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) for x with {channels} "
                         f"channels, got {tuple(v.shape)}")
    if not training:
        return float32_contiguous(v, name)
    writeable = getattr(v.flags, "writeable", True)  # CuPy arrays are always writeable
    if not v.flags.c_contiguous or not writeable:
        raise ValueError(f"{name} is updated in place, so it must be a writeable "
                         "C-contiguous array")
    return v


def _check_number(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _empty(device, shape):
    if device == "cpu":
        return np.empty(shape, dtype=np.float32)
    import cupy

    return cupy.empty(shape, dtype=cupy.float32)


def _view(x):
    """(batch, channels, spatial) of x: NCHW has spatial = H * W."""
    spatial = 1
    for d in x.shape[2:]:
        spatial *= int(d)
    return int(x.shape[0]), int(x.shape[1]), spatial


def _ptr(v):
    return 0 if v is None else v.data.ptr


def _workspace(view):
    """GPU scratch for the kernels' per-tile partial sums (CuPy's pool)."""
    import cupy

    nbytes = require_cuda().batch_norm_workspace_bytes(*view)
    return cupy.empty(max(nbytes, 8) // 8, dtype=cupy.float64), nbytes


@accepts_cuda_interface
def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    """y = (x - mean) / sqrt(var + eps) * weight + bias per channel (see module
    doc); returns (y, save_mean, save_invstd)."""
    device = device_of(x=x)
    _check_x(x)
    channels = x.shape[1]
    training = bool(training)
    momentum = _check_number(momentum, "momentum")
    eps = _check_number(eps, "eps")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    weight = _channel_vector(weight, "weight", channels, device)
    bias = _channel_vector(bias, "bias", channels, device)
    running_mean = _running_stat(running_mean, "running_mean", channels, training, device)
    running_var = _running_stat(running_var, "running_var", channels, training, device)
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm with training=False needs running_mean and running_var")
    per_channel = x.size // channels if channels else 0
    if training and per_channel == 1:
        raise ValueError(f"batch_norm in training needs more than 1 value per channel, "
                         f"got x of shape {x.shape}")
    x = float32_contiguous(x, "x")
    y = _empty(device, x.shape)
    save_mean = _empty(device, channels)
    save_invstd = _empty(device, channels)
    if training and per_channel == 0:
        # An empty batch has no statistics (torch gives NaN) and leaves the
        # running statistics as they were.
        save_mean.fill(np.nan)
        save_invstd.fill(np.nan)
        return y, save_mean, save_invstd
    if device == "cpu":
        cpu().batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum,
                                 eps, y, save_mean, save_invstd)
        return y, save_mean, save_invstd
    view = _view(x)
    workspace, nbytes = _workspace(view)
    require_cuda().batch_norm_forward(
        x.data.ptr, _ptr(weight), _ptr(bias), _ptr(running_mean), _ptr(running_var), training,
        momentum, eps, y.data.ptr, save_mean.data.ptr, save_invstd.data.ptr, workspace.data.ptr,
        nbytes, *view, current_stream_ptr())
    return y, save_mean, save_invstd


@accepts_cuda_interface
def batch_norm_backward(dy, x, weight, save_mean, save_invstd, *, training=True):
    """(dx, dweight, dbias) of batch_norm, from the save_mean / save_invstd it
    returned.

    training=True (the default): the batch statistics depended on x, so
        dx = weight * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)),
        xhat = (x - save_mean) * save_invstd, means over each channel's values.
    training=False: the running statistics are constants, dx = dy * weight * invstd.
    Either way dbias = sum(dy) and dweight = sum(dy * xhat) per channel; they
    are returned even when weight is None (what the gradient of a weight of
    ones and a bias of zeros would be).
    """
    device = device_of(dy=dy, x=x)
    _check_x(x)
    if tuple(dy.shape) != tuple(x.shape):
        raise ValueError(f"dy and x must have the same shape, got dy: {tuple(dy.shape)} and "
                         f"x: {tuple(x.shape)}")
    channels = x.shape[1]
    weight = _channel_vector(weight, "weight", channels, device)
    save_mean = _channel_vector(save_mean, "save_mean", channels, device)
    save_invstd = _channel_vector(save_invstd, "save_invstd", channels, device)
    dy = float32_contiguous(dy, "dy")
    x = float32_contiguous(x, "x")
    dx = _empty(device, x.shape)
    dweight = _empty(device, channels)
    dbias = _empty(device, channels)
    if device == "cpu":
        cpu().batch_norm_backward(dy, x, weight, save_mean, save_invstd, bool(training), dx,
                                  dweight, dbias)
        return dx, dweight, dbias
    view = _view(x)
    workspace, nbytes = _workspace(view)
    require_cuda().batch_norm_backward(
        dy.data.ptr, x.data.ptr, _ptr(weight), save_mean.data.ptr, save_invstd.data.ptr,
        bool(training), dx.data.ptr, dweight.data.ptr, dbias.data.ptr, workspace.data.ptr, nbytes,
        *view, current_stream_ptr())
    return dx, dweight, dbias

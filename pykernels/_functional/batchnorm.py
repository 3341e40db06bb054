"""Batch normalization on the CPU over x of shape (N, C, *): (N, C, H, W) for
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
"""

from __future__ import annotations

import numbers

import numpy as np

from .._backend import cpu
from .._validate import device_of, float32_contiguous

__all__ = ["batch_norm", "batch_norm_backward"]


def _check_x(x, name="x"):
    if x.ndim < 2:
        raise ValueError(f"{name} must be (N, C, ...) with at least 2 dimensions, got shape "
                         f"{x.shape}")


def _channel_vector(v, name, channels):
    if v is None:
        return None
    device_of(**{name: v})
    if tuple(v.shape) != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) for x with {channels} "
                         f"channels, got {tuple(v.shape)}")
    return float32_contiguous(v, name)


def _running_stat(v, name, channels, training):
    """Running statistics are written in place in training, so they must be
    usable as they are (a copy would silently drop the update)."""
    if v is None:
        return None
    if not isinstance(v, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(v).__name__}")
    if v.dtype != np.float32:
        raise TypeError(f"{name} has dtype {v.dtype}, it must be float32")
    if tuple(v.shape) != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) for x with {channels} "
                         f"channels, got {tuple(v.shape)}")
    if not training:
        return np.ascontiguousarray(v)
    if not v.flags.c_contiguous or not v.flags.writeable:
        raise ValueError(f"{name} is updated in place, so it must be a writeable "
                         "C-contiguous array")
    return v


def _check_number(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    """y = (x - mean) / sqrt(var + eps) * weight + bias per channel (see module
    doc); returns (y, save_mean, save_invstd)."""
    if device_of(x=x) != "cpu":
        raise NotImplementedError("batch_norm on CuPy arrays is not available yet")
    _check_x(x)
    channels = x.shape[1]
    training = bool(training)
    momentum = _check_number(momentum, "momentum")
    eps = _check_number(eps, "eps")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    weight = _channel_vector(weight, "weight", channels)
    bias = _channel_vector(bias, "bias", channels)
    running_mean = _running_stat(running_mean, "running_mean", channels, training)
    running_var = _running_stat(running_var, "running_var", channels, training)
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm with training=False needs running_mean and running_var")
    per_channel = x.size // channels if channels else 0
    if training and per_channel == 1:
        raise ValueError(f"batch_norm in training needs more than 1 value per channel, "
                         f"got x of shape {x.shape}")
    x = float32_contiguous(x, "x")
    y = np.empty(x.shape, dtype=np.float32)
    save_mean = np.empty(channels, dtype=np.float32)
    save_invstd = np.empty(channels, dtype=np.float32)
    if training and per_channel == 0:
        # An empty batch has no statistics (torch gives NaN) and leaves the
        # running statistics as they were.
        save_mean.fill(np.nan)
        save_invstd.fill(np.nan)
        return y, save_mean, save_invstd
    cpu().batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum,
                             eps, y, save_mean, save_invstd)
    return y, save_mean, save_invstd


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
    if device_of(dy=dy, x=x) != "cpu":
        raise NotImplementedError("batch_norm on CuPy arrays is not available yet")
    _check_x(x)
    if tuple(dy.shape) != tuple(x.shape):
        raise ValueError(f"dy and x must have the same shape, got dy: {tuple(dy.shape)} and "
                         f"x: {tuple(x.shape)}")
    channels = x.shape[1]
    weight = _channel_vector(weight, "weight", channels)
    save_mean = _channel_vector(save_mean, "save_mean", channels)
    save_invstd = _channel_vector(save_invstd, "save_invstd", channels)
    dy = float32_contiguous(dy, "dy")
    x = float32_contiguous(x, "x")
    dx = np.empty(x.shape, dtype=np.float32)
    dweight = np.empty(channels, dtype=np.float32)
    dbias = np.empty(channels, dtype=np.float32)
    cpu().batch_norm_backward(dy, x, weight, save_mean, save_invstd, bool(training), dx,
                              dweight, dbias)
    return dx, dweight, dbias

"""Batch normalization in NumPy over x of shape (N, C, *), in x's dtype, the
textbook formulas (two-pass variance). Same signatures and semantics as
pykernels.functional: running statistics are updated in place in training."""

import numpy as np


def _axes(x):
    return (0, *range(2, x.ndim))


def _per_channel(v, x):
    return v.reshape(1, -1, *([1] * (x.ndim - 2)))


def batch_norm(x, running_mean, running_var, weight, bias, training, momentum=0.1, eps=1e-5):
    axes = _axes(x)
    if training:
        count = x.size // x.shape[1]
        mean = x.mean(axis=axes)
        var = ((x - _per_channel(mean, x)) ** 2).mean(axis=axes)
        if running_mean is not None:
            running_mean[...] = (1 - momentum) * running_mean + momentum * mean
        if running_var is not None:
            running_var[...] = (1 - momentum) * running_var + momentum * var * count / (count - 1)
    else:
        mean, var = running_mean.astype(x.dtype), running_var.astype(x.dtype)
    invstd = 1 / np.sqrt(var + eps)
    y = (x - _per_channel(mean, x)) * _per_channel(invstd, x)
    if weight is not None:
        y = y * _per_channel(weight, x)
    if bias is not None:
        y = y + _per_channel(bias, x)
    return y.astype(x.dtype), mean.astype(x.dtype), invstd.astype(x.dtype)


def batch_norm_backward(dy, x, weight, save_mean, save_invstd, *, training=True):
    axes = _axes(x)
    count = x.size // x.shape[1]
    xhat = (x - _per_channel(save_mean, x)) * _per_channel(save_invstd, x)
    dbias = dy.sum(axis=axes)
    dweight = (dy * xhat).sum(axis=axes)
    scale = save_invstd if weight is None else weight * save_invstd
    if training:
        dx = _per_channel(scale, x) * (dy - _per_channel(dbias / count, x)
                                       - xhat * _per_channel(dweight / count, x))
    else:
        dx = dy * _per_channel(scale, x)
    return dx.astype(dy.dtype), dweight.astype(dy.dtype), dbias.astype(dy.dtype)

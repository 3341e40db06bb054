"""Pooling in NumPy, loops over output positions, vectorized over N and C.
Same semantics as pykernels.functional (torch's, ceil_mode=False,
count_include_pad=True). Windows are clipped to the input instead of padded:
padding never wins a max (it is -inf) and only counts in the avg divisor."""

import numpy as np

from .._functional.pool import _adaptive_out, _input_shape, _window


def _span(o, stride, pad, kernel, size):
    start = o * stride - pad
    return max(start, 0), min(start + kernel, size), min(start + kernel, size + pad) - start


def _windows(in_hw, k, s, p, out):
    """(oh, ow, rows, cols, count) for every output position."""
    for oh in range(out[0]):
        h0, h1, ch = _span(oh, s[0], p[0], k[0], in_hw[0])
        for ow in range(out[1]):
            w0, w1, cw = _span(ow, s[1], p[1], k[1], in_hw[1])
            yield oh, ow, slice(h0, h1), slice(w0, w1), ch * cw


def max_pool2d(x, kernel_size, stride=None, padding=0):
    k, s, p, out = _window(x.shape[-2:], kernel_size, stride, padding)
    W = x.shape[-1]
    y = np.empty((*x.shape[:-2], *out), dtype=x.dtype)
    idx = np.empty(y.shape, dtype=np.int64)
    for oh, ow, rows, cols, _ in _windows(x.shape[-2:], k, s, p, out):
        win = x[..., rows, cols]
        flat = win.reshape(*win.shape[:-2], win.shape[-2] * win.shape[-1])  # -1 fails for N=0
        # torch's scan: the first strict maximum, unless a NaN is present, in
        # which case the last NaN.
        nan = np.isnan(flat)
        last_nan = flat.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
        first_max = np.argmax(np.where(nan, -np.inf, flat), axis=-1)
        pick = np.where(nan.any(axis=-1), last_nan, first_max)
        ph, pw = np.divmod(pick, win.shape[-1])
        y[..., oh, ow] = np.take_along_axis(flat, pick[..., None], axis=-1)[..., 0]
        idx[..., oh, ow] = (ph + rows.start) * W + (pw + cols.start)
    return y, idx


def max_pool2d_backward(dy, indices, input_shape):
    shape = _input_shape(input_shape)
    dx = np.zeros((*shape[:-2], shape[-2] * shape[-1]), dtype=dy.dtype)
    plane = dy.shape[-2] * dy.shape[-1]  # not -1: that cannot reshape an empty batch
    flat_dy = dy.reshape(*dy.shape[:-2], plane)
    flat_idx = indices.reshape(*indices.shape[:-2], plane)
    lead = np.indices(flat_idx.shape[:-1]).reshape(len(shape) - 2, -1)
    for j in range(flat_idx.shape[-1]):
        np.add.at(dx, (*lead, flat_idx[..., j].ravel()), flat_dy[..., j].ravel())
    return dx.reshape(shape)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    k, s, p, out = _window(x.shape[-2:], kernel_size, stride, padding)
    y = np.empty((*x.shape[:-2], *out), dtype=x.dtype)
    for oh, ow, rows, cols, count in _windows(x.shape[-2:], k, s, p, out):
        y[..., oh, ow] = x[..., rows, cols].sum(axis=(-2, -1)) / count
    return y


def avg_pool2d_backward(dy, input_shape, kernel_size, stride=None, padding=0):
    shape = _input_shape(input_shape)
    k, s, p, out = _window(shape[-2:], kernel_size, stride, padding)
    dx = np.zeros(shape, dtype=dy.dtype)
    for oh, ow, rows, cols, count in _windows(shape[-2:], k, s, p, out):
        dx[..., rows, cols] += (dy[..., oh, ow] / count)[..., None, None]
    return dx


def _bins(out, size):
    return [slice(o * size // out, -(-(o + 1) * size // out)) for o in range(out)]


def adaptive_avg_pool2d(x, output_size):
    out = _adaptive_out(output_size, x.shape[-2:])
    y = np.empty((*x.shape[:-2], *out), dtype=x.dtype)
    for oh, rows in enumerate(_bins(out[0], x.shape[-2])):
        for ow, cols in enumerate(_bins(out[1], x.shape[-1])):
            y[..., oh, ow] = x[..., rows, cols].mean(axis=(-2, -1))
    return y


def adaptive_avg_pool2d_backward(dy, input_shape):
    shape = _input_shape(input_shape)
    dx = np.zeros(shape, dtype=dy.dtype)
    for oh, rows in enumerate(_bins(dy.shape[-2], shape[-2])):
        for ow, cols in enumerate(_bins(dy.shape[-1], shape[-1])):
            count = (rows.stop - rows.start) * (cols.stop - cols.start)
            dx[..., rows, cols] += (dy[..., oh, ow] / count)[..., None, None]
    return dx

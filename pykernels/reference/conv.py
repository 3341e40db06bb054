"""2-D convolution, im2col and col2im in NumPy, computed in the inputs' dtype.

The column matrix holds, for every output pixel, the receptive field it sees
(zero where the window hangs over the padding):
    cols[n, (c*kh + i)*kw + j, oh*OW + ow] = x_padded[n, c, oh*sh + i*dh, ow*sw + j*dw]
A convolution is then one matrix product per group, and its gradients are the
two transposed products, with col2im scattering the column gradient back.
"""

import numpy as np


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _output_size(h, w, kernel, stride, padding, dilation):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    return (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1


def _window(i, j, oh, ow, stride, dilation):
    """Slices of the padded input that kernel tap (i, j) reads for every output pixel."""
    (sh, sw), (dh, dw) = stride, dilation
    return (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    kernel, stride, padding, dilation = map(_pair, (kernel_size, stride, padding, dilation))
    n, c, h, w = x.shape
    oh, ow = _output_size(h, w, kernel, stride, padding, dilation)
    (kh, kw), (ph, pw) = kernel, padding
    x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window(i, j, oh, ow, stride, dilation)
            cols[:, :, i, j] = x_padded[:, :, rows, columns]
    return cols.reshape(n, c * kh * kw, oh * ow)


def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1):
    kernel, stride, padding, dilation = map(_pair, (kernel_size, stride, padding, dilation))
    n, c, h, w = input_shape
    oh, ow = _output_size(h, w, kernel, stride, padding, dilation)
    (kh, kw), (ph, pw) = kernel, padding
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    x_padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window(i, j, oh, ow, stride, dilation)
            x_padded[:, :, rows, columns] += cols[:, :, i, j]
    return x_padded[:, :, ph:ph + h, pw:pw + w]


def _group_matrices(x, weight, stride, padding, dilation, groups):
    """Per group: the weight matrix (O/g, Kg) and the columns (N, Kg, P)."""
    o, _, kh, kw = weight.shape
    cols = im2col(x, (kh, kw), stride, padding, dilation)
    k_group = cols.shape[1] // groups
    o_group = o // groups
    for g in range(groups):
        w_g = weight[g * o_group:(g + 1) * o_group].reshape(o_group, k_group)
        yield g, w_g, cols[:, g * k_group:(g + 1) * k_group]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    stride, padding, dilation = map(_pair, (stride, padding, dilation))
    n, _, h, w = x.shape
    o, _, kh, kw = weight.shape
    oh, ow = _output_size(h, w, (kh, kw), stride, padding, dilation)
    y = np.concatenate([w_g @ cols_g for _, w_g, cols_g in
                        _group_matrices(x, weight, stride, padding, dilation, groups)], axis=1)
    y = y.reshape(n, o, oh, ow)
    return y if bias is None else y + bias.reshape(1, o, 1, 1)


def conv2d_backward(dy, x, weight, stride=1, padding=0, dilation=1, groups=1):
    stride, padding, dilation = map(_pair, (stride, padding, dilation))
    n, o, oh, ow = dy.shape
    kh, kw = weight.shape[2:]
    o_group = o // groups
    dy_mat = dy.reshape(n, o, oh * ow)
    dcols, dweight = [], []
    for g, w_g, cols_g in _group_matrices(x, weight, stride, padding, dilation, groups):
        dy_g = dy_mat[:, g * o_group:(g + 1) * o_group]
        dcols.append(w_g.T @ dy_g)                                   # (N, Kg, P)
        dweight.append(np.einsum("nop,nkp->ok", dy_g, cols_g))       # sum over the batch
    dx = col2im(np.concatenate(dcols, axis=1), x.shape, (kh, kw), stride, padding, dilation)
    dw = np.concatenate(dweight, axis=0).reshape(weight.shape)
    return dx, dw, dy.sum(axis=(0, 2, 3))

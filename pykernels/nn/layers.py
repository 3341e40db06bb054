"""Layers with explicit forward and backward over pykernels.functional.
Each checks its input shape and names itself in the error."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._validate import int_pair
from . import init
from .module import Module, Parameter


def _shape_error(layer, expected: str, x):
    return ValueError(f"{layer}: expected input of shape {expected}, got {tuple(x.shape)}")


class Linear(Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(init.fan_in_uniform((out_features, in_features), in_features))
        self.bias = Parameter(init.fan_in_uniform((out_features,), in_features)) if bias else None
        self._x = None

    def extra_repr(self):
        return f"{self.in_features} -> {self.out_features}, bias={self.bias is not None}"

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise _shape_error(repr(self), f"(*, {self.in_features})", x)
        self._x = x
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, dy):
        x = self._saved(self._x)
        # dw goes straight into the gradient: AlexNet's fc6 weight is 151 MB,
        # and a separate dw plus `grad += dw` cost a fresh 151 MB and a
        # single-threaded pass over three such arrays (2.2-2.9x slower).
        dx, _, db = F.linear_backward(dy, x, self.weight.data, add_dw_to=self.weight.grad)
        if self.bias is not None:
            self.bias.grad += db
        return dx


class Conv2d(Module):
    """`algo` is conv2d's: "auto", "im2col", or "winograd" (stride-1 3x3 / 5x5
    layers); it may be changed between steps."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, algo="auto"):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels {in_channels} and out_channels "
                             f"{out_channels} must be divisible by groups {groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = int_pair(kernel_size, "kernel_size")
        self.stride, self.padding, self.dilation = (
            int_pair(stride, "stride"), int_pair(padding, "padding"), int_pair(dilation, "dilation"))
        self.groups = groups
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        self.weight = Parameter(init.fan_in_uniform(
            (out_channels, in_channels // groups, *self.kernel_size), fan_in))
        self.bias = Parameter(init.fan_in_uniform((out_channels,), fan_in)) if bias else None
        self.algo = algo
        self._x = None

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")

    def _conv_args(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, algo=self.algo)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise _shape_error(repr(self), f"(N, {self.in_channels}, H, W)", x)
        self._x = x
        return F.conv2d(x, self.weight.data, None if self.bias is None else self.bias.data,
                        **self._conv_args())

    def backward(self, dy):
        x = self._saved(self._x)
        dx, dw, db = F.conv2d_backward(dy, x, self.weight.data, **self._conv_args())
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self._saved_state = None

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, x):
        if x.ndim != 4:
            raise _shape_error(repr(self), "(N, C, H, W)", x)
        y, indices = F.max_pool2d(x, self.kernel_size, self.stride, self.padding)
        self._saved_state = (indices, x.shape)
        return y

    def backward(self, dy):
        indices, shape = self._saved(self._saved_state)
        return F.max_pool2d_backward(dy, indices, shape)


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self._shape = None

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, x):
        if x.ndim != 4:
            raise _shape_error(repr(self), "(N, C, H, W)", x)
        self._shape = x.shape
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def backward(self, dy):
        shape = self._saved(self._shape)
        return F.avg_pool2d_backward(dy, shape, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = int_pair(output_size, "output_size", allow_none=True)
        self._shape = None

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def forward(self, x):
        if x.ndim != 4:
            raise _shape_error(repr(self), "(N, C, H, W)", x)
        self._shape = x.shape
        return F.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, dy):
        return F.adaptive_avg_pool2d_backward(dy, self._saved(self._shape))


class ReLU(Module):
    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x):
        self._y = F.relu(x)
        return self._y

    def backward(self, dy):
        return F.relu_backward(dy, self._saved(self._y))


class Flatten(Module):
    """(N, ...) -> (N, prod(...))."""

    def __init__(self):
        super().__init__()
        self._shape = None

    def forward(self, x):
        if x.ndim < 1:
            raise _shape_error("Flatten()", "(N, ...)", x)
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._saved(self._shape))


class Dropout(Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        self._mask = None

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, x):
        y, self._mask = F.dropout(x, self.p, training=self.training, seed=init.next_seed())
        return y

    def backward(self, dy):
        if not self.training:
            return dy
        return F.dropout_backward(dy, self._saved(self._mask), self.p)


class _BatchNorm(Module):
    _expected_ndim = 4
    _layout = "(N, C, H, W)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, np.float32)) if affine else None
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))
        self._saved_state = None

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

    def _params(self):
        return (None if self.weight is None else self.weight.data,
                None if self.bias is None else self.bias.data)

    def forward(self, x):
        if x.ndim != self._expected_ndim or x.shape[1] != self.num_features:
            raise _shape_error(repr(self), self._layout.replace("C", str(self.num_features)), x)
        weight, bias = self._params()
        y, mean, invstd = F.batch_norm(x, self.running_mean, self.running_var, weight, bias,
                                       self.training, self.momentum, self.eps)
        self._saved_state = (x, mean, invstd, self.training)
        return y

    def backward(self, dy):
        x, mean, invstd, training = self._saved(self._saved_state)
        weight, _ = self._params()
        dx, dweight, dbias = F.batch_norm_backward(dy, x, weight, mean, invstd,
                                                   training=training)
        if self.weight is not None:
            self.weight.grad += dweight
            self.bias.grad += dbias
        return dx


class BatchNorm2d(_BatchNorm):
    pass


class BatchNorm1d(_BatchNorm):
    _expected_ndim = 2
    _layout = "(N, C)"

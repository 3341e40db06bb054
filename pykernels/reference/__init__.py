"""Plain NumPy references for every op, with the same signatures as
`pykernels.functional`. They are the inside oracle for the tests: written for
clarity, computed in the dtype they are given (float64 for gradient checks).
"""

from .activation import relu, relu_backward
from .batchnorm import batch_norm, batch_norm_backward
from .conv import col2im, conv2d, conv2d_backward, im2col
from .dropout import dropout, dropout_backward
from .gemm import gemm, linear, linear_backward
from .loss import cross_entropy, cross_entropy_backward
from .lstm import lstm, lstm_backward, lstm_cell, lstm_cell_backward
from .pool import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d,
                   avg_pool2d_backward, max_pool2d, max_pool2d_backward)
from .sgd import sgd_step

__all__ = ["col2im", "conv2d", "conv2d_backward", "im2col",
           "gemm", "linear", "linear_backward", "lstm", "lstm_backward", "lstm_cell",
           "lstm_cell_backward", "relu", "relu_backward",
           "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "batch_norm",
           "batch_norm_backward", "dropout", "dropout_backward", "cross_entropy",
           "cross_entropy_backward", "sgd_step"]

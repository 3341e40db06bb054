"""Plain NumPy references for every op, with the same signatures as
`pykernels.functional`. They are the inside oracle for the tests: written for
clarity, computed in the dtype they are given (float64 for gradient checks).
"""

from .activation import relu, relu_backward
from .conv import col2im, conv2d, conv2d_backward, im2col
from .gemm import gemm, linear, linear_backward
from .lstm import lstm, lstm_backward, lstm_cell, lstm_cell_backward

__all__ = ["col2im", "conv2d", "conv2d_backward", "im2col",
           "gemm", "linear", "linear_backward", "lstm", "lstm_backward", "lstm_cell",
           "lstm_cell_backward", "relu", "relu_backward"]

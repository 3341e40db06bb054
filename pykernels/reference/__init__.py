"""Plain NumPy references for every op, with the same signatures as
`pykernels.functional`. They are the inside oracle for the tests: written for
clarity, computed in the dtype they are given (float64 for gradient checks).
"""

from .activation import relu, relu_backward

__all__ = ["relu", "relu_backward"]

"""ReLU in NumPy, matching torch.relu on NaN and -0.0."""

import numpy as np


def relu(x):
    # np.maximum(x, 0) would turn -0.0 into 0.0; torch keeps -0.0.
    return np.where(x < 0, np.zeros((), dtype=x.dtype), x)


def relu_backward(dy, y):
    return np.where(y <= 0, np.zeros((), dtype=dy.dtype), dy)

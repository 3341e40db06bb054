"""GEMM and the linear layer in NumPy, computed in the inputs' dtype."""

import numpy as np


def gemm(a, b, c=None, *, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, algo="auto"):
    del algo  # one reference for every variant
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    result = alpha * (op_a @ op_b)
    if c is not None and beta != 0:
        result = result + beta * c
    return result.astype(np.result_type(a, b), copy=False)


def linear(x, weight, bias=None):
    y = x @ weight.T
    return y if bias is None else y + bias


def linear_backward(dy, x, weight):
    dy2 = dy.reshape(-1, dy.shape[-1])
    x2 = x.reshape(-1, x.shape[-1])
    return dy @ weight, dy2.T @ x2, dy2.sum(axis=0)

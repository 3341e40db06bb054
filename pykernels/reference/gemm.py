"""GEMM and the linear layer in NumPy, computed in the inputs' dtype."""

import numpy as np


def round_to_tf32(x):
    """x (float32) rounded to TF32's 10 mantissa bits, to nearest with ties
    away from zero (the GPU's cvt.rna.tf32.f32); inf and NaN pass through."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    finite = (bits & 0x7F800000) != 0x7F800000
    rounded = np.where(finite, (bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000), bits)
    return rounded.astype(np.uint32).view(np.float32).reshape(np.shape(x))


def gemm(a, b, c=None, *, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, algo="auto"):
    """One reference for every variant, but for algo="tf32", which rounds the
    float32 inputs to TF32 first (and then multiplies them in their dtype)."""
    if algo == "tf32":
        a = round_to_tf32(a.astype(np.float32)).astype(a.dtype)
        b = round_to_tf32(b.astype(np.float32)).astype(b.dtype)
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

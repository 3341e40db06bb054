"""Public ops: validate arguments, pick the backend from the array type, call
the kernel. NumPy arrays run on `_cpu` with the GIL released; CuPy arrays run
on `_cuda` on CuPy's current stream and come back as CuPy arrays.
"""

from __future__ import annotations

import numpy as np

from ._backend import (accepts_cuda_interface, array_module, cpu, current_stream_ptr,
                       is_host_array, require_cuda)
from ._validate import device_of, float32_contiguous, output_array, require_float32, same_shape


def _empty_like(x):
    if is_host_array(x):
        return np.empty(x.shape, dtype=np.float32)
    import cupy

    return cupy.empty(x.shape, dtype=cupy.float32)


def _result(out, like, device):
    return _empty_like(like) if out is None else output_array(out, like.shape, device)


@accepts_cuda_interface
def relu(x, *, out=None):
    """max(x, 0) elementwise, keeping NaN and -0.0 as torch.relu does.

    `out`, if given, must be a C-contiguous float32 array of x's shape; it may
    be x itself for an in-place ReLU.
    """
    device = device_of(x=x)
    x = float32_contiguous(x, "x")
    y = _result(out, x, device)
    if device == "cpu":
        cpu().relu_forward(x, y)
    else:
        require_cuda().relu_forward(x.data.ptr, y.data.ptr, x.size, current_stream_ptr())
    return y


@accepts_cuda_interface
def relu_backward(dy, y, *, out=None):
    """Gradient of relu given the upstream gradient `dy` and relu's output `y`."""
    device = device_of(dy=dy, y=y)
    same_shape(dy, y, "dy", "y")
    dy = float32_contiguous(dy, "dy")
    y = float32_contiguous(y, "y")
    dx = _result(out, dy, device)
    if device == "cpu":
        cpu().relu_backward(dy, y, dx)
    else:
        require_cuda().relu_backward(
            dy.data.ptr, y.data.ptr, dx.data.ptr, dy.size, current_stream_ptr()
        )
    return dx


# ---- GEMM and linear ------------------------------------------------------

CPU_GEMM_ALGOS = ("auto", "naive", "blocked", "packed")
# The GPU ladder in cuda/gemm.cu, in order; the codes are GemmAlgo's values.
# "tf32" (tensor cores, inputs rounded to TF32) is an extra beside the FP32
# ladder: never picked by "auto".
GPU_GEMM_ALGOS = ("auto", "naive", "coalesced", "smem", "regblock", "vectorized", "warptile",
                  "splitk", "tf32")


def _is_row_major(m) -> bool:
    """Unit column stride and a row stride covering the row: what BLAS calls a
    row-major matrix with a leading dimension."""
    rows, cols = m.shape
    row_stride, col_stride = m.strides
    if rows == 0 or cols == 0:
        return True
    return (cols <= 1 or col_stride == 4) and (
        rows <= 1 or (row_stride % 4 == 0 and row_stride >= 4 * cols))


def _as_gemm_operand(m, trans: bool, name: str):
    """A view the kernel can read, and the transpose flag that goes with it.
    A transposed (column-major) view flips the flag instead of being copied."""
    if m.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {m.shape}")
    require_float32(m, name)
    if _is_row_major(m):
        return m, trans
    if _is_row_major(m.T):
        return m.T, not trans
    return array_module(m).ascontiguousarray(m), trans


_F32 = np.dtype(np.float32)


def _plain_gemm_operands(a, b, c, algo) -> bool:
    """The common case, checked cheaply: C-contiguous 2-D float32 NumPy
    operands and, if given, a writable C-contiguous float32 output. Small
    products are dominated by call overhead, so this case skips the general
    checks; the binding still verifies every shape and stride, and reads an
    input that overlaps the output from a copy."""
    if not (type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 and b.ndim == 2
            and a.dtype == _F32 and b.dtype == _F32 and a.flags.c_contiguous
            and b.flags.c_contiguous and algo in CPU_GEMM_ALGOS):
        return False
    return c is None or (type(c) is np.ndarray and c.dtype == _F32 and c.flags.c_contiguous
                         and c.flags.writeable)


def _gemm_fast(a, b, c, alpha, beta, trans_a, trans_b, algo):
    if c is None:
        if beta != 0:
            raise ValueError(f"beta={beta} needs an input c to scale")
        m = a.shape[1] if trans_a else a.shape[0]
        n = b.shape[0] if trans_b else b.shape[1]
        c = np.empty((m, n), dtype=np.float32)
    cpu().gemm(a, b, c, float(alpha), float(beta), bool(trans_a), bool(trans_b), algo)
    return c


def _leading_dimension(view) -> int:
    rows, cols = view.shape
    return max(1, view.strides[0] // 4) if rows > 1 else max(1, cols)


def _byte_span(x):
    """[first, last + 1) bytes a view touches, padding between rows included
    (non-negative strides: the views gemm passes on are row-major)."""
    start = x.data.ptr
    last = sum((d - 1) * s for d, s in zip(x.shape, x.strides))
    return start, start + last + x.itemsize


def _overlaps(x, y) -> bool:
    (a0, a1), (b0, b1) = _byte_span(x), _byte_span(y)
    return x.nbytes > 0 and y.nbytes > 0 and a0 < b1 and b0 < a1


def _gemm_gpu(a_view, b_view, c, alpha, beta, trans_a, trans_b, algo, m, n, k):
    # The kernels read A and B while writing C: an input sharing memory with
    # C is read from a copy, as on the CPU.
    if _overlaps(a_view, c):
        a_view = a_view.copy()
    if _overlaps(b_view, c):
        b_view = b_view.copy()
    require_cuda().sgemm(GPU_GEMM_ALGOS.index(algo), trans_a, trans_b, m, n, k, float(alpha),
                         a_view.data.ptr, _leading_dimension(a_view), b_view.data.ptr,
                         _leading_dimension(b_view), float(beta), c.data.ptr, max(1, n),
                         current_stream_ptr())
    return c


def gemm_pack(x, *, side="b", trans=False):
    """op(x) packed once into the CPU micro-kernel's panel layout, to be the
    `a` (side="a") or `b` (side="b") of many later `gemm` calls.

    Plain GEMMs repack both operands on every call; when one operand is
    reused (an LSTM's recurrent weights at every time step) packing it once
    saves that copy, which dominates products with few rows (32 x 2048 x 512:
    about half the time). Results are bitwise those of gemm(algo="packed")
    under the ISA active when it was packed: the operand keeps that ISA's
    layout and kernel (`.isa`) even if set_isa changes later. It is a copy:
    later changes to x do not reach it.
    """
    require_float32(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D, got shape {tuple(x.shape)}")
    if side not in ("a", "b"):
        raise ValueError(f"side must be 'a' or 'b', got {side!r}")
    if device_of(x=x) != "cpu":
        raise TypeError("gemm_pack packs NumPy arrays for the CPU kernels; on the GPU pass the "
                        "array itself")
    view, trans = _as_gemm_operand(x, bool(trans), "x")
    return cpu().gemm_pack(view, side, trans)


def _is_packed(x) -> bool:
    return isinstance(x, cpu().PackedOperand)


def _gemm_with_packed(a, b, c, alpha, beta, trans_a, trans_b, algo):
    packed_a = isinstance(a, cpu().PackedOperand)
    packed, other, trans = (a, b, trans_b) if packed_a else (b, a, trans_a)
    if isinstance(other, cpu().PackedOperand):
        raise ValueError("gemm takes at most one packed operand")
    if algo not in ("auto", "packed"):
        raise ValueError(f"a packed operand runs the packed kernel; algo must be 'auto' or "
                         f"'packed', got {algo!r}")
    if (trans_a if packed_a else trans_b):
        raise ValueError("a packed operand is already op(x): pack it with trans= instead")
    if device_of(**{"b" if packed_a else "a": other}) != "cpu":
        raise TypeError("a packed operand works with NumPy arrays only")
    view, trans = _as_gemm_operand(other, bool(trans), "b" if packed_a else "a")
    m = packed.shape[0] if packed_a else (view.shape[1] if trans else view.shape[0])
    n = (view.shape[0] if trans else view.shape[1]) if packed_a else packed.shape[1]
    if c is None:
        if beta != 0:
            raise ValueError(f"beta={beta} needs an input c to scale")
        c = np.empty((m, n), dtype=np.float32)
    else:
        output_array(c, (m, n), "cpu", "c")
    cpu().gemm_packed(packed, "a" if packed_a else "b", view, c, float(alpha), float(beta), trans)
    return c


@accepts_cuda_interface
def gemm(a, b, c=None, *, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, algo="auto"):
    """C = alpha * op(a) @ op(b) + beta * C, with op(x) = x.T when trans_x.

    Without `c` a new (M, N) array is returned (and beta must be 0). With `c`
    the result is written into it (it must be C-contiguous float32 of shape
    (M, N)) and returned. beta == 0 ignores what `c` held, NaN included.
    `algo` picks a rung of the ladder: on NumPy arrays 'naive', 'blocked',
    'packed' or 'auto'; on CuPy arrays 'naive', 'coalesced', 'smem',
    'regblock', 'vectorized', 'warptile', 'splitk' or 'auto' (see
    GPU_GEMM_ALGOS; on the GPU 'auto' is warptile, split along K when the
    product has too few tiles to fill the GPU), or 'tf32': tensor cores on
    inputs rounded to TF32 (10 mantissa bits), on compute capability 8.0 and
    newer, never chosen by 'auto'.
    Either `a` or `b` may be an operand packed by `gemm_pack` (CPU only).
    """
    if _plain_gemm_operands(a, b, c, algo):
        return _gemm_fast(a, b, c, alpha, beta, trans_a, trans_b, algo)
    if _is_packed(a) or _is_packed(b):
        return _gemm_with_packed(a, b, c, alpha, beta, trans_a, trans_b, algo)
    arrays = {"a": a, "b": b} if c is None else {"a": a, "b": b, "c": c}
    device = device_of(**arrays)
    algos = CPU_GEMM_ALGOS if device == "cpu" else GPU_GEMM_ALGOS
    if algo not in algos:
        raise ValueError(f"algo must be one of {algos} for {device} arrays, got {algo!r}")
    a_view, trans_a = _as_gemm_operand(a, bool(trans_a), "a")
    b_view, trans_b = _as_gemm_operand(b, bool(trans_b), "b")
    m, k = a_view.shape[::-1] if trans_a else a_view.shape
    k_b, n = b_view.shape[::-1] if trans_b else b_view.shape
    if k != k_b:
        raise ValueError(f"inner dimensions do not match: a {a.shape} and b {b.shape} "
                         f"give op(a) ({m}, {k}) and op(b) ({k_b}, {n})")
    if c is None:
        if beta != 0:
            raise ValueError(f"beta={beta} needs an input c to scale")
        c = array_module(a).empty((m, n), dtype=np.float32)
    else:
        output_array(c, (m, n), device, "c")  # overlap with a or b: handled below the checks
    if device == "cuda":
        return _gemm_gpu(a_view, b_view, c, alpha, beta, trans_a, trans_b, algo, m, n, k)
    cpu().gemm(a_view, b_view, c, float(alpha), float(beta), trans_a, trans_b, algo)
    return c


def _check_linear_shapes(x, weight, x_name="x"):
    require_float32(weight, "weight")
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got {weight.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{x_name} {x.shape} does not match weight {weight.shape}: its last "
                         f"dimension must be in_features={weight.shape[1]}")


@accepts_cuda_interface
def linear(x, weight, bias=None):
    """y = x @ weight.T + bias, over any leading dimensions of x (as torch)."""
    device_of(x=x, weight=weight, **({} if bias is None else {"bias": bias}))
    _check_linear_shapes(x, weight)
    x = float32_contiguous(x, "x")
    x2 = x.reshape(-1, x.shape[-1])
    y = array_module(x).empty((x2.shape[0], weight.shape[0]), dtype=np.float32)
    beta = 0.0
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
        float32_contiguous(bias, "bias")
        y[...] = bias  # the GEMM then accumulates onto the broadcast bias
        beta = 1.0
    gemm(x2, weight, y, beta=beta, trans_b=True)
    return y.reshape(*x.shape[:-1], weight.shape[0])


@accepts_cuda_interface
def linear_backward(dy, x, weight, *, add_dw_to=None):
    """Gradients of linear: dx = dy @ weight, dw = dy.T @ x, db = dy summed.

    With `add_dw_to` (a C-contiguous float32 array of weight's shape, on the
    same device), dw is added into it by the GEMM itself (beta = 1: no
    temporary the size of the weight) and that array is returned as dw;
    nn.Linear accumulates its weight gradient this way."""
    device = device_of(dy=dy, x=x, weight=weight)
    _check_linear_shapes(x, weight)
    expected = (*x.shape[:-1], weight.shape[0])
    if dy.shape != expected:
        raise ValueError(f"dy has shape {dy.shape}, expected {expected} for x {x.shape} "
                         f"and weight {weight.shape}")
    if add_dw_to is not None:
        output_array(add_dw_to, weight.shape, device, "add_dw_to")
    dy2 = float32_contiguous(dy, "dy").reshape(-1, weight.shape[0])
    x2 = float32_contiguous(x, "x").reshape(-1, weight.shape[1])
    dx = gemm(dy2, weight).reshape(x.shape)
    dw = gemm(dy2, x2, add_dw_to, beta=0.0 if add_dw_to is None else 1.0, trans_a=True)
    db = dy2.sum(axis=0, dtype=np.float32)
    return dx, dw, db


from ._functional.lstm import lstm, lstm_backward, lstm_cell, lstm_cell_backward  # noqa: E402,F401
from ._functional.conv import (col2im, conv2d, conv2d_algorithm, conv2d_backward,  # noqa: E402,F401
                               im2col)
from ._functional.pool import (  # noqa: E402,F401
    adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d, avg_pool2d_backward,
    max_pool2d, max_pool2d_backward)
from ._functional.batchnorm import batch_norm, batch_norm_backward  # noqa: E402,F401
from ._functional.dropout import dropout, dropout_backward  # noqa: E402,F401
from ._functional.loss import cross_entropy, cross_entropy_backward  # noqa: E402,F401
from ._functional.sgd import sgd_step  # noqa: E402,F401

"""Argument checks shared by every public op.

Conventions (see ARCHITECTURE.md): TypeError for a wrong array type or dtype,
ValueError for shapes and parameters, and each message names the argument.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._backend import is_cupy_array, is_host_array, require_cuda


def device_of(**arrays) -> str:
    """'cpu' when every array is a NumPy array, 'cuda' when every one is CuPy
    and the CUDA path is usable; TypeError or RuntimeError otherwise."""
    kinds = {}
    for name, x in arrays.items():
        if is_host_array(x):
            kinds[name] = "cpu"
        elif is_cupy_array(x):
            kinds[name] = "cuda"
        else:
            raise TypeError(
                f"{name} must be a numpy.ndarray, a cupy.ndarray or an object with "
                f"__cuda_array_interface__, got {type(x).__name__}"
            )
    if len(set(kinds.values())) > 1:
        listing = ", ".join(f"{n}: {'NumPy' if k == 'cpu' else 'CuPy'}" for n, k in kinds.items())
        raise TypeError(
            f"arrays must all be NumPy (CPU) or all CuPy (GPU), got a mix ({listing})"
        )
    device = next(iter(kinds.values()))
    if device == "cuda":
        require_cuda()  # a clear error now rather than a failed launch later
    return device


def require_float32(x, name: str):
    """A different dtype is the caller's decision (casting float64 loses
    precision), so it is an error that says how to cast, never a silent copy."""
    if x.dtype != np.float32:
        raise TypeError(
            f"{name} has dtype {x.dtype}, but pykernels computes in float32; "
            f"cast it first, e.g. {name}.astype(numpy.float32)"
        )
    return x


def float32_contiguous(x, name: str):
    """`x` itself when it is C-contiguous float32, else a contiguous copy."""
    require_float32(x, name)
    if x.flags.c_contiguous:
        return x
    if is_host_array(x):
        return np.ascontiguousarray(x)
    import cupy

    return cupy.ascontiguousarray(x)


def same_shape(a, b, a_name: str, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{a_name} and {b_name} must have the same shape, got {a_name}: {tuple(a.shape)} "
            f"and {b_name}: {tuple(b.shape)}"
        )


def output_array(out, shape, device: str, name: str = "out"):
    """Check a caller-supplied output: the kernel writes into it directly, so a
    copy would silently drop the result. Returns `out` unchanged."""
    if device_of(**{name: out}) != device:
        raise TypeError(f"{name} must live on the same device as the inputs ({device})")
    if out.dtype != np.float32:
        raise TypeError(f"{name} has dtype {out.dtype}, it must be float32")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(out.shape)}, expected {tuple(shape)}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (the result is written in place)")
    if isinstance(out, np.ndarray) and not out.flags.writeable:  # CuPy flags lack it
        raise ValueError(f"{name} is read-only")
    return out


def int_pair(value, name: str, allow_none: bool = False):
    """An int or a pair of ints -> (h, w) of Python ints. Bools and floats are
    TypeErrors; with allow_none, an entry may be None (adaptive pooling)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    for v in items:
        if v is None and allow_none:
            continue
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return tuple(None if v is None else int(v) for v in items)

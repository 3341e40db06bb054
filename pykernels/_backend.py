"""Finds the compiled modules and tells NumPy arrays from CuPy arrays.

`_cpu` is always there in an installed package. `_cuda` is optional: it is not
built without a CUDA compiler, and CuPy may be missing, so nothing here imports
either eagerly beyond what the caller asks for.
"""

from __future__ import annotations

import importlib

import numpy as np

from . import _cpu

_cuda_module = None
_cuda_import_error: str | None = None
_cuda_probed = False


def cuda_module():
    """The `_cuda` extension, or None when it was not built or cannot load."""
    global _cuda_module, _cuda_import_error, _cuda_probed
    if not _cuda_probed:
        _cuda_probed = True
        try:
            _cuda_module = importlib.import_module("pykernels._cuda")
        except ImportError as exc:
            _cuda_import_error = str(exc)
    return _cuda_module


def cuda_import_error() -> str | None:
    cuda_module()
    return _cuda_import_error


def is_cupy_array(x) -> bool:
    return type(x).__module__.split(".")[0] == "cupy" and hasattr(x, "__cuda_array_interface__")


def cpu():
    return _cpu


def require_cuda():
    """The `_cuda` module when a GPU is usable, else a clear RuntimeError."""
    from . import cuda

    mod = cuda_module()
    if mod is None:
        raise RuntimeError(
            "a CuPy array was passed but pykernels was built without its CUDA module "
            f"({_cuda_import_error or 'no CUDA compiler at build time'}); "
            "rebuild with nvcc on PATH or pass NumPy arrays"
        )
    if not cuda.is_available():
        raise RuntimeError(
            "a CuPy array was passed but no CUDA GPU is usable by pykernels "
            "(no driver or no device)"
        )
    return mod


def current_stream_ptr() -> int:
    import cupy

    return cupy.cuda.get_current_stream().ptr


__all__ = ["np", "cpu", "cuda_module", "cuda_import_error", "is_cupy_array", "require_cuda",
           "current_stream_ptr"]

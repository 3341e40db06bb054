"""Finds the compiled modules and tells NumPy arrays from CuPy arrays.

`_cpu` is always there in an installed package. `_cuda` is optional: it is not
built without a CUDA compiler, and CuPy may be missing, so nothing here imports
either eagerly beyond what the caller asks for.
"""

from __future__ import annotations

import functools
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


def is_host_array(x) -> bool:
    """A NumPy array. Checked this way, not with isinstance alone, because the
    test suite's emulated CuPy arrays subclass numpy.ndarray."""
    return isinstance(x, np.ndarray) and not is_cupy_array(x)


def is_foreign_device_array(x) -> bool:
    """A GPU array from another library (PyTorch, Numba, JAX...) that speaks
    the CUDA Array Interface: wrapped as CuPy without a copy on the way in."""
    return hasattr(x, "__cuda_array_interface__") and not is_cupy_array(x)


def _wrap_foreign(value):
    import cupy

    stream = value.__cuda_array_interface__.get("stream")
    # CuPy's consumer honours the producer's stream itself; the whole op then
    # runs on that stream too (see accepts_cuda_interface).
    return cupy.asarray(value), (int(stream) if stream else None)


def accepts_cuda_interface(op):
    """Lets `op` take any __cuda_array_interface__ object where it takes a
    CuPy array: such arguments become zero-copy CuPy views, and the stream
    the first of their interfaces names becomes CuPy's current stream for the
    call, so our launches, CuPy's copies and the pool's allocations are all
    ordered on the caller's stream."""

    @functools.wraps(op)
    def wrapper(*args, **kwargs):
        if not any(map(is_foreign_device_array, (*args, *kwargs.values()))):
            return op(*args, **kwargs)
        streams = []

        def convert(value):
            if not is_foreign_device_array(value):
                return value
            array, stream = _wrap_foreign(value)
            if stream is not None:
                streams.append(stream)
            return array

        args = tuple(convert(a) for a in args)
        kwargs = {k: convert(v) for k, v in kwargs.items()}
        if not streams:
            return op(*args, **kwargs)
        import cupy

        with cupy.cuda.ExternalStream(streams[0]):
            return op(*args, **kwargs)

    return wrapper


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
    """The stream GPU work goes on: CuPy's current stream (0, the legacy
    default, unless the caller entered a `with cupy.cuda.Stream():` block or
    passed a foreign array whose interface names a stream)."""
    import cupy

    return cupy.cuda.get_current_stream().ptr


def array_module(x):
    """numpy for a NumPy array, cupy for a CuPy array."""
    if is_host_array(x):
        return np
    import cupy

    return cupy


__all__ = ["np", "cpu", "cuda_module", "cuda_import_error", "is_cupy_array", "require_cuda",
           "current_stream_ptr", "array_module", "accepts_cuda_interface",
           "is_foreign_device_array", "is_host_array"]

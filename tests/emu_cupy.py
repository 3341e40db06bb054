"""Just enough of CuPy, backed by NumPy, for pykernels' GPU path to run on the
CPU emulator (tests/cuda_emu.py) in CI, which has no GPU.

An `ndarray` here is a NumPy array whose `.data.ptr` is its host address, and
whose type claims the `cupy` module, so pykernels dispatches it to the CUDA
path; with `_cuda_emu` standing in for `_cuda`, the kernels then run on those
host pointers. The `cp` fixture (conftest.py) installs this module as `cupy`
for one test. Functions not defined here fall through to NumPy, with array
results turned into this `ndarray`.
"""

from __future__ import annotations

import time
import types

import numpy as np

float32 = np.float32
float64 = np.float64
int64 = np.int64
uint8 = np.uint8


class _Pointer:
    def __init__(self, ptr: int):
        self.ptr = ptr


class ndarray(np.ndarray):
    @property
    def data(self):  # CuPy's MemoryPointer: only .ptr is used
        return _Pointer(self.__array_interface__["data"][0])

    @property
    def __cuda_array_interface__(self):
        interface = dict(self.__array_interface__)
        interface.update(version=3, stream=None)
        return interface

    def get(self):
        return np.array(self, copy=True).view(np.ndarray)


ndarray.__module__ = "cupy"


def _wrap(value):
    if isinstance(value, np.ndarray) and not isinstance(value, ndarray):
        return value.view(ndarray)
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


class _HostInterface:
    """Exposes a foreign array's CUDA Array Interface (host memory here) to
    NumPy, so wrapping it is zero-copy, as cupy.asarray is."""

    def __init__(self, interface):
        keys = ("shape", "typestr", "data", "strides", "descr")
        self.__array_interface__ = {k: interface[k] for k in keys if k in interface}
        self.__array_interface__["version"] = 3


def asarray(x, dtype=None):
    if isinstance(x, ndarray) and (dtype is None or x.dtype == dtype):
        return x
    if hasattr(x, "__cuda_array_interface__") and not isinstance(x, np.ndarray):
        view = np.asarray(_HostInterface(x.__cuda_array_interface__)).view(ndarray)
        return view if dtype is None or view.dtype == dtype else view.astype(dtype)
    return np.array(x, dtype=dtype, copy=True).view(ndarray)


def _garbage(out):
    """What fresh memory holds: CuPy's pool hands back blocks with whatever
    they last held. NaN (floats) or the most negative integer makes a kernel
    that leaves an element unwritten, or code that counts on zeros, fail its
    test, where NumPy's fresh pages would quietly be zeros."""
    if np.issubdtype(out.dtype, np.floating):
        out.fill(np.nan)
    elif np.issubdtype(out.dtype, np.integer):
        out.fill(np.iinfo(out.dtype).min)
    elif out.dtype == np.bool_:
        out.fill(True)
    return out.view(ndarray)


def empty(shape, dtype=np.float64, order="C"):
    return _garbage(np.empty(shape, dtype=dtype, order=order))


def empty_like(a, dtype=None, order="K", shape=None):
    return _garbage(np.empty_like(a, dtype=dtype, order=order, shape=shape))


def asnumpy(x):
    return np.array(x, copy=True).view(np.ndarray)


def ascontiguousarray(x, dtype=None):
    return _wrap(np.ascontiguousarray(x, dtype=dtype))


def __getattr__(name):
    target = getattr(np, name)
    if not callable(target) or isinstance(target, type):
        return target
    return lambda *args, **kwargs: _wrap(target(*args, **kwargs))


class _Stream:
    """Streams are ignored by the emulator: work runs at once, in order."""

    def __init__(self, non_blocking: bool = False, null: bool = False):
        self.ptr = 0 if null else id(self)

    def __enter__(self):
        _current.append(self)
        return self

    def __exit__(self, *exc):
        _current.pop()

    def synchronize(self):
        pass


_current = [_Stream(null=True)]


class _ExternalStream(_Stream):
    def __init__(self, ptr: int):
        self.ptr = ptr


class _Event:
    """Work runs at once here, so an event's time is the host clock's."""

    def record(self, stream=None):
        self.time = time.perf_counter()

    def synchronize(self):
        pass


def _elapsed_ms(start, stop):
    return (stop.time - start.time) * 1e3


def _standard_normal(size=None, dtype=np.float64):
    return _wrap(np.random.default_rng().standard_normal(size).astype(dtype))


class _OutOfMemoryError(MemoryError):
    """cupy.cuda.memory.OutOfMemoryError's stand-in (same arguments)."""

    def __init__(self, size, total, limit=0):
        super().__init__(f"out of memory allocating {size} bytes ({total} allocated)")


cuda = types.SimpleNamespace(
    memory=types.SimpleNamespace(OutOfMemoryError=_OutOfMemoryError),
    Stream=_Stream,
    ExternalStream=_ExternalStream,
    Event=_Event,
    get_current_stream=lambda: _current[-1],
    get_elapsed_time=_elapsed_ms,
    runtime=types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDeviceProperties=lambda device: {"name": b"CUDA emulator (CPU)"},
        profilerStart=lambda: None, profilerStop=lambda: None),
    Device=lambda device=0: types.SimpleNamespace(id=0, synchronize=lambda: None),
)
random = types.SimpleNamespace(standard_normal=_standard_normal)

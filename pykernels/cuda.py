"""Whether the CUDA path can run here, and what GPU it would run on."""

from __future__ import annotations

from ._backend import cuda_module


def is_available() -> bool:
    """True when the CUDA module was built and at least one GPU is usable."""
    mod = cuda_module()
    return mod is not None and mod.device_count() > 0


def is_built() -> bool:
    """True when this installation contains the CUDA module."""
    return cuda_module() is not None


def device_count() -> int:
    mod = cuda_module()
    return 0 if mod is None else mod.device_count()


def device_info(device: int = 0) -> dict:
    """Name, compute capability, memory and SM count of `device`."""
    if not is_available():
        raise RuntimeError("no CUDA GPU is usable by pykernels")
    return dict(cuda_module().device_info(device))


def runtime_version() -> int:
    """CUDA runtime version the module was built with (e.g. 13000), 0 if not built."""
    mod = cuda_module()
    return 0 if mod is None else mod.runtime_version

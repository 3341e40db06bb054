"""pykernels: hand-written CPU and CUDA deep-learning kernels.

    import numpy as np, pykernels.functional as F
    y = F.relu(np.random.randn(4, 5).astype(np.float32))

See `pykernels.info()` for what this installation runs on.
"""

from __future__ import annotations

import sys

from . import _cpu
from . import cuda, functional, reference
from . import data, models, nn, optim
from ._errors import CudaError

__version__ = _cpu.__version__


def get_num_threads() -> int:
    """OpenMP threads the CPU kernels use (OMP_NUM_THREADS, set_num_threads, threadpoolctl)."""
    return _cpu.get_num_threads()


def set_num_threads(n: int) -> None:
    """Use `n` OpenMP threads for the CPU kernels called from this thread."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    _cpu.set_num_threads(n)


def get_isa() -> str:
    """SIMD instruction set the CPU kernels use now: 'generic', 'avx2' or 'avx512'."""
    return _cpu.get_isa()


def set_isa(name: str) -> None:
    """Force the CPU kernels down to `name`; ValueError if this CPU lacks it.

    The environment variable PYKERNELS_ISA does the same at import time.
    """
    _cpu.set_isa(name)


def build_info() -> dict:
    """Facts about this installation and machine, as a dict."""
    facts = {
        "version": __version__,
        "python": sys.version.split()[0],
        "cpu_isa": _cpu.get_isa(),
        "cpu_isa_detected": _cpu.detected_isa(),
        "openmp_threads": _cpu.get_num_threads(),
        "cpu_count": _cpu.num_procs(),
        "compiler": _cpu.compiler,
        "cuda_built": cuda.is_built(),
        "cuda_available": cuda.is_available(),
    }
    if cuda.is_built():
        facts["cuda_runtime"] = cuda.runtime_version()
    if cuda.is_available():
        facts["gpus"] = [cuda.device_info(i) for i in range(cuda.device_count())]
    return facts


def _format_gpu(gpu: dict) -> str:
    major, minor = gpu["compute_capability"]
    mem_gib = gpu["total_memory"] / 2**30
    return f"{gpu['name']} (compute capability {major}.{minor}, {mem_gib:.1f} GiB)"


def info(file=None) -> None:
    """Print version, CPU instruction set, OpenMP threads and CUDA status."""
    facts = build_info()
    lines = [
        f"pykernels {facts['version']} (Python {facts['python']})",
        f"CPU instruction set: {facts['cpu_isa']} (best this CPU supports: "
        f"{facts['cpu_isa_detected']})",
        f"OpenMP threads: {facts['openmp_threads']} of {facts['cpu_count']} processors",
        f"CUDA module built: {'yes' if facts['cuda_built'] else 'no'}",
    ]
    if facts["cuda_built"]:
        rt = facts["cuda_runtime"]
        lines.append(f"CUDA runtime: {rt // 1000}.{rt % 1000 // 10}")
    if facts["cuda_available"]:
        lines += [f"GPU {i}: {_format_gpu(g)}" for i, g in enumerate(facts["gpus"])]
    else:
        lines.append("GPU: none usable")
    print("\n".join(lines), file=file or sys.stdout)


__all__ = [
    "CudaError", "__version__", "build_info", "cuda", "data", "functional", "get_isa",
    "get_num_threads", "info", "models", "nn", "optim", "reference", "set_isa",
    "set_num_threads",
]

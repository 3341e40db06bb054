"""Builds and imports `_cuda_emu`: the CUDA sources of cuda/ compiled by g++
against the CPU emulator in cuda/emu/cuda_emu.h, so the kernels' indexing,
tiling and bounds logic is tested on machines without a GPU (CI has none).

Pointers passed to it are host pointers (`array.ctypes.data`); the stream
argument is ignored. The build is cached under the temp directory, keyed by a
hash of each source, so a test session recompiles only what changed.

    python tests/cuda_emu.py          # build (or find) it and print its path
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import sysconfig
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CUDA_DIR = REPO / "cuda"
MODULE_NAME = "_cuda_emu"


def sources() -> list[Path]:
    found = sorted(CUDA_DIR.glob("*.cu")) + sorted(CUDA_DIR.glob("*.cpp"))
    return found + sorted((CUDA_DIR / "bind").glob("*.cpp"))


def _headers() -> list[Path]:
    return sorted(CUDA_DIR.rglob("*.cuh")) + sorted(CUDA_DIR.rglob("*.h"))


def _digest(paths, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for path in paths:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _sanitizer_flags() -> list[str]:
    """PYKERNELS_EMU_SANITIZE=thread builds the module with ThreadSanitizer,
    which then reports races between the threads of a block (a missing
    __syncthreads) much as compute-sanitizer's racecheck would on a GPU (the
    process must preload libtsan); =undefined with UBSan, which reports a
    misaligned float4 access, a fault on a GPU; =address with
    AddressSanitizer, which reports a kernel reading or writing past the end
    of a buffer, as memcheck would (preload libasan; it keeps going after a
    report). See tools/emu_sanitize.sh."""
    kind = os.environ.get("PYKERNELS_EMU_SANITIZE", "")
    if not kind:
        return []
    recover = ["-fsanitize-recover=address"] if kind == "address" else []
    return [f"-fsanitize={kind}", *recover, "-g", "-fno-omit-frame-pointer"]


def _compile_flags() -> list[str]:
    import pybind11

    return [*_sanitizer_flags(), "-std=c++20", "-O2", "-fPIC", "-pthread", "-fvisibility=hidden",
            "-Wno-unknown-pragmas", "-DPYKERNELS_CUDA_EMU",
            # As nvcc's __fmul_rn / __fadd_rn: no FMA contraction (pykernels/sgd_update.h).
            "-ffp-contract=off",
            f"-DPYKERNELS_CUDA_MODULE_NAME={MODULE_NAME}",
            f"-I{CUDA_DIR}", f"-I{REPO / 'csrc' / 'include'}",
            f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}"]


def _compile(src: Path, obj: Path) -> None:
    if obj.exists():
        return
    language = ["-x", "c++"] if src.suffix == ".cu" else []
    tmp = obj.with_suffix(f".{os.getpid()}.tmp")
    cmd = [os.environ.get("CXX", "g++"), *_compile_flags(), "-c", *language, str(src),
           "-o", str(tmp)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"emulator build failed for {src.name}:\n{done.stderr[-4000:]}")
    os.replace(tmp, obj)  # atomic: a concurrent build sees all or nothing


def build() -> Path:
    """Path of the built extension, compiling what changed since the last build.
    Objects are cached by the hash of their source, every header and the flags,
    so editing one .cu file recompiles only that file."""
    cache = Path(tempfile.gettempdir()) / "pykernels_cuda_emu"
    cache.mkdir(exist_ok=True)
    common = _digest(_headers(), " ".join(_compile_flags()) + sys.version)
    objects = [cache / f"{src.stem}_{_digest([src], common)}.o" for src in sources()]
    link_key = hashlib.sha256(" ".join(o.name for o in objects).encode()).hexdigest()[:16]
    target = cache / f"{MODULE_NAME}_{link_key}" / (
        MODULE_NAME + sysconfig.get_config_var("EXT_SUFFIX"))
    if target.exists():
        return target
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(_compile, sources(), objects))
    target.parent.mkdir(exist_ok=True)
    tmp_target = target.with_suffix(f".{os.getpid()}.tmp")
    link = [os.environ.get("CXX", "g++"), *_sanitizer_flags(), "-shared", "-pthread",
            *map(str, objects), "-o",
            str(tmp_target)]
    done = subprocess.run(link, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"emulator link failed:\n{done.stderr[-4000:]}")
    os.replace(tmp_target, target)
    return target


def load():
    """The emulated module, built on first use."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    path = build()
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[MODULE_NAME] = module
    return module


if __name__ == "__main__":
    print(build())

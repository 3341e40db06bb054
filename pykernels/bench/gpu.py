"""GPU side of the benchmarks, through CuPy: the peaks (FP32 FMA throughput
from a RawKernel of independent fmaf chains, device-to-device copy bandwidth)
and the GPU cases of the main run (cuBLAS through CuPy, PyTorch CUDA/cuDNN,
pykernels' own CUDA kernels where they exist).

Timing: CUDA events on the stream the work is queued on, after a warm-up
call, interleaved, medians of repeats.

NOT YET RUN ON A GPU: written and reviewed on a CPU-only machine. Every entry
point is guarded by `usable()`, so on a machine without CuPy or a device the
GPU parts are skipped with a note and nothing here is called.
"""

from __future__ import annotations

import statistics
from typing import Callable, Dict, Tuple

FMA_CHAINS = 8
_FMA_SOURCE = r"""
extern "C" __global__ void pk_fma_peak(float* out, int iters, float a, float b) {
  // Eight independent chains per thread hide the FMA latency; a and b are
  // runtime values so the compiler cannot fold the loop away.
  float x0 = threadIdx.x * 1e-3f, x1 = x0 + 1.f, x2 = x0 + 2.f, x3 = x0 + 3.f;
  float x4 = x0 + 4.f, x5 = x0 + 5.f, x6 = x0 + 6.f, x7 = x0 + 7.f;
  for (int i = 0; i < iters; ++i) {
    x0 = fmaf(x0, a, b); x1 = fmaf(x1, a, b); x2 = fmaf(x2, a, b); x3 = fmaf(x3, a, b);
    x4 = fmaf(x4, a, b); x5 = fmaf(x5, a, b); x6 = fmaf(x6, a, b); x7 = fmaf(x7, a, b);
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
}
"""


def _cupy():
    import cupy

    return cupy


def why_unusable() -> str:
    """'' when CuPy imports and sees a device, else the reason."""
    try:
        cupy = _cupy()
    except Exception as exc:  # ImportError, or a CuPy built for another CUDA
        return f"CuPy not installed or not importable ({type(exc).__name__})"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device"
    except Exception as exc:
        return f"no usable CUDA device ({type(exc).__name__}: {exc})"
    return ""


def usable() -> bool:
    return why_unusable() == ""


def pykernels_cuda() -> bool:
    """Whether pykernels' own CUDA kernels can run (its _cuda module and a GPU)."""
    from .. import cuda

    return cuda.is_available()


def device_name() -> str:
    cupy = _cupy()
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


# A timed callable: (fn, kind) where kind is "cupy" or "torch", naming whose
# events and stream time it.
Timed = Tuple[Callable[[], object], str]


def _elapsed_s(fn, kind: str, calls: int) -> float:
    if kind == "torch":
        import torch

        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop) / 1e3 / calls
    cupy = _cupy()
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(calls):
        fn()
    stop.record()
    stop.synchronize()
    return cupy.cuda.get_elapsed_time(start, stop) / 1e3 / calls


def event_medians(cases: Dict[str, Timed], repeats: int = 7,
                  min_sample_s: float = 0.01) -> Dict[str, float]:
    """Median seconds per call of each case, CUDA events, after warm-up."""
    calls = {}
    for name, (fn, kind) in cases.items():
        fn()  # warm-up: module load, cuBLAS handle, autotuning
        one = max(_elapsed_s(fn, kind, 1), 1e-7)
        calls[name] = max(1, min(1000, int(min_sample_s / one) + 1))
    samples = {name: [] for name in cases}
    names = list(cases)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            fn, kind = cases[name]
            samples[name].append(_elapsed_s(fn, kind, calls[name]))
    return {name: statistics.median(s) for name, s in samples.items()}


def fma_gflops(iters: int = 4096, repeats: int = 5) -> float:
    """FP32 FMA throughput of the whole device (GFLOP/s), 2 flops per fmaf."""
    cupy = _cupy()
    kernel = cupy.RawKernel(_FMA_SOURCE, "pk_fma_peak")
    sms = cupy.cuda.Device().attributes["MultiProcessorCount"]
    block, grid = 256, sms * 16
    out = cupy.empty(block * grid, dtype=cupy.float32)
    args = (out, cupy.int32(iters), cupy.float32(0.9999999), cupy.float32(1e-7))
    med = event_medians({"fma": (lambda: kernel((grid,), (block,), args), "cupy")},
                        repeats=repeats)
    flops = 2.0 * FMA_CHAINS * iters * block * grid
    return flops / med["fma"] / 1e9


def copy_gbps(mib: int = 512, repeats: int = 5) -> float:
    """Device-to-device copy bandwidth, counting one read and one write."""
    cupy = _cupy()
    n = mib * 2**20 // 4
    src = cupy.ones(n, dtype=cupy.float32)
    dst = cupy.empty_like(src)
    med = event_medians({"copy": (lambda: cupy.copyto(dst, src), "cupy")}, repeats=repeats)
    return 2 * src.nbytes / med["copy"] / 1e9


def peaks(quick: bool = False) -> dict:
    mib = 256 if quick else 1024
    return {"name": device_name(), "fma_gflops": fma_gflops(), "copy_gbps": copy_gbps(mib),
            "copy_mib": mib}


def torch_cuda():
    """torch when it is installed with a usable CUDA device, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None

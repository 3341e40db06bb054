"""GPU side of the benchmarks, through CuPy: the peaks (FP32 FMA throughput
from pykernels' peak kernel of independent fmaf chains, device-to-device copy
bandwidth)
and the GPU cases of the main run (cuBLAS through CuPy, PyTorch CUDA/cuDNN,
pykernels' own CUDA kernels where they exist).

Timing: CUDA events on the stream the work is queued on, after a warm-up
call, interleaved, medians of repeats; with queue_ahead, the stream is held
by a spin kernel while each sample's calls are queued, so short kernels are
timed on the device alone (event_medians). Every entry point is guarded by
`usable()`, so on a machine without CuPy or a device the GPU parts are
skipped with a note and nothing here is called. Run on an H200
(benchmarks/results/h200-2026-11-29, -30).
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, Tuple

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


def _stream_ptr(kind: str) -> int:
    if kind == "torch":
        import torch

        return torch.cuda.current_stream().cuda_stream
    return _cupy().cuda.get_current_stream().ptr


_hold_iterations_per_s = None  # one block of the FMA kernel, measured once
_hold_sink = None  # its output, kept alive while a queued hold may still write it


def _hold_stream(kind: str, seconds: float) -> None:
    """Queue about `seconds` of one block of pykernels' FMA kernel on the
    stream, so that the calls queued behind it run back to back: the host's
    cost per call is hidden, as in a training step whose queue runs ahead."""
    global _hold_iterations_per_s, _hold_sink
    from .._backend import require_cuda

    cupy, cuda = _cupy(), require_cuda()
    if _hold_sink is None:
        _hold_sink = cupy.empty(256, dtype=cupy.float32)
    sink = _hold_sink
    if _hold_iterations_per_s is None:
        probe = 1 << 14
        fma = lambda: cuda.fma_peak(sink.data.ptr, 1, probe, _stream_ptr("cupy"))  # noqa: E731
        fma()
        _hold_iterations_per_s = probe / max(_elapsed_s(fma, "cupy", 1), 1e-7)
    iterations = max(1, int(seconds * _hold_iterations_per_s))
    cuda.fma_peak(sink.data.ptr, 1, iterations, _stream_ptr(kind))


def _elapsed_s(fn, kind: str, calls: int, hold_s: float = 0.0) -> float:
    if hold_s > 0:
        _hold_stream(kind, hold_s)
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


def _host_seconds(fn) -> float:
    """Host time of one call, queued without waiting for the device."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def event_medians(cases: Dict[str, Timed], repeats: int = 7,
                  min_sample_s: float = 0.01, queue_ahead: bool = False) -> Dict[str, float]:
    """Median seconds per call of each case, CUDA events, after warm-up.

    queue_ahead: before each sample, hold the stream with a spin kernel for
    twice the host's time to queue the sample's calls (at most 0.25 s), so the
    figure is the device's time alone even where a call's host work (argument
    checks, allocation, launch) outlasts its kernels."""
    calls, hold = {}, {}
    for name, (fn, kind) in cases.items():
        fn()  # warm-up: module load, cuBLAS handle, autotuning
        one = max(_elapsed_s(fn, kind, 1), 1e-7)
        calls[name] = max(1, min(1000, int(min_sample_s / one) + 1))
        hold[name] = min(0.25, 2 * calls[name] * _host_seconds(fn)) if queue_ahead else 0.0
    samples = {name: [] for name in cases}
    names = list(cases)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            fn, kind = cases[name]
            samples[name].append(_elapsed_s(fn, kind, calls[name], hold[name]))
    return {name: statistics.median(s) for name, s in samples.items()}


def fma_gflops(iterations: int = 4096, repeats: int = 5) -> float:
    """FP32 FMA throughput of the whole device (GFLOP/s), from pykernels' own
    peak kernel (cuda/peak.cu): 16 blocks per SM, 16 flops per iteration."""
    from .._backend import current_stream_ptr, require_cuda

    cupy = _cupy()
    cuda = require_cuda()
    blocks = 16 * cuda.multiprocessor_count()
    sink = cupy.empty(blocks * 256, dtype=cupy.float32)
    med = event_medians({"fma": (lambda: cuda.fma_peak(sink.data.ptr, blocks, iterations,
                                                      current_stream_ptr()), "cupy")},
                        repeats=repeats)
    return 16.0 * iterations * blocks * 256 / med["fma"] / 1e9


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

"""This machine's peaks, measured: FP32 multiply-add throughput per
instruction set and thread count, and memory bandwidth (a parallel read and a
STREAM-like triad a = b + s*c). Kernel suites quote their GFLOP/s as a
fraction of these (`peak_gflops`), bandwidth-bound ops their GB/s as a
fraction of the triad (`triad_gbps`). On a GPU, `gpu.peaks` adds FP32 FMA
throughput and device-to-device copy bandwidth."""

from __future__ import annotations

import functools
import statistics
import time

import numpy as np

from .. import _cpu

ISA_ORDER = ("generic", "avx2", "avx512")


def available_isas():
    best = _cpu.detected_isa()
    return ISA_ORDER[: ISA_ORDER.index(best) + 1]


def _fma_gflops(isa: str, threads: int, repeats: int = 5, sample_s: float = 0.05) -> float:
    iterations = 1 << 12
    while True:  # grow the probe until one run is long enough to time
        start = time.perf_counter()
        _cpu.fma_peak_flops(isa, iterations, threads)
        if time.perf_counter() - start >= sample_s or iterations >= 1 << 30:
            break
        iterations *= 4
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        flops = _cpu.fma_peak_flops(isa, iterations, threads)
        rates.append(flops / (time.perf_counter() - start) / 1e9)
    # A ceiling is the best the hardware did: on a shared machine other
    # processes only ever push samples down, so the best sample, not the
    # median, estimates it.
    return max(rates)


@functools.lru_cache(maxsize=None)
def peak_gflops(isa: str, threads: int) -> float:
    """Measured FP32 peak (GFLOP/s) of `isa` on `threads` threads, cached."""
    return _fma_gflops(isa, threads)


def _read_gbps(x, threads: int, repeats: int) -> float:
    from .timing import interleaved_medians, pinned_threads

    with pinned_threads(threads):
        med = interleaved_medians({"read": lambda: _cpu.read_sum(x)}, repeats=repeats)
    return x.nbytes / med["read"] / 1e9


TRIAD_BYTES_PER_ELEMENT = 12  # read b and c, write a (float32)


def triad_gbps(threads: int, mib: int = 128, repeats: int = 5) -> float:
    """STREAM-like triad a = b + s*c over three `mib`-MiB arrays on `threads`
    threads; GB/s counting 12 bytes per element (no write-allocate traffic),
    from the fastest of `repeats` passes."""
    from .timing import pinned_threads

    n = mib * 2**20 // 4
    a = np.empty(n, np.float32)
    b = np.full(n, 1.0, np.float32)
    c = np.full(n, 2.0, np.float32)
    with pinned_threads(threads):
        _cpu.triad(a, b, c, 3.0)  # page in a
        best = float("inf")
        for _ in range(repeats):  # best, not median: see _fma_gflops
            start = time.perf_counter()
            _cpu.triad(a, b, c, 3.0)
            best = min(best, time.perf_counter() - start)
    return TRIAD_BYTES_PER_ELEMENT * n / best / 1e9


def cpu_ceilings(threads=(1, 2), mib: int = 128, repeats: int = 5) -> dict:
    """{'fma_gflops': {isa: {threads: GFLOP/s}}, 'triad_gbps': {threads: GB/s},
    'isa': the ISA the kernels use, 'triad_mib': array size} -- all measured
    now (not cached: the main run measures before and after its kernels)."""
    return {
        "isa": _cpu.get_isa(),
        "fma_gflops": {isa: {t: _fma_gflops(isa, t) for t in threads}
                       for isa in available_isas()},
        "triad_gbps": {t: triad_gbps(t, mib, repeats) for t in threads},
        "triad_mib": mib,
    }


def run(threads=(1, 2), repeats: int = 5, mib: int = 512, gpu: bool = True, **_):
    rows = []
    for isa in available_isas():
        for t in threads:
            rows.append({"probe": f"FMA {isa}", "device": "cpu", "threads": t,
                         "GFLOP/s": peak_gflops(isa, t), "GB/s": ""})
    x = np.ones(mib * 2**20 // 4, dtype=np.float32)
    for t in threads:
        rows.append({"probe": f"read {mib} MiB", "device": "cpu", "threads": t, "GFLOP/s": "",
                     "GB/s": _read_gbps(x, t, repeats)})
    del x
    triad_mib = max(16, mib // 4)
    for t in threads:
        rows.append({"probe": f"triad 3x{triad_mib} MiB", "device": "cpu", "threads": t,
                     "GFLOP/s": "", "GB/s": triad_gbps(t, triad_mib, repeats)})
    if gpu:
        from . import gpu as gpu_bench

        if gpu_bench.usable():
            p = gpu_bench.peaks()
            rows.append({"probe": "FMA fp32 (pykernels peak kernel)", "device": "cuda", "threads": "",
                         "GFLOP/s": p["fma_gflops"], "GB/s": ""})
            rows.append({"probe": f"copy d2d {p['copy_mib']} MiB", "device": "cuda",
                         "threads": "", "GFLOP/s": "", "GB/s": p["copy_gbps"]})
        else:
            rows.append({"probe": "GPU", "device": "cuda", "threads": "", "GFLOP/s": "",
                         "GB/s": "", "note": f"skipped: {gpu_bench.why_unusable()}"})
    return rows

"""This machine's peaks, measured: FP32 multiply-add throughput per
instruction set and thread count, and memory bandwidth. Kernel suites quote
their GFLOP/s as a fraction of these (`peak_gflops`)."""

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
    return statistics.median(rates)


@functools.lru_cache(maxsize=None)
def peak_gflops(isa: str, threads: int) -> float:
    """Measured FP32 peak (GFLOP/s) of `isa` on `threads` threads, cached."""
    return _fma_gflops(isa, threads)


def _read_gbps(x, threads: int, repeats: int) -> float:
    from .timing import interleaved_medians, pinned_threads

    with pinned_threads(threads):
        med = interleaved_medians({"read": lambda: _cpu.read_sum(x)}, repeats=repeats)
    return x.nbytes / med["read"] / 1e9


def run(threads=(1, 2), repeats: int = 5, mib: int = 512, **_):
    rows = []
    for isa in available_isas():
        for t in threads:
            rows.append({"probe": f"FMA {isa}", "threads": t,
                         "GFLOP/s": peak_gflops(isa, t), "GB/s": ""})
    x = np.ones(mib * 2**20 // 4, dtype=np.float32)
    for t in threads:
        rows.append({"probe": f"read {mib} MiB", "threads": t, "GFLOP/s": "",
                     "GB/s": _read_gbps(x, t, repeats)})
    return rows

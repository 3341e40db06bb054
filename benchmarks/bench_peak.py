"""The ceilings as benchmarks: the FMA probe per ISA and the STREAM-like
triad (a = b + s*c over three 128 MiB arrays). extra_info carries the work,
so rate = work / mean seconds."""

import numpy as np
import pytest

from pykernels import _cpu
from pykernels.bench.peak import available_isas

FMA_ITERATIONS = 1 << 20
TRIAD_N = 128 * 2**20 // 4


@pytest.mark.benchmark(group="peak fma")
@pytest.mark.parametrize("isa", available_isas())
def test_fma_peak(benchmark, nthreads, isa):
    flops = _cpu.fma_peak_flops(isa, FMA_ITERATIONS, nthreads)
    benchmark.extra_info.update(op="fma", isa=isa, flops=flops)
    benchmark(_cpu.fma_peak_flops, isa, FMA_ITERATIONS, nthreads)


@pytest.mark.benchmark(group="peak triad 3x128MiB")
def test_triad(benchmark, nthreads):
    b = np.ones(TRIAD_N, np.float32)
    c = np.full(TRIAD_N, 2.0, np.float32)
    a = np.empty_like(b)
    benchmark.extra_info.update(op="triad", bytes=12.0 * TRIAD_N)
    benchmark(_cpu.triad, a, b, c, 3.0)

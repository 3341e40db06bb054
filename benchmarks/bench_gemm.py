"""SGEMM: pykernels (auto and each ladder rung) beside numpy.matmul
(OpenBLAS), one group per shape so `--benchmark-compare` lines them up.
extra_info carries the FLOPs, so GFLOP/s = flops / mean seconds."""

import numpy as np
import pytest

import pykernels.functional as F

SHAPES = {"square-512": (512, 512, 512), "square-1024": (1024, 1024, 1024),
          "alexnet-fc6-b128": (128, 4096, 9216)}


def _operands(m, n, k):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((m, k), dtype=np.float32),
            rng.standard_normal((k, n), dtype=np.float32), np.empty((m, n), np.float32))


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("impl", ["pykernels", "numpy"])
def test_gemm(benchmark, nthreads, name, impl):
    m, n, k = SHAPES[name]
    a, b, c = _operands(m, n, k)
    benchmark.group = f"gemm {name}"
    benchmark.extra_info.update(op="gemm", m=m, n=n, k=k, flops=2.0 * m * n * k)
    if impl == "pykernels":
        benchmark(F.gemm, a, b, c)
    else:
        benchmark(np.matmul, a, b, out=c)


@pytest.mark.parametrize("algo", ["naive", "blocked", "packed", "auto"])
def test_gemm_ladder_256(benchmark, nthreads, algo):
    a, b, c = _operands(256, 256, 256)
    benchmark.group = "gemm ladder 256"
    benchmark.extra_info.update(op="gemm", algo=algo, flops=2.0 * 256**3)
    benchmark(F.gemm, a, b, c, algo=algo)

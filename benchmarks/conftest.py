"""pytest-benchmark suites: `pytest benchmarks --benchmark-only` (see README).
They time single cases; the interleaved side-by-side ratios come from
`pykernels bench`."""

import numpy as np
import pytest


@pytest.fixture(params=[1, 2], ids=lambda t: f"{t}thr")
def nthreads(request):
    from pykernels.bench.timing import pinned_threads

    with pinned_threads(request.param):
        yield request.param


@pytest.fixture(scope="session")
def big_vector():
    rng = np.random.default_rng(0)
    return rng.standard_normal(16 * 2**20, dtype=np.float32)  # 64 MiB

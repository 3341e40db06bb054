"""SGEMM against numpy.matmul (OpenBLAS here), side by side, interleaved,
medians, NumPy's BLAS pinned to the same thread count. Each figure is also a
fraction of this machine's measured FMA peak for the ISA in use."""

from __future__ import annotations

import numpy as np

from .. import _cpu
from .. import functional as F
from .peak import peak_gflops
from .timing import interleaved_medians, pinned_threads

SQUARES = (512, 1024, 2048, 4096)
SMALL = (8, 16, 32, 64)
# (name, M, N, K): the per-image im2col GEMMs of AlexNet's convolutions and
# its fully connected layers at batch 128.
ALEXNET = (
    ("conv1", 64, 3025, 363), ("conv2", 192, 729, 1600), ("conv3", 384, 169, 1728),
    ("conv4", 256, 169, 3456), ("conv5", 256, 169, 2304),
    ("fc6", 128, 4096, 9216), ("fc7", 128, 4096, 4096), ("fc8", 128, 1000, 4096),
)
LADDER = ("naive", "blocked", "packed")


def _operands(m, n, k, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    return a, b, np.empty((m, n), np.float32), np.empty((m, n), np.float32)


def _compare(label, m, n, k, threads, repeats, algo="auto"):
    a, b, c_ours, c_np = _operands(m, n, k)
    with pinned_threads(threads):
        med = interleaved_medians({
            "pykernels": lambda: F.gemm(a, b, c_ours, algo=algo),
            "numpy": lambda: np.matmul(a, b, out=c_np),
        }, repeats=repeats)
    flops = 2.0 * m * n * k
    ours, theirs = flops / med["pykernels"] / 1e9, flops / med["numpy"] / 1e9
    return {"case": label, "M": m, "N": n, "K": k, "threads": threads,
            "pykernels GFLOP/s": ours, "numpy GFLOP/s": theirs, "ratio": ours / theirs,
            "of peak": ours / peak_gflops(_cpu.get_isa(), threads)}


def run(threads=(1, 2), repeats: int = 7, quick: bool = False, **_):
    rows = []
    for t in threads:
        for n in (SQUARES[:2] if quick else SQUARES):
            rows.append(_compare(f"square {n}", n, n, n, t, repeats))
        for name, m, n, k in (ALEXNET[:3] if quick else ALEXNET):
            rows.append(_compare(f"alexnet {name}", m, n, k, t, repeats))
        for n in SMALL:
            rows.append(_compare(f"small {n}", n, n, n, t, repeats))
    return rows


def run_ladder(threads=(1, 2), repeats: int = 3, quick: bool = False, **_):
    """Each rung at n = 512 and 1024, with NumPy beside it."""
    rows = []
    for t in threads:
        for n in ((512,) if quick else (512, 1024)):
            a, b, _, c_np = _operands(n, n, n)
            outs = {algo: np.empty((n, n), np.float32) for algo in LADDER}
            cases = {algo: (lambda algo=algo: F.gemm(a, b, outs[algo], algo=algo))
                     for algo in LADDER}
            cases["numpy"] = lambda: np.matmul(a, b, out=c_np)
            with pinned_threads(t):
                med = interleaved_medians(cases, repeats=repeats, min_sample_s=0.0)
            peak = peak_gflops(_cpu.get_isa(), t)
            for name, seconds in med.items():
                gflops = 2.0 * n**3 / seconds / 1e9
                rows.append({"n": n, "threads": t, "variant": name, "GFLOP/s": gflops,
                             "of peak": gflops / peak})
    return rows

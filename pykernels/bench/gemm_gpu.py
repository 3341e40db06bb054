"""The GPU SGEMM ladder against cuBLAS (cupy.matmul, FP32, TF32 off), timed
with CUDA events after warm-up, interleaved, medians; every rung in TFLOP/s
and as a fraction of the FP32 FMA peak measured on the same GPU, with the
tuning candidates of cuda/gemm.cu (kernels that are not rungs yet, timed to
choose the next step from measurements); then the
skinny products of an LSTM step and of conv weight gradients, where the
split-K rung should beat plain warptile. A second table puts the CPU and GPU
ladders side by side at n = 1024."""

from __future__ import annotations

import os

import numpy as np

from .. import functional as F

SIZES = (1024, 2048, 4096, 8192)
RUNGS = ("naive", "coalesced", "smem", "regblock", "vectorized", "warptile")
# What F.gemm runs by default on the GPU: warptile's loop on 64x128 tiles,
# split along K where the grid would leave SMs idle.
DEFAULT = "auto"
# The first two rungs take seconds per call at n = 8192 and teach nothing new there.
SLOW_RUNGS_MAX_N = 4096


def _cupy_without_tf32():
    # CuPy reads CUPY_TF32 when it first uses cuBLAS; 0 (its default) keeps
    # cupy.matmul in true FP32, the arithmetic our kernels do.
    os.environ.setdefault("CUPY_TF32", "0")
    import cupy

    return cupy


def _max_relative_error(x, reference) -> float:
    scale = float(abs(reference).max()) or 1.0
    return float(abs(x - reference).max()) / scale


# Products whose 128x128 tiles leave most of an H100/H200's 132 SMs idle,
# where the split-K rung should pay: (label, M, N, K).
SKINNY = (("LSTM step 64x2048x512", 64, 2048, 512),
          ("conv1 dW 64x363x75625", 64, 363, 25 * 3025),
          ("conv3 dW 384x1728x21632", 384, 1728, 128 * 169))
SKINNY_RUNGS = ("warptile", "splitk", DEFAULT)


def _tuning_case(a, b, out, variant):
    """A tuning candidate of cuda/gemm.cu (not a rung: plain row-major operands only)."""
    from .._backend import current_stream_ptr, require_cuda

    m, k = a.shape
    n = b.shape[1]
    return lambda: require_cuda().sgemm_tuning(variant, m, n, k, 1.0, a.data.ptr, k, b.data.ptr,
                                               n, 0.0, out.data.ptr, n, current_stream_ptr())


def _time_rungs(cupy, m, n, k, rungs, repeats, peak, label, tuning=()):
    """One row per rung, per tuning candidate and for cuBLAS, all timed
    interleaved on one pair of operands."""
    from .gpu import event_medians

    a = cupy.random.standard_normal((m, k), dtype=cupy.float32)
    b = cupy.random.standard_normal((k, n), dtype=cupy.float32)
    tuned = [f"tuning: {v}" for v in tuning]
    outs = {name: cupy.empty((m, n), cupy.float32) for name in (*rungs, *tuned, "cuBLAS")}
    cases = {r: (lambda r=r: F.gemm(a, b, outs[r], algo=r), "cupy") for r in rungs}
    for variant, name in zip(tuning, tuned):
        cases[name] = (_tuning_case(a, b, outs[name], variant), "cupy")
    cases["cuBLAS"] = (lambda: cupy.matmul(a, b, out=outs["cuBLAS"]), "cupy")
    med = event_medians(cases, repeats=repeats)
    rows = []
    for name, seconds in med.items():
        gflops = 2.0 * m * n * k / seconds / 1e9
        rows.append({
            "n": label, "variant": name, "TFLOP/s": gflops / 1e3,
            "vs cuBLAS": med["cuBLAS"] / seconds, "of FP32 peak": gflops / peak,
            "max rel err vs cuBLAS": _max_relative_error(outs[name], outs["cuBLAS"]),
        })
    return rows


def run(repeats: int = 5, quick: bool = False, sizes=SIZES, skinny=SKINNY,
        peak_iterations: int = 4096, **_):
    cupy = _cupy_without_tf32()
    from .._backend import require_cuda
    from .gpu import fma_gflops

    peak = fma_gflops(peak_iterations)
    tuning = tuple(require_cuda().sgemm_tuning_variants())
    rows = []
    for n in (sizes[:2] if quick else sizes):
        rungs = [r for r in RUNGS if n <= SLOW_RUNGS_MAX_N or r not in ("naive", "coalesced")]
        rows += _time_rungs(cupy, n, n, n, [*rungs, DEFAULT], repeats, peak, n, tuning)
    for label, m, n, k in skinny[:1] if quick else skinny:
        rows += _time_rungs(cupy, m, n, k, SKINNY_RUNGS, repeats, peak, label)
    return rows


TF32_SIZES = (2048, 4096, 8192)


def _torch_tf32_matmul(torch, a, b):
    """cuBLAS with TF32 allowed, through PyTorch: the tf32 rung's peer. The
    switch is set for this call only, since the other GPU suites keep TF32
    off."""
    ta, tb = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
    out = torch.empty((a.shape[0], b.shape[1]), device="cuda", dtype=torch.float32)

    def call():
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            torch.matmul(ta, tb, out=out)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = previous
    return call, out


def run_tf32(repeats: int = 5, quick: bool = False, sizes=TF32_SIZES, **_):
    """The tensor-core rung (algo="tf32", inputs rounded to TF32, FP32 sums)
    against cuBLAS with TF32 (PyTorch, where it has CUDA), with warptile and
    cuBLAS in FP32 beside them; errors are against FP32 cuBLAS."""
    cupy = _cupy_without_tf32()
    from .gpu import event_medians, torch_cuda

    torch = torch_cuda()
    rows = []
    for n in (sizes[:1] if quick else sizes):
        a = cupy.random.standard_normal((n, n), dtype=cupy.float32)
        b = cupy.random.standard_normal((n, n), dtype=cupy.float32)
        outs = {v: cupy.empty((n, n), cupy.float32) for v in ("tf32", "warptile", "cuBLAS FP32")}
        cases = {v: (lambda v=v: F.gemm(a, b, outs[v], algo=v), "cupy")
                 for v in ("tf32", "warptile")}
        cases["cuBLAS FP32"] = (lambda: cupy.matmul(a, b, out=outs["cuBLAS FP32"]), "cupy")
        if torch is not None:
            call, torch_out = _torch_tf32_matmul(torch, a, b)
            cases["cuBLAS TF32 (torch)"] = (call, "torch")
        med = event_medians(cases, repeats=repeats)
        if torch is not None:
            outs["cuBLAS TF32 (torch)"] = cupy.asarray(torch_out)
        peer = med.get("cuBLAS TF32 (torch)")
        for name, seconds in med.items():
            rows.append({
                "n": n, "variant": name, "TFLOP/s": 2.0 * n**3 / seconds / 1e12,
                "vs cuBLAS TF32": None if peer is None else peer / seconds,
                "max rel err vs FP32 cuBLAS": _max_relative_error(outs[name],
                                                                  outs["cuBLAS FP32"]),
            })
    return rows


def run_side_by_side(threads=(1,), repeats: int = 3, **_):
    """The CPU ladder (bench/gemm.py) and the GPU ladder at n = 1024 in one
    table, each as a fraction of its own device's measured peak."""
    from .. import _cpu
    from .gemm import LADDER, _operands
    from .peak import peak_gflops
    from .timing import interleaved_medians, pinned_threads

    n = 1024
    rows = []
    a, b, _, c_np = _operands(n, n, n)
    for t in threads:
        outs = {algo: np.empty((n, n), np.float32) for algo in LADDER}
        cases = {algo: (lambda algo=algo: F.gemm(a, b, outs[algo], algo=algo)) for algo in LADDER}
        cases["numpy (OpenBLAS)"] = lambda: np.matmul(a, b, out=c_np)
        with pinned_threads(t):
            med = interleaved_medians(cases, repeats=repeats, min_sample_s=0.0)
        peak = peak_gflops(_cpu.get_isa(), t)
        for name, seconds in med.items():
            gflops = 2.0 * n**3 / seconds / 1e9
            rows.append({"device": f"CPU, {t} thread(s)", "variant": name, "GFLOP/s": gflops,
                         "of peak": gflops / peak})
    for row in run(repeats=repeats, quick=True):
        if row["n"] == n:
            rows.append({"device": "GPU", "variant": row["variant"],
                         "GFLOP/s": row["TFLOP/s"] * 1e3, "of peak": row["of FP32 peak"]})
    return rows

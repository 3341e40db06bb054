"""The main run behind a bare `pykernels bench`: measure this machine's
ceilings, then each op side by side with the NumPy reference and its peer
(OpenBLAS through NumPy for GEMM, PyTorch CPU for conv/pool/BN/ReLU/LSTM,
cuBLAS/cuDNN on a GPU), then the AlexNet training step; print the table and
write the report folder (report.md, PNG plots, results.json).

Every figure in the output is measured in this run. Ratios are "x faster":
reference seconds / pykernels seconds and peer seconds / pykernels seconds,
so > 1 means pykernels is faster.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from .. import functional as F
from .. import reference as R

OPS = ("gemm", "gemm-ladder", "conv", "pool", "batchnorm", "relu", "lstm", "sgd", "alexnet")
SCHEMA_VERSION = 1
# results.json: the top-level keys and each row's keys (tests hold them fixed).
RESULT_KEYS = ("schema_version", "created", "command", "config", "machine", "peers",
               "gpu_note", "ceilings", "rows", "alexnet", "wall_seconds")
ROW_KEYS = ("op", "shape", "device", "threads", "impl", "role", "flops", "bytes", "intensity",
            "metric", "seconds", "gflops", "gbps", "rate", "peak", "peak_what", "of_peak",
            "ref_seconds", "vs_ref", "peer", "peer_seconds", "vs_peer", "peers",
            "skipped_peers", "note")


@dataclass
class Case:
    """One op at one shape on one device. `ours`, `variants` and `peers` do
    the same work and are timed interleaved; `ref` (the NumPy reference) may
    do 1/ref_scale of it (a smaller batch) and is timed on its own."""

    op: str
    shape: str
    device: str
    flops: float
    bytes: float
    metric: str  # "GFLOP/s" or "GB/s": which rate the table leads with
    ours: Optional[Callable[[], object]]
    variants: Dict[str, Callable[[], object]] = field(default_factory=dict)
    peers: Dict[str, Callable[[], object]] = field(default_factory=dict)
    peer_kinds: Dict[str, str] = field(default_factory=dict)  # GPU: "cupy"/"torch" events
    skipped: Dict[str, str] = field(default_factory=dict)  # peer -> why not measured
    ref: Optional[Callable[[], object]] = None
    ref_scale: float = 1.0
    note: str = ""


@dataclass
class Config:
    quick: bool = False
    full: bool = False
    threads: int = 2
    device: str = "all"  # cpu | cuda | all (all: the GPU when usable)
    ops: tuple = OPS
    repeats: int = 5

    @property
    def size(self) -> str:
        return "quick" if self.quick else "full" if self.full else "default"


def _rng(seed=0):
    return np.random.default_rng(seed)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


TORCH_MISSING = "skipped: not installed (pip install torch)"


# ----------------------------------------------------------------- CPU cases

def gemm_cases(cfg: Config) -> List[Case]:
    sizes = {"quick": [(512, 512, 512)],
             "default": [(1024, 1024, 1024), (128, 4096, 9216)],
             "full": [(512,) * 3, (1024,) * 3, (2048,) * 3, (128, 4096, 9216),
                      (64, 3025, 363)]}[cfg.size]
    cases = []
    for m, n, k in sizes:
        a = _rng().standard_normal((m, k), dtype=np.float32)
        b = _rng(1).standard_normal((k, n), dtype=np.float32)
        c1, c2 = np.empty((m, n), np.float32), np.empty((m, n), np.float32)
        cases.append(Case(
            "gemm", f"{m}x{n}x{k}", "cpu", 2.0 * m * n * k, 4.0 * (m * k + k * n + m * n),
            "GFLOP/s", lambda a=a, b=b, c=c1: F.gemm(a, b, c),
            peers={"NumPy/OpenBLAS": lambda a=a, b=b, c=c2: np.matmul(a, b, out=c)},
            ref=lambda a=a, b=b: R.gemm(a, b),
            note="the NumPy reference is OpenBLAS plus a cast"))
    return cases


def ladder_cases(cfg: Config) -> List[Case]:
    sizes = (256,) if cfg.quick else (512, 1024) if cfg.full else (512,)
    cases = []
    for n in sizes:
        a = _rng().standard_normal((n, n), dtype=np.float32)
        b = _rng(1).standard_normal((n, n), dtype=np.float32)
        outs = {v: np.empty((n, n), np.float32) for v in ("naive", "blocked", "packed", "np")}
        cases.append(Case(
            "gemm-ladder", f"{n}x{n}x{n}", "cpu", 2.0 * n**3, 12.0 * n * n, "GFLOP/s",
            None,
            variants={v: (lambda v=v: F.gemm(a, b, outs[v], algo=v))
                      for v in ("naive", "blocked", "packed")},
            peers={"NumPy/OpenBLAS": lambda: np.matmul(a, b, out=outs["np"])},
            ref=lambda: R.gemm(a, b)))
    return cases


ALEXNET_CONV = {  # name: (C, O, k, stride, pad, input side)
    "conv1": (3, 64, 11, 4, 2, 224), "conv2": (64, 192, 5, 1, 2, 27),
    "conv3": (192, 384, 3, 1, 1, 13), "conv4": (384, 256, 3, 1, 1, 13),
    "conv5": (256, 256, 3, 1, 1, 13),
}


def _conv_case(name, batch, backward, torch):
    c, o, k, s, p, hw = ALEXNET_CONV[name]
    side = (hw + 2 * p - k) // s + 1
    rng = _rng()
    x = rng.standard_normal((batch, c, hw, hw), dtype=np.float32)
    w = rng.standard_normal((o, c, k, k), dtype=np.float32) * np.float32((c * k * k) ** -0.5)
    bias = rng.standard_normal(o, dtype=np.float32)
    dy = rng.standard_normal((batch, o, side, side), dtype=np.float32)
    x1, dy1 = x[:1].copy(), dy[:1].copy()
    fwd_flops = 2.0 * batch * o * c * k * k * side * side
    traffic = 4.0 * (x.size + w.size + dy.size)
    if backward:
        def ours():
            F.conv2d(x, w, bias, s, p)
            F.conv2d_backward(dy, x, w, s, p)

        def ref():
            R.conv2d(x1, w, bias, s, p)
            R.conv2d_backward(dy1, x1, w, s, p)
        flops, traffic = 3 * fwd_flops, 3 * traffic
    else:
        def ours():
            F.conv2d(x, w, bias, s, p)

        def ref():
            R.conv2d(x1, w, bias, s, p)
        flops = fwd_flops
    case = Case("conv2d " + ("fwd+bwd" if backward else "fwd"),
                f"{name} N{batch} {c}->{o} {k}x{k}/{s} @{hw}", "cpu", flops, traffic, "GFLOP/s",
                ours, ref=ref, ref_scale=batch,
                note="NumPy reference timed at batch 1, scaled per image")
    if torch is None:
        case.skipped["PyTorch CPU"] = TORCH_MISSING
        return case
    tx, tw, tb, tdy = (torch.from_numpy(v) for v in (x, w, bias, dy))
    if backward:
        gx, gw, gb = (t.clone().requires_grad_() for t in (tx, tw, tb))

        def peer():
            gx.grad = gw.grad = gb.grad = None
            torch.nn.functional.conv2d(gx, gw, gb, s, p).backward(tdy)
    else:
        def peer():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, s, p)
    case.peers["PyTorch CPU"] = peer
    return case


def conv_cases(cfg: Config) -> List[Case]:
    torch = _torch()
    if cfg.quick:
        plan = [("conv2", 4, False), ("conv3", 4, True)]
    elif cfg.full:
        plan = [(n, 16, bwd) for n in ALEXNET_CONV for bwd in (False, True)]
    else:
        plan = [("conv1", 8, False), ("conv2", 8, False), ("conv2", 8, True), ("conv3", 8, True)]
    return [_conv_case(n, b, bwd, torch) for n, b, bwd in plan]


def pool_cases(cfg: Config) -> List[Case]:
    torch = _torch()
    batch = 8 if cfg.quick else 16
    x = _rng().standard_normal((batch, 64, 55, 55), dtype=np.float32)
    y, idx = F.max_pool2d(x, 3, 2)
    dy = _rng(1).standard_normal(y.shape, dtype=np.float32)
    shape = f"pool1 N{batch}x64x55x55 3x3/2"
    fwd = Case("maxpool fwd", shape, "cpu", 8.0 * y.size, 4.0 * x.size + 12.0 * y.size, "GB/s",
               lambda: F.max_pool2d(x, 3, 2), ref=lambda: R.max_pool2d(x, 3, 2),
               note="bytes: read x, write y and int64 indices")
    bwd = Case("maxpool bwd", shape, "cpu", 1.0 * y.size, 4.0 * x.size + 12.0 * y.size, "GB/s",
               lambda: F.max_pool2d_backward(dy, idx, x.shape),
               ref=lambda: R.max_pool2d_backward(dy, idx, x.shape))
    cases = [fwd] if cfg.quick else [fwd, bwd]
    if torch is None:
        for c in cases:
            c.skipped["PyTorch CPU"] = TORCH_MISSING
        return cases
    tx, tdy, tidx = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(idx)
    fwd.peers["PyTorch CPU"] = lambda: torch.nn.functional.max_pool2d(tx, 3, 2,
                                                                       return_indices=True)
    bwd.peers["PyTorch CPU"] = lambda: torch.ops.aten.max_pool2d_with_indices_backward(
        tdy, tx, [3, 3], [2, 2], [0, 0], [1, 1], False, tidx)
    return cases


def batchnorm_cases(cfg: Config) -> List[Case]:
    torch = _torch()
    shape = (8 if cfg.quick else 16, 64, 56, 56)
    x = _rng().standard_normal(shape, dtype=np.float32)
    c = shape[1]
    w, b = np.ones(c, np.float32), np.zeros(c, np.float32)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    case = Case("batchnorm train fwd", "N{}x{}x{}x{}".format(*shape), "cpu", 7.0 * x.size,
                8.0 * x.size, "GB/s", lambda: F.batch_norm(x, rm, rv, w, b, True),
                ref=lambda: R.batch_norm(x, rm.copy(), rv.copy(), w, b, True),
                note="bytes: read x once, write y (the stats pass re-reads x)")
    if torch is None:
        case.skipped["PyTorch CPU"] = TORCH_MISSING
    else:
        tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        trm, trv = torch.zeros(c), torch.ones(c)
        case.peers["PyTorch CPU"] = lambda: torch.ops.aten.native_batch_norm(
            tx, tw, tb, trm, trv, True, 0.1, 1e-5)
    return [case]


def relu_cases(cfg: Config) -> List[Case]:
    torch = _torch()
    mib = 16 if cfg.quick else 64
    n = mib * 2**20 // 4
    x = _rng().standard_normal(n, dtype=np.float32)
    y1, y2 = np.empty_like(x), np.empty_like(x)
    case = Case("relu fwd", f"{mib} MiB", "cpu", float(n), 8.0 * n, "GB/s",
                lambda: F.relu(x, out=y1), ref=lambda: R.relu(x),
                note="bytes: one read and one write per element")
    case.peers["np.maximum(out=)"] = lambda: np.maximum(x, 0, out=y2)
    if torch is not None:
        tx, ty = torch.from_numpy(x), torch.from_numpy(np.empty_like(x))
        case.peers["PyTorch CPU"] = lambda: torch.clamp_min(tx, 0, out=ty)
    else:
        case.skipped["PyTorch CPU"] = TORCH_MISSING
    return [case]


def lstm_cases(cfg: Config) -> List[Case]:
    torch = _torch()
    shapes = [(20, 16, 128, 128)] if cfg.quick else [(50, 32, 256, 256)]
    if cfg.full:
        shapes.append((50, 64, 512, 512))
    cases = []
    for t, n, i, h in shapes:
        rng = _rng()
        u = lambda *s: rng.uniform(-0.1, 0.1, s).astype(np.float32)  # noqa: E731
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, dy = (u(t, n, i), u(n, h), u(n, h), u(4 * h, i),
                                                 u(4 * h, h), u(4 * h), u(4 * h), u(t, n, h))
        zh = np.zeros((n, h), np.float32)

        def ours():
            *_, cache = F.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
            F.lstm_backward(dy, zh, zh, cache)

        def ref():
            *_, cache = R.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
            R.lstm_backward(dy, zh, zh, cache)

        gemm_flops = 2.0 * t * n * 4 * h * (i + h)
        params = 4 * h * (i + h) + 8 * h
        case = Case("lstm fwd+bwd", f"T{t} N{n} I{i} H{h}", "cpu", 3 * gemm_flops,
                    4.0 * (3 * params + 2 * t * n * (i + 5 * h)), "GFLOP/s", ours, ref=ref,
                    note="FLOPs: the gate GEMMs, x3 for fwd+bwd")
        if torch is None:
            case.skipped["PyTorch CPU"] = TORCH_MISSING
        else:
            mod = torch.nn.LSTM(i, h)
            with torch.no_grad():
                for name, v in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh),
                                ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)):
                    getattr(mod, name).copy_(torch.from_numpy(v))
            tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
            state = (torch.from_numpy(h0)[None], torch.from_numpy(c0)[None])

            def peer(mod=mod, tx=tx, tdy=tdy, state=state):
                out, _ = mod(tx.detach().requires_grad_(), state)
                out.backward(tdy)
            case.peers["PyTorch CPU"] = peer
        cases.append(case)
    return cases


# AlexNet's optimiser: momentum 0.9 with Nesterov and weight decay 5e-4.
SGD_SETTINGS = dict(lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True)


def _sgd_arrays(xp, n: int):
    """Parameters, gradient and velocity of n elements on NumPy or CuPy."""
    w = xp.asarray(_rng().standard_normal(n, dtype=np.float32))
    g = xp.asarray(_rng(1).standard_normal(n, dtype=np.float32))
    return w, g, xp.zeros(n, dtype=np.float32)


def _torch_sgd_step(torch, n: int, device: str, **options):
    """torch.optim.SGD's step over one n-element parameter with a gradient."""
    param = torch.nn.Parameter(torch.randn(n, device=device))
    param.grad = torch.randn(n, device=device)
    optimizer = torch.optim.SGD([param], **SGD_SETTINGS, **options)
    optimizer.step()  # creates the momentum buffer
    return optimizer.step


def sgd_cases(cfg: Config) -> List[Case]:
    torch = _torch()
    n = (4 if cfg.quick else 16) * 2**20
    w, g, v = _sgd_arrays(np, n)
    w_ref, v_ref = w.copy(), v.copy()
    case = Case("sgd step", f"{n * 4 // 2**20} MiB params", "cpu", 8.0 * n, 20.0 * n, "GB/s",
                lambda: F.sgd_step(w, g, v, **SGD_SETTINGS),
                ref=lambda: R.sgd_step(w_ref, g, v_ref, **SGD_SETTINGS),
                note="momentum + Nesterov + weight decay; bytes: read w, g, v, write w, v")
    if torch is None:
        case.skipped["PyTorch CPU"] = TORCH_MISSING
    else:
        case.peers["PyTorch CPU"] = _torch_sgd_step(torch, n, "cpu")
    return [case]


CPU_BUILDERS = {"gemm": gemm_cases, "gemm-ladder": ladder_cases, "conv": conv_cases,
                "pool": pool_cases, "batchnorm": batchnorm_cases, "relu": relu_cases,
                "lstm": lstm_cases, "sgd": sgd_cases}


# ----------------------------------------------------------------- GPU cases

def gpu_cases(cfg: Config) -> List[Case]:
    """pykernels' CUDA kernels against GEMM through cuBLAS (CuPy) and PyTorch
    CUDA, conv through cuDNN (PyTorch CUDA; im2col and Winograd), ReLU
    against cupy.maximum. Without pykernels' CUDA module the rows carry the
    peers only."""
    from . import gpu

    cupy = gpu._cupy()
    torch = gpu.torch_cuda()
    ours_usable = gpu.pykernels_cuda()
    # One builder per op, so each case's closures hold that op's own arrays
    # (in one shared scope a later op's `x` replaced the conv case's input).
    builders = [(("gemm", "gemm-ladder"), _gpu_gemm_case), (("conv",), _gpu_conv_case),
                (("relu",), _gpu_relu_case), (("sgd",), _gpu_sgd_case)]
    return [build(cfg, cupy, torch, ours_usable) for ops, build in builders
            if any(op in cfg.ops for op in ops)]


def _not_built(ours) -> str:
    return "" if ours else "pykernels CUDA module not built/usable"


def _gpu_gemm_case(cfg: Config, cupy, torch, usable: bool) -> Case:
    n = 2048 if cfg.quick else 4096
    a = cupy.random.standard_normal((n, n), dtype=cupy.float32)
    b = cupy.random.standard_normal((n, n), dtype=cupy.float32)
    c = cupy.empty((n, n), dtype=cupy.float32)
    ours = (lambda: F.gemm(a, b, c)) if usable else None
    case = Case("gemm", f"{n}x{n}x{n}", "cuda", 2.0 * n**3, 12.0 * n * n, "GFLOP/s", ours,
                peers={"cuBLAS (CuPy)": lambda: cupy.matmul(a, b, out=c)},
                peer_kinds={"cuBLAS (CuPy)": "cupy"}, note=_not_built(ours))
    if torch is not None:
        ta, tb = torch.randn(n, n, device="cuda"), torch.randn(n, n, device="cuda")
        case.peers["PyTorch CUDA"] = lambda: torch.matmul(ta, tb)
        case.peer_kinds["PyTorch CUDA"] = "torch"
    return case


def _gpu_conv_case(cfg: Config, cupy, torch, usable: bool) -> Case:
    c_, o, k, s, p, hw = ALEXNET_CONV["conv2"]
    batch = 128
    side = (hw + 2 * p - k) // s + 1
    x = cupy.random.standard_normal((batch, c_, hw, hw), dtype=cupy.float32)
    w = cupy.random.standard_normal((o, c_, k, k), dtype=cupy.float32)
    ours = (lambda: F.conv2d(x, w, None, s, p)) if usable else None
    case = Case("conv2d fwd", f"conv2 N{batch} {c_}->{o} {k}x{k}/{s} @{hw}", "cuda",
                2.0 * batch * o * c_ * k * k * side * side,
                4.0 * (x.size + w.size + batch * o * side * side), "GFLOP/s", ours,
                variants={"winograd": lambda: F.conv2d(x, w, None, s, p, algo="winograd")}
                if usable else {},
                note="GFLOP/s count the direct convolution's multiply-adds" if usable
                else _not_built(ours))
    if torch is None:
        case.skipped["PyTorch CUDA (cuDNN)"] = TORCH_MISSING
        return case
    tx, tw = torch.as_tensor(x, device="cuda"), torch.as_tensor(w, device="cuda")

    def conv():
        with torch.no_grad():
            torch.nn.functional.conv2d(tx, tw, None, s, p)
    case.peers["PyTorch CUDA (cuDNN)"] = conv
    case.peer_kinds["PyTorch CUDA (cuDNN)"] = "torch"
    return case


def _gpu_relu_case(cfg: Config, cupy, torch, usable: bool) -> Case:
    n = (64 if cfg.quick else 256) * 2**20 // 4
    x = cupy.random.standard_normal(n, dtype=cupy.float32)
    y1, y2 = cupy.empty_like(x), cupy.empty_like(x)
    ours = (lambda: F.relu(x, out=y1)) if usable else None
    return Case("relu fwd", f"{n * 4 // 2**20} MiB", "cuda", float(n), 8.0 * n, "GB/s",
                ours, peers={"cupy.maximum": lambda: cupy.maximum(x, 0, out=y2)},
                peer_kinds={"cupy.maximum": "cupy"}, note=_not_built(ours))


def _gpu_sgd_case(cfg: Config, cupy, torch, usable: bool) -> Case:
    n = (16 if cfg.quick else 64) * 2**20
    w, g, v = _sgd_arrays(cupy, n)
    ours = (lambda: F.sgd_step(w, g, v, **SGD_SETTINGS)) if usable else None
    case = Case("sgd step", f"{n * 4 // 2**20} MiB params", "cuda", 8.0 * n, 20.0 * n,
                "GB/s", ours, note=_not_built(ours))
    if torch is not None:
        for name, options in (("foreach", {}), ("fused", {"fused": True})):
            peer = f"PyTorch CUDA ({name})"
            case.peers[peer] = _torch_sgd_step(torch, n, "cuda", **options)
            case.peer_kinds[peer] = "torch"
    return case


# ----------------------------------------------------------------- measuring

def _time_ref(fn, samples: int) -> float:
    fn()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _fraction(row: dict, ceilings: dict, threads: int) -> None:
    peak, _, what = _ceiling(row["device"], row["metric"], ceilings, threads)
    row.update(peak=peak, peak_what=what,
               of_peak=row["rate"] / peak if peak and row["rate"] is not None else None)


def _rate(case: Case, seconds: float) -> dict:
    return {"seconds": seconds,
            "gflops": case.flops / seconds / 1e9 if case.flops else None,
            "gbps": case.bytes / seconds / 1e9 if case.bytes else None}


def measure_case(case: Case, cfg: Config, ceilings: dict) -> List[dict]:
    """Time a case; rows for pykernels (and each variant) and for each peer."""
    from .timing import interleaved_medians, pinned_threads

    timed = {}
    if case.ours is not None:
        timed["pykernels"] = case.ours
    timed.update({f"pykernels {v}": fn for v, fn in case.variants.items()})
    timed.update({f"peer:{p}": fn for p, fn in case.peers.items()})
    if not timed:
        return [_row(case, "none", "pykernels", None, None, {}, cfg, ceilings)]
    if case.device == "cuda":
        from . import gpu

        kinds = {k: case.peer_kinds.get(k[5:], "cupy") for k in timed}
        med = gpu.event_medians({k: (fn, kinds[k]) for k, fn in timed.items()},
                                repeats=cfg.repeats)
        ref_s = None
    else:
        with pinned_threads(cfg.threads):
            med = interleaved_medians(timed, repeats=cfg.repeats,
                                      min_sample_s=0.0 if case.flops > 1e9 else 0.02)
            ref_s = (_time_ref(case.ref, 1 if cfg.quick else 2) * case.ref_scale
                     if case.ref is not None else None)
    peer_s = {k[5:]: v for k, v in med.items() if k.startswith("peer:")}
    rows = []
    for name, seconds in med.items():
        if name.startswith("peer:"):
            rows.append(_row(case, name[5:], "peer", seconds, ref_s, {}, cfg, ceilings))
        else:
            rows.append(_row(case, name, "pykernels", seconds, ref_s, peer_s, cfg, ceilings))
    return rows


def _ceiling(device: str, metric: str, ceilings: dict, threads: int):
    """(peak value, unit, what) that a rate is a fraction of."""
    if device == "cuda":
        g = ceilings.get("gpu") or {}
        return ((g.get("fma_gflops"), "GFLOP/s", "GPU FP32 FMA") if metric == "GFLOP/s"
                else (g.get("copy_gbps"), "GB/s", "GPU d2d copy"))
    cpu = ceilings["cpu"]
    if metric == "GFLOP/s":
        return cpu["fma_gflops"][cpu["isa"]][threads], "GFLOP/s", f"FMA {cpu['isa']}"
    return cpu["triad_gbps"][threads], "GB/s", "triad"


def _row(case, impl, role, seconds, ref_s, peer_s, cfg, ceilings) -> dict:
    threads = cfg.threads if case.device == "cpu" else None
    peak, unit, peak_what = _ceiling(case.device, case.metric, ceilings, cfg.threads)
    row = {"op": case.op, "shape": case.shape, "device": case.device, "threads": threads,
           "impl": impl, "role": role, "flops": case.flops, "bytes": case.bytes,
           "intensity": case.flops / case.bytes if case.bytes else None,
           "metric": case.metric, "seconds": seconds, "gflops": None, "gbps": None,
           "rate": None, "peak": peak, "peak_what": peak_what, "of_peak": None,
           "ref_seconds": ref_s, "vs_ref": None, "peer": None, "peer_seconds": None,
           "vs_peer": None, "peers": {}, "skipped_peers": dict(case.skipped), "note": case.note}
    if seconds is None:
        return row
    row.update(_rate(case, seconds))
    row["rate"] = row["gflops"] if case.metric == "GFLOP/s" else row["gbps"]
    _fraction(row, ceilings, cfg.threads)
    if role == "pykernels":
        if ref_s:
            row["vs_ref"] = ref_s / seconds
        if peer_s:
            row["peers"] = {p: {"seconds": s, "x_faster": s / seconds} for p, s in peer_s.items()}
            first = next(iter(peer_s))
            row.update(peer=first, peer_seconds=peer_s[first], vs_peer=peer_s[first] / seconds)
    return row


# ----------------------------------------------------------------- the run

def _best_of(ceilings: dict, again: dict) -> None:
    """Keep the higher of two measurements of each CPU ceiling (taken before
    and after the kernels) and refresh each row's fraction of peak."""
    cpu, new = ceilings["cpu"], again["cpu"]
    for isa, per_t in cpu["fma_gflops"].items():
        for t in per_t:
            per_t[t] = max(per_t[t], new["fma_gflops"][isa][t])
    for t in cpu["triad_gbps"]:
        cpu["triad_gbps"][t] = max(cpu["triad_gbps"][t], new["triad_gbps"][t])
    ceilings["cpu_note"] = "each CPU ceiling is the best of a measurement before and after " \
                           "the kernels"


def measure_ceilings(cfg: Config, gpu_on: bool, progress) -> dict:
    from . import peak

    threads = sorted({1, cfg.threads})
    mib = 64 if cfg.quick else 128
    ceilings = {"cpu": peak.cpu_ceilings(threads, mib=mib, repeats=3 if cfg.quick else 5),
                "gpu": None}
    progress("peaks: CPU")
    if gpu_on:
        from . import gpu

        ceilings["gpu"] = gpu.peaks(quick=cfg.quick)
        progress("peaks: GPU")
    return ceilings


def devices(cfg: Config):
    """(run the CPU?, run the GPU?, a note on the GPU). --device cuda on a
    machine without a usable GPU runs nothing; the CLI refuses it first."""
    from . import gpu

    cpu_on = cfg.device in ("cpu", "all")
    if cfg.device == "cpu":
        return cpu_on, False, "not requested (--device cpu)"
    why = gpu.why_unusable()
    if why:
        return cpu_on, False, f"skipped: {why}"
    return cpu_on, True, ""


def _alexnet_on_gpu(cfg: Config, cpu: dict) -> str:
    """One AlexNet training step on the GPU, at the 2012 batch of 128 (32 when
    quick), against the CPU step measured here: the story's ratio, in words."""
    from .gpu_ops import alexnet_batch, alexnet_gpu_seconds

    batch = 32 if cfg.quick else 128
    med = alexnet_gpu_seconds(*alexnet_batch(batch, 224), repeats=3)
    best = min(med.values())
    return (f"{batch / med['gpu']:.0f} images/s at batch {batch} "
            f"({batch / med['im2col']:.0f} with im2col convolutions throughout), "
            f"{cpu['step_seconds'] / cpu['batch'] * batch / best:.0f}x the CPU step measured here")


def run(cfg: Config, show_progress: bool = True) -> dict:
    """Measure everything; return the results dict (the JSON schema)."""
    import pykernels
    from . import alexnet

    started = time.perf_counter()
    load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cpu_on, gpu_on, gpu_note = devices(cfg)
    builders = [(op, CPU_BUILDERS[op]) for op in cfg.ops if op in CPU_BUILDERS] if cpu_on else []
    total = 1 + len(builders) + (1 if gpu_on else 0) + ("alexnet" in cfg.ops and cpu_on) + cpu_on
    bar = _bar(total, show_progress)

    def step(desc):
        bar.set_description(desc)
        bar.update(1)

    bar.set_description("peaks")
    ceilings = measure_ceilings(cfg, gpu_on, lambda d: bar.set_description(d))
    bar.update(1)
    rows = []
    for op, build in builders:
        bar.set_description(op)
        for case in build(cfg):
            rows += measure_case(case, cfg, ceilings)
        step(op)
    if gpu_on:
        bar.set_description("gpu")
        for case in gpu_cases(cfg):
            rows += measure_case(case, cfg, ceilings)
        step("gpu")
    report_2012 = measured = None
    if "alexnet" in cfg.ops and cpu_on:
        bar.set_description("alexnet step")
        batch = 4 if cfg.quick else 32 if cfg.full else 8
        steps = 2 if cfg.quick else 3
        measured = alexnet.measure_step(batch, steps, cfg.threads)
        step("alexnet")
    if cpu_on and (rows or measured):
        bar.set_description("peaks again")
        _best_of(ceilings, measure_ceilings(cfg, False, lambda d: None))
        for row in rows:
            _fraction(row, ceilings, cfg.threads)
        step("peaks again")
    if measured:
        cpu = ceilings["cpu"]
        report_2012 = {"cpu": measured,
                       **alexnet.summarize(measured, cpu["fma_gflops"][cpu["isa"]][cfg.threads])}
        report_2012["gpu"] = (_alexnet_on_gpu(cfg, measured) if gpu_on
                              else f"not measured (GPU {gpu_note})")
    bar.close()
    return {
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["pykernels"] + sys.argv[1:]) if sys.argv else "pykernels bench",
        "config": {"size": cfg.size, "threads": cfg.threads, "device": cfg.device,
                   "ops": list(cfg.ops), "repeats": cfg.repeats},
        "machine": {**pykernels.build_info(), "cpu_model": _cpu_model(),
                    "load_average_at_start": load_at_start},
        "peers": _peer_versions(),
        "gpu_note": gpu_note,
        "ceilings": ceilings,
        "rows": rows,
        "alexnet": report_2012,
        "wall_seconds": time.perf_counter() - started,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def _peer_versions() -> dict:
    out = {"numpy": np.__version__}
    try:
        blas = [d for d in np.show_config(mode="dicts")["Build Dependencies"].values()][0]
        out["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # older NumPy: no dict mode
        pass
    torch = _torch()
    out["torch"] = torch.__version__ if torch is not None else None
    try:
        import cupy

        out["cupy"] = cupy.__version__
    except Exception:
        out["cupy"] = None
    return out


class _NoBar:
    def set_description(self, _):
        pass

    def update(self, _):
        pass

    def close(self):
        pass


def _bar(total, enabled):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="step", leave=False, file=sys.stderr,
                bar_format="{desc:<16} {bar} {n_fmt}/{total_fmt} [{elapsed}]")

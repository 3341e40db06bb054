"""The report's plots (matplotlib, Agg backend, PNG), each drawn only from
figures measured in the run it is given (the 2012 bars are the one exception,
and they are labelled as literature)."""

from __future__ import annotations

import os
from typing import Dict, List

import numpy as np

from .roofline import ridge

CPU_COLOR, GPU_COLOR, PEER_COLOR, LIT_COLOR = "#1f77b4", "#2ca02c", "#ff7f0e", "#7f7f7f"
ISA_STYLE = {"avx512": "-", "avx2": "--", "generic": ":"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _at(per_threads: dict, threads: int) -> float:
    """A per-thread-count ceiling, from the run (int keys) or results.json (str keys)."""
    return per_threads[threads] if threads in per_threads else per_threads[str(threads)]


def _short(row) -> str:
    impl = "" if row["impl"] == "pykernels" else " " + row["impl"].replace("pykernels ", "")
    return f"{row['op']}{impl}"


def roofline(results: dict, path: str) -> str:
    plt = _pyplot()
    ceilings = results["ceilings"]
    cpu = ceilings["cpu"]
    threads = results["config"]["threads"]
    rows = [r for r in results["rows"] if r["gflops"] and r["intensity"]]
    fig, ax = plt.subplots(figsize=(13, 6.5), dpi=110)
    xs = [r["intensity"] for r in rows] or [1.0]
    lo, hi = min(min(xs) / 3, 0.05), max(max(xs) * 3, 500)
    grid = np.logspace(np.log10(lo), np.log10(hi), 200)
    bw = _at(cpu["triad_gbps"], threads)
    ax.text(lo * 1.3, lo * 1.3 * bw * 1.15, f"CPU triad {bw:.1f} GB/s", color=CPU_COLOR,
            fontsize=8, rotation=0)
    for isa, per_t in cpu["fma_gflops"].items():
        peak = _at(per_t, threads)
        ax.plot(grid, np.minimum(peak, grid * bw), color=CPU_COLOR, ls=ISA_STYLE.get(isa, "-"),
                lw=2 if isa == cpu["isa"] else 1)
        ax.text(peak / bw * 1.15, peak * 1.06, f"CPU FMA {isa}, {threads} thr: {peak:.0f} GFLOP/s",
                ha="left", fontsize=8, color=CPU_COLOR)
    gpu = ceilings.get("gpu")
    if gpu:
        gp, gb = gpu["fma_gflops"], gpu["copy_gbps"]
        ax.plot(grid, np.minimum(gp, grid * gb), color=GPU_COLOR, lw=2)
        ax.text(gp / gb * 1.15, gp * 1.06, f"GPU FP32 FMA: {gp:.0f} GFLOP/s", ha="left",
                fontsize=8, color=GPU_COLOR)
        ax.text(lo * 1.3, lo * 1.3 * gb * 1.15, f"GPU copy {gb:.0f} GB/s", fontsize=8,
                color=GPU_COLOR)
    markers = "osD^vP*Xh<>p"
    palette = plt.get_cmap("tab10")
    for i, r in enumerate(r for r in rows if r["role"] == "pykernels"):
        # Marker and colour cycle at different periods: no two points look alike.
        edge = GPU_COLOR if r["device"] == "cuda" else "black"
        ax.scatter(r["intensity"], r["gflops"], marker=markers[i % len(markers)], s=60,
                   color=palette(i % 10), edgecolor=edge, linewidth=1.5 if edge != "black" else 1,
                   zorder=3, label=f"{r['device'].upper()} {_short(r)} ({r['shape']}): "
                                   f"{r['gflops']:.3g}")
    peers = [r for r in rows if r["role"] == "peer"]
    for r in peers:
        ax.scatter(r["intensity"], r["gflops"], marker="o", s=30, facecolor="none",
                   edgecolor=GPU_COLOR if r["device"] == "cuda" else PEER_COLOR, zorder=2)
    if peers:
        ax.scatter([], [], marker="o", s=30, facecolor="none", edgecolor=PEER_COLOR,
                   label="peers (OpenBLAS, PyTorch, ...), same shapes")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    top = max([gpu["fma_gflops"] if gpu else 0]
              + [_at(v, threads) for v in cpu["fma_gflops"].values()])
    ax.set_ylim(min([r["gflops"] for r in rows] + [lo * bw]) / 3, top * 2.5)
    ax.set_xlabel("arithmetic intensity (FLOP per byte of minimal memory traffic)")
    ax.set_ylabel("achieved GFLOP/s")
    where = "CPU and GPU" if gpu else "CPU only (no GPU measured)"
    ax.set_title(f"Roofline, {where}: measured ceilings, {threads} CPU thread(s); "
                 f"ridge at {ridge(_at(cpu['fma_gflops'][cpu['isa']], threads), bw):.1f} FLOP/B")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.9,
              title="pykernels: achieved GFLOP/s", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def gemm_ladder(results: dict, path: str) -> str:
    plt = _pyplot()
    threads = results["config"]["threads"]
    cpu = results["ceilings"]["cpu"]
    ladder = [r for r in results["rows"] if r["op"] == "gemm-ladder" and r["gflops"]]
    gpu_gemm = [r for r in results["rows"] if r["op"] == "gemm" and r["device"] == "cuda"
                and r["gflops"]]
    shapes = list(dict.fromkeys(r["shape"] for r in ladder))
    order = ["pykernels naive", "pykernels blocked", "pykernels packed", "NumPy/OpenBLAS"]
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    width = 0.8 / len(order)
    colors = ["#c6dbef", "#6baed6", CPU_COLOR, PEER_COLOR]
    for j, impl in enumerate(order):
        vals = [next((r["gflops"] for r in ladder if r["shape"] == s and r["impl"] == impl),
                     np.nan) for s in shapes]
        pos = np.arange(len(shapes)) + (j - (len(order) - 1) / 2) * width
        bars = ax.bar(pos, vals, width, color=colors[j], edgecolor="black",
                      label=impl.replace("pykernels ", "pykernels: "))
        for b, v in zip(bars, vals):
            if np.isfinite(v):
                ax.text(b.get_x() + b.get_width() / 2, v * 1.08, f"{v:.1f}", ha="center",
                        fontsize=8)
    labels = [f"CPU {s}" for s in shapes]
    if gpu_gemm:
        base = len(shapes)
        for j, r in enumerate(gpu_gemm):
            ax.bar(base + j, r["gflops"], 0.5, color=GPU_COLOR, edgecolor="black",
                   label=f"GPU {r['impl']}" if j < 4 else None)
            ax.text(base + j, r["gflops"] * 1.08, f"{r['gflops']:.0f}", ha="center", fontsize=8)
            labels.append(f"GPU {r['shape']}\n{r['impl']}")
        g = results["ceilings"]["gpu"]["fma_gflops"]
        ax.axhline(g, color=GPU_COLOR, ls="--")
        ax.text(len(labels) - 0.5, g * 1.1, f"GPU FP32 peak {g:.0f}", ha="right", fontsize=8,
                color=GPU_COLOR)
    peak = _at(cpu["fma_gflops"][cpu["isa"]], threads)
    ax.axhline(peak, color="black", ls="--")
    ax.text(len(labels) - 0.55, peak * 1.1,
            f"CPU FMA peak ({cpu['isa']}, {threads} thr): {peak:.0f} GFLOP/s", fontsize=8,
            ha="right")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("GFLOP/s (log scale)")
    tops = [peak] + ([results["ceilings"]["gpu"]["fma_gflops"]] if gpu_gemm else [])
    lows = [r["gflops"] for r in ladder] or [1]
    ax.set_ylim(min(lows) / 3, max(tops) * 3)
    ax.set_title("SGEMM ladder: naive -> cache-blocked -> packed SIMD micro-kernel"
                 + ("" if gpu_gemm else "  (CPU only: no GPU measured)"), pad=30)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4)
    ax.grid(True, axis="y", which="both", alpha=0.25)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def speedups(results: dict, path: str) -> str:
    """x faster than the NumPy reference and than the peer, per op (CPU)."""
    plt = _pyplot()
    rows = [r for r in results["rows"] if r["role"] == "pykernels" and r["seconds"]
            and (r["vs_ref"] or r["vs_peer"])]
    labels = [f"{_short(r)}\n{r['shape']}" for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 1.6), dpi=110)
    y = np.arange(len(rows))
    ref = [r["vs_ref"] or np.nan for r in rows]
    peer = [r["vs_peer"] or np.nan for r in rows]
    ax.barh(y - 0.2, ref, 0.4, color="#9ecae1", edgecolor="black", label="vs NumPy reference")
    ax.barh(y + 0.2, peer, 0.4, color=PEER_COLOR, edgecolor="black",
            label="vs peer (OpenBLAS / PyTorch CPU / ...)")
    for yy, v in zip(y, ref):
        if np.isfinite(v):
            ax.text(v * 1.05, yy - 0.2, f"{v:.2g}x", va="center", fontsize=7)
    for yy, v, r in zip(y, peer, rows):
        if np.isfinite(v):
            ax.text(v * 1.05, yy + 0.2, f"{v:.2g}x {r['peer']}", va="center", fontsize=7)
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    finite = [v for v in ref + peer if np.isfinite(v)] or [1]
    ax.set_xlim(min(min(finite) / 2, 0.5), max(finite) * 6)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("x faster (other's time / pykernels' time; > 1: pykernels is faster)")
    ax.set_title(f"pykernels against the NumPy reference and its peer "
                 f"({results['config']['threads']} thread(s), interleaved medians)", pad=26)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
    ax.grid(True, axis="x", which="both", alpha=0.25)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def cpu_vs_gpu(results: dict, path: str) -> str | None:
    """Per op, the best measured rate on each device (None without GPU rows)."""
    rows = [r for r in results["rows"] if r["rate"]]
    gpu_ops = {r["op"] for r in rows if r["device"] == "cuda"}
    ops = [op for op in dict.fromkeys(r["op"] for r in rows) if op in gpu_ops]
    if not ops:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(ops), figsize=(3.2 * len(ops) + 1, 4.5), dpi=110,
                             squeeze=False)
    for ax, op in zip(axes[0], ops):
        bars: Dict[str, float] = {}
        metric = next(r["metric"] for r in rows if r["op"] == op)
        for r in rows:
            if r["op"] != op:
                continue
            key = f"{r['device'].upper()}\n{r['impl']}"
            bars[key] = max(bars.get(key, 0), r["rate"])
        names: List[str] = list(bars)
        ax.bar(range(len(names)), [bars[n] for n in names], edgecolor="black",
               color=[GPU_COLOR if n.startswith("CUDA") else CPU_COLOR for n in names])
        for i, n in enumerate(names):
            ax.text(i, bars[n] * 1.1, f"{bars[n]:.3g}", ha="center", fontsize=7)
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, fontsize=6, rotation=30, ha="right")
        ax.set_title(op, fontsize=9)
        ax.set_ylabel(metric)
    fig.suptitle("CPU against GPU, best measured rate per op (shapes differ: see report.md)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def alexnet_2012(results: dict, path: str) -> str | None:
    rep = results.get("alexnet")
    if not rep:
        return None
    plt = _pyplot()
    m, lit = rep["measured"], rep["literature"]
    cpu = rep["cpu"]
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
    labels = [f"this CPU, pykernels\n(measured: batch {cpu['batch']}, {cpu['threads']} thr)",
              "2x GTX 580, 2012\n(literature: Krizhevsky et al.)"]
    days = [m["ninety_epochs_days"], (lit["days_low"] + lit["days_high"]) / 2]
    bars = ax.barh([0, 1], days, color=[CPU_COLOR, LIT_COLOR], edgecolor="black",
                   hatch=["", "//"])
    ax.errorbar([days[1]], [1], xerr=[[days[1] - lit["days_low"]], [lit["days_high"] - days[1]]],
                color="black", capsize=4)
    texts = [f"{days[0]:,.0f} days ({days[0] / 365:.1f} years), {m['images_per_s']:.1f} img/s",
             f"5-6 days, ~{lit['derived_images_per_s'][0]:.0f}-"
             f"{lit['derived_images_per_s'][1]:.0f} img/s (derived)"]
    for b, t, end in zip(bars, texts, (days[0], lit["days_high"])):
        ax.text(end * 1.2, b.get_y() + b.get_height() / 2, t, va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(1, max(days) * 60)
    ax.set_yticks([0, 1])
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time for 90 epochs of ILSVRC-2012 (1.28M images), days, log scale")
    ax.set_title("AlexNet training: measured here (extrapolated) vs 2012 (literature)")
    ax.grid(True, axis="x", which="both", alpha=0.25)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def draw_all(results: dict, out_dir: str) -> Dict[str, str]:
    """{plot name: file name or '' when omitted}."""
    made = {}
    plans = [("roofline", roofline), ("gemm_ladder", gemm_ladder), ("speedups", speedups),
             ("cpu_vs_gpu", cpu_vs_gpu), ("alexnet_2012", alexnet_2012)]
    for name, draw in plans:
        if name == "gemm_ladder" and not any(r["op"] == "gemm-ladder" for r in results["rows"]):
            made[name] = ""
            continue
        if name in ("roofline", "speedups") and not results["rows"]:
            made[name] = ""
            continue
        got = draw(results, os.path.join(out_dir, f"{name}.png"))
        made[name] = os.path.basename(got) if got else ""
    return made

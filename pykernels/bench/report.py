"""Plain-text tables for benchmark rows (lists of dicts)."""

from __future__ import annotations

from typing import Iterable, List


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def format_table(rows: Iterable[dict], title: str = "") -> str:
    rows = list(rows)
    if not rows:
        return f"{title}\n(no rows)" if title else "(no rows)"
    columns: List[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = lambda items: "  ".join(s.rjust(w) for s, w in zip(items, widths))  # noqa: E731
    out = [title] if title else []
    out += [line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells]
    return "\n".join(out)


# ------------------------------------------------------------ the main report

def _time(seconds) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _x(v) -> str:
    return "-" if v is None else f"{v:.2g}x" if v < 10 else f"{v:.0f}x"


def _backend(row) -> str:
    if row["device"] == "cpu":
        base = f"cpu {row['threads']}thr"
    else:
        base = "cuda"
    if row["impl"] == "pykernels":
        return base
    return f"{base} {row['impl'].replace('pykernels ', '')}"


def main_table_rows(results: dict) -> List[dict]:
    """The rows the printed table and report.md show: pykernels' own (and on
    the GPU also the peers, since pykernels has few GPU kernels yet)."""
    out = []
    for r in results["rows"]:
        if r["role"] != "pykernels" and r["device"] != "cuda":
            continue
        rate = "-"
        if r["rate"] is not None:
            rate = f"{r['rate']:.3g} {r['metric']}"
        if r["role"] == "peer":
            peer = "(this row is a peer)"
        elif r["vs_peer"] is not None:
            peer = f"{_x(r['vs_peer'])} {r['peer']}"
        elif r["skipped_peers"]:
            peer = "; ".join(f"{p}: {why}" for p, why in r["skipped_peers"].items())
        else:
            peer = "-"
        out.append({
            "op": r["op"], "shape": r["shape"], "backend": _backend(r),
            "time": _time(r["seconds"]), "rate": rate,
            "of peak": "-" if r["of_peak"] is None else f"{100 * r['of_peak']:.0f}%",
            "vs NumPy ref": _x(r["vs_ref"]), "vs peer": peer,
        })
    return out


def _md_table(rows: List[dict]) -> str:
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def ceilings_rows(results: dict) -> List[dict]:
    c = results["ceilings"]["cpu"]
    rows = []
    for isa, per_t in c["fma_gflops"].items():
        for t, v in per_t.items():
            rows.append({"ceiling": f"CPU FP32 FMA {isa}" + (" (in use)" if isa == c["isa"]
                                                             else ""),
                         "threads": t, "value": f"{v:.1f} GFLOP/s"})
    for t, v in c["triad_gbps"].items():
        rows.append({"ceiling": f"CPU triad a=b+s*c, 3x{c['triad_mib']} MiB", "threads": t,
                     "value": f"{v:.1f} GB/s"})
    g = results["ceilings"].get("gpu")
    if g:
        rows.append({"ceiling": f"GPU FP32 FMA ({g['name']})", "threads": "-",
                     "value": f"{g['fma_gflops']:.0f} GFLOP/s"})
        rows.append({"ceiling": f"GPU d2d copy {g['copy_mib']} MiB", "threads": "-",
                     "value": f"{g['copy_gbps']:.0f} GB/s"})
    return rows


def _alexnet_md(results: dict) -> str:
    rep = results.get("alexnet")
    if not rep:
        return "Not run (`--ops` left it out, or no CPU run).\n"
    cpu, m, lit = rep["cpu"], rep["measured"], rep["literature"]
    f = cpu["flops"]
    lines = [
        f"**Measured here** (pykernels.models.AlexNet, full width, 3x224x224, 1000 classes; "
        f"forward, backward, SGD with momentum 0.9, Nesterov, weight decay; "
        f"**batch {cpu['batch']}**, median of {cpu['steps']} steps after one warm-up step, "
        f"{cpu['threads']} thread(s)). The 2012 run used batch 128; a smaller batch is "
        f"measured here to fit the time budget and scaled per image (images/s), which "
        f"compares per image (on a CPU a larger batch runs at about the same or a higher "
        f"rate per image, so batch {cpu['batch']} does not overstate this machine).",
        "",
        "| | measured here (CPU) | 2012: 2x GTX 580 (literature) |",
        "|---|---|---|",
        f"| step time | {cpu['step_seconds']:.3g} s at batch {cpu['batch']} | - |",
        f"| images/s | {m['images_per_s']:.3g} | "
        f"{lit['derived_images_per_s'][0]:.0f}-{lit['derived_images_per_s'][1]:.0f} (derived) |",
        f"| one epoch (1.28M images) | {m['epoch_hours']:.3g} h | "
        f"{24 * lit['days_low'] / 90:.2g}-{24 * lit['days_high'] / 90:.2g} h (derived) |",
        f"| 90 epochs | {m['ninety_epochs_days']:,.0f} days "
        f"({m['ninety_epochs_days'] / 365:.2g} years) | 5-6 days (literature) |",
        f"| achieved GFLOP/s | {m['achieved_gflops']:.3g} | "
        f"{lit['derived_gflops'][0]:.0f}-{lit['derived_gflops'][1]:.0f} (derived) |",
        f"| machine peak | {m['cpu_peak_gflops']:.0f} GFLOP/s (measured FMA peak) | "
        f"{lit['peak_gflops']:.0f} GFLOP/s = 2 x {lit['gpu_fp32_tflops']} TFLOP/s; "
        f"2 x {lit['gpu_bandwidth_gbps']:.0f} GB/s (specification) |",
        f"| fraction of peak | {100 * m['of_peak']:.1f}% | "
        f"{100 * lit['derived_of_peak'][0]:.0f}-{100 * lit['derived_of_peak'][1]:.0f}% "
        f"(derived) |",
        f"| GPU on this machine | {rep['gpu']} | |",
        "",
        f"How the numbers were made. Measured: the step time (and so images/s) and the "
        f"machine peak. Arithmetic on them: epoch = 1,281,167 / images/s; 90 epochs; "
        f"achieved GFLOP/s = FLOPs per step / step time; fraction = achieved / peak. "
        f"Literature: 5-6 days for ~90 epochs on two GTX 580s (Krizhevsky, Sutskever, Hinton, "
        f"NIPS 2012) and the GTX 580's 1.58 TFLOP/s FP32 and 192 GB/s (NVIDIA). Derived from "
        f"the literature: images/s = 1,281,167 x 90 / (5-6 days); GFLOP/s = that x the FLOPs "
        f"per image counted below (the 2012 network had 96-256-384-384-256 channels split over "
        f"two GPUs, close to but not the torchvision layout counted here).",
        "",
        "FLOPs of one training step, counted from the layer shapes (per image, forward):",
        "",
        "| layer | output | forward MFLOP |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {'x'.join(map(str, s))} | {fl / 1e6:.2f} |" for n, s, fl in cpu["layers"]]
    lines += [
        "",
        f"- forward: {f['forward_per_image'] / 1e9:.3f} GFLOP per image (a conv is "
        f"2*O*C*kh*kw*OH*OW + the bias, a linear layer 2*in*out + the bias, pooling counts "
        f"its comparisons)",
        f"- backward: 2 x forward = {f['backward_per_image'] / 1e9:.3f} GFLOP per image "
        f"(input gradient and weight gradient, each a GEMM the size of the forward's)",
        f"- SGD: ~6 FLOPs x {f['params']:,} parameters = {f['sgd_per_step'] / 1e9:.3f} GFLOP "
        f"per step",
        f"- one step at batch {f['batch']}: 3 x {f['forward_per_image'] / 1e9:.3f} x "
        f"{f['batch']} + {f['sgd_per_step'] / 1e9:.3f} = {f['per_step'] / 1e9:.2f} GFLOP",
    ]
    return "\n".join(lines) + "\n"


def _load_line(mach: dict) -> str:
    load = mach.get("load_average_at_start")
    if load is None:
        return "- load average at start: unknown"
    busy = load > 0.5 * mach["cpu_count"]
    return (f"- load average at start: {load:.1f} on {mach['cpu_count']} processors"
            + ("; other processes were running, so absolute rates (and the ceilings) are "
               "below this machine's best -- the side-by-side ratios are the numbers to read"
               if busy else ""))


def markdown(results: dict, plots: dict) -> str:
    mach = results["machine"]
    cfg = results["config"]
    peers = results["peers"]
    lines = [
        "# pykernels benchmark report",
        "",
        f"Every number in this report was measured by `{results['command']}` on "
        f"{results['created']}, except the ones marked **literature** (or derived from it) in "
        f"the AlexNet section. Wall time of the run: {results['wall_seconds']:.0f} s.",
        "",
        f"- machine: {mach.get('cpu_model')}, {mach['cpu_count']} processors, kernels use "
        f"ISA {mach['cpu_isa']} (best here: {mach['cpu_isa_detected']}); pykernels "
        f"{mach['version']}, Python {mach['python']}, compiler {mach['compiler']}",
        _load_line(mach),
        f"- run: {cfg['size']} sizes, {cfg['threads']} thread(s) for every contender "
        f"(pykernels' OpenMP, NumPy's BLAS, PyTorch), medians of {cfg['repeats']} interleaved "
        f"repeats; GPU: {results['gpu_note'] or 'measured with CUDA events after warm-up'}",
        f"- peers: NumPy {peers['numpy']} ({peers.get('numpy_blas', 'BLAS unknown')}); "
        f"PyTorch {peers['torch'] or 'not installed (its columns say skipped)'}; "
        f"CuPy {peers['cupy'] or 'not installed'}",
        "",
        "## Ceilings (measured)",
        "",
        _md_table(ceilings_rows(results)),
        "",
        "## Kernels",
        "",
        "Time is the median per call. Rates count each op's FLOPs (GFLOP/s) or minimal "
        "memory traffic (GB/s); 'of peak' divides by the FMA ceiling of the ISA in use or by "
        "the triad bandwidth at the same thread count. 'x' columns are the other's time over "
        "pykernels' time (> 1: pykernels is faster). The NumPy reference of the convolutions "
        "is timed at batch 1 and scaled per image.",
        "",
        _md_table(main_table_rows(results)),
        "",
    ]
    skipped = sorted({f"{p}: {w}" for r in results["rows"] for p, w in r["skipped_peers"].items()})
    if skipped:
        lines += ["Peers not measured: " + "; ".join(skipped) + ".", ""]
    lines += ["## Plots", ""]
    captions = {
        "roofline": "Roofline: each kernel at (FLOP per byte, achieved GFLOP/s) under the "
                    "measured ceilings; filled markers are pykernels, hollow ones its peers.",
        "gemm_ladder": "The GEMM ladder: naive loops, cache blocking, packing + SIMD "
                       "micro-kernel, and OpenBLAS, against the FMA peak.",
        "speedups": "How many times faster than the NumPy reference and the peer.",
        "cpu_vs_gpu": "CPU against GPU per op.",
        "alexnet_2012": "AlexNet's 90 epochs: extrapolated from the step measured here, "
                        "against 2012's 5-6 days (literature).",
    }
    for name, caption in captions.items():
        fname = plots.get(name, "")
        if fname:
            lines += [f"![{name}]({fname})", "", caption, ""]
        elif name == "cpu_vs_gpu":
            lines += [f"- CPU against GPU: omitted, no GPU was measured "
                      f"({results['gpu_note'] or 'no GPU rows'}).", ""]
        else:
            lines += [f"- {name}: omitted (its ops were not run).", ""]
    lines += ["## AlexNet and 2012", "", _alexnet_md(results),
              "## Raw data", "",
              "`results.json` holds every row (seconds, FLOPs, bytes, peers, ceilings) and "
              "the machine facts from `pykernels.build_info()`.", ""]
    return "\n".join(lines)


def write_report(results: dict, out_dir: str) -> dict:
    """report.md, results.json and the PNGs into out_dir; returns their names."""
    import json
    import os

    from . import plots as plots_mod

    os.makedirs(out_dir, exist_ok=True)
    made = plots_mod.draw_all(results, out_dir)
    results["plots"] = made
    with open(os.path.join(out_dir, "results.json"), "w") as fh:
        json.dump(results, fh, indent=1, default=_json_default)
    with open(os.path.join(out_dir, "report.md"), "w") as fh:
        fh.write(markdown(results, made))
    return made


def _json_default(v):
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    return str(v)

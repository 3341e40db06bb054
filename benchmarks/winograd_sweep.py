"""Where Winograd beats im2col: forward and forward+backward times of
conv2d(..., algo="im2col") and algo="winograd" over channel counts, plane
sizes and batch sizes (AlexNet, ResNet-20, ResNet-18 and LeNet layers and
their edges), side by side, interleaved, medians; and which one algo="auto"
takes, so a wrong pick shows as `auto picks faster: False`. The "alexnet"
rows use the 2012 paper's channel counts (96 -> 256, 256 -> 384, 384 -> 384,
ungrouped); the conv suites use torchvision's.

On the GPU (CUDA events; the measurements behind winograd_preferred in
cuda/conv_winograd.cu, benchmarks/results/h200-2026-11-30):

    python benchmarks/winograd_sweep.py [--repeats 5]

On the CPU (wall clock, pykernels' and NumPy's threads pinned; smaller
batches, as a CPU trains; the rule is conv2d_winograd_preferred in
csrc/conv_winograd.cpp):

    python benchmarks/winograd_sweep.py --device cpu --threads 1 2
"""

from __future__ import annotations

import argparse
import sys

# (label, C, O, kernel, padding, plane, batch); stride 1, groups 1.
SHAPES = (
    ("alexnet conv2", 96, 256, 5, 2, 27, 128),
    ("alexnet conv2", 96, 256, 5, 2, 27, 32),
    ("alexnet conv2", 96, 256, 5, 2, 27, 8),
    ("alexnet conv2", 96, 256, 5, 2, 27, 1),
    ("5x5 64ch", 64, 64, 5, 2, 27, 128),
    ("5x5 32ch", 32, 32, 5, 2, 27, 128),
    ("5x5 16->32", 16, 32, 5, 2, 27, 128),
    ("lenet conv2", 6, 16, 5, 0, 14, 128),
    ("lenet conv1", 1, 6, 5, 2, 28, 128),
    ("alexnet conv3", 256, 384, 3, 1, 13, 128),
    ("alexnet conv4", 384, 384, 3, 1, 13, 128),
    ("alexnet conv4", 384, 384, 3, 1, 13, 32),
    ("alexnet conv4", 384, 384, 3, 1, 13, 8),
    ("alexnet conv4", 384, 384, 3, 1, 13, 1),
    ("3x3 128ch @13", 128, 128, 3, 1, 13, 128),
    ("3x3 64ch @13", 64, 64, 3, 1, 13, 128),
    ("resnet20 16ch", 16, 16, 3, 1, 32, 128),
    ("resnet20 32ch", 32, 32, 3, 1, 16, 128),
    ("resnet20 64ch", 64, 64, 3, 1, 8, 128),
    ("resnet18 64ch", 64, 64, 3, 1, 56, 32),
    ("resnet18 128ch", 128, 128, 3, 1, 28, 32),
    ("resnet18 256ch", 256, 256, 3, 1, 14, 32),
    ("resnet18 512ch", 512, 512, 3, 1, 7, 32),
    ("resnet18 64ch", 64, 64, 3, 1, 56, 4),
    ("resnet18 512ch", 512, 512, 3, 1, 7, 4),
)


# The CPU's shapes: the same layers at the batches a CPU trains with.
CPU_SHAPES = (
    ("alexnet conv2", 96, 256, 5, 2, 27, 16),
    ("alexnet conv2", 96, 256, 5, 2, 27, 2),
    ("5x5 32ch", 32, 32, 5, 2, 27, 16),
    ("5x5 16->32", 16, 32, 5, 2, 27, 16),
    ("lenet conv2", 6, 16, 5, 0, 14, 64),
    ("alexnet conv3", 256, 384, 3, 1, 13, 16),
    ("alexnet conv4", 384, 384, 3, 1, 13, 16),
    ("alexnet conv4", 384, 384, 3, 1, 13, 4),
    ("3x3 128ch @13", 128, 128, 3, 1, 13, 16),
    ("3x3 128ch @7", 128, 128, 3, 1, 7, 16),
    ("resnet20 16ch", 16, 16, 3, 1, 32, 64),
    ("resnet20 64ch", 64, 64, 3, 1, 8, 64),
    ("resnet18 64ch", 64, 64, 3, 1, 56, 4),
    ("resnet18 256ch", 256, 256, 3, 1, 14, 4),
)


def _conv_runner(F, x, w, dy, padding, algo):
    def run():
        F.conv2d(x, w, None, padding=padding, algo=algo)
        if dy is not None:
            F.conv2d_backward(dy, x, w, padding=padding, algo=algo)
    return run


def _gpu_timer(repeats):
    """(random source, timer of {algo: fn}) for CuPy arrays, CUDA events."""
    import cupy

    from pykernels.bench.gpu import event_medians

    def time_algos(runners):
        return event_medians({a: (fn, "cupy") for a, fn in runners.items()}, repeats=repeats)
    return cupy.random, time_algos


def _cpu_timer(repeats, threads):
    """(random source, timer of {algo: fn}) for NumPy arrays, threads pinned."""
    import numpy as np

    from pykernels.bench.timing import interleaved_medians, pinned_threads

    def time_algos(runners):
        with pinned_threads(threads):
            return interleaved_medians(runners, repeats=repeats)
    return np.random.default_rng(0), time_algos


def run(repeats: int = 5, shapes=None, device: str = "cuda", threads: int = 1):
    """Rows for each shape and pass; on the CPU with `threads` threads."""
    import numpy as np

    import pykernels.functional as F

    rng, time_algos = _gpu_timer(repeats) if device == "cuda" else _cpu_timer(repeats, threads)
    f32 = np.float32  # CuPy's float32 is NumPy's
    rows = []
    for label, c, o, k, padding, hw, batch in shapes or (SHAPES if device == "cuda"
                                                          else CPU_SHAPES):
        x = rng.standard_normal((batch, c, hw, hw), dtype=f32)
        w = rng.standard_normal((o, c, k, k), dtype=f32) * 0.1
        dy = rng.standard_normal(F.conv2d(x, w, None, padding=padding).shape, dtype=f32)
        auto = F.conv2d_algorithm(x.shape, w.shape, padding=padding, device=device)
        for grad in (None, dy):
            med = time_algos({algo: _conv_runner(F, x, w, grad, padding, algo)
                              for algo in ("im2col", "winograd")})
            faster = min(med, key=med.get)
            row = {"layer": label, "shape": f"{c}->{o} {k}x{k} @{hw} N{batch}",
                   "pass": "fwd" if grad is None else "fwd+bwd"}
            if device == "cpu":
                row["threads"] = threads
            row.update({"im2col ms": med["im2col"] * 1e3, "winograd ms": med["winograd"] * 1e3,
                        "winograd speed-up": med["im2col"] / med["winograd"],
                        "auto takes": auto, "auto picks faster": auto == faster})
            rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--threads", type=int, nargs="+", default=[1],
                        help="CPU thread counts, each a full pass over the shapes")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    from pykernels.bench.report import format_table

    counts = args.threads if args.device == "cpu" else [1]
    rows = [row for n in counts for row in run(args.repeats, device=args.device, threads=n)]
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print(format_table(rows, f"winograd vs im2col on the {'GPU' if args.device == 'cuda' else 'CPU'}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

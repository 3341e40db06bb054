"""Winograd's n*n products at 2 threads: whole products per thread
(`_cpu.conv_winograd_points_mode(1)`) against each product split over the
threads (mode 2, the earlier code), with im2col beside them; interleaved
medians in one process. Run from the repository root:

    python benchmarks/results/cpu-2026-11-30-winograd-avx2/points.py [threads]
"""
import sys

import numpy as np

import pykernels.functional as F
from pykernels import _cpu
from pykernels.bench.report import format_table
from pykernels.bench.timing import interleaved_medians, pinned_threads, with_setting

SHAPES = (("alexnet conv2", 96, 256, 5, 2, 27, 16), ("tv conv2", 64, 192, 5, 2, 27, 16),
          ("5x5 32ch", 32, 32, 5, 2, 27, 16), ("alexnet conv3", 256, 384, 3, 1, 13, 16),
          ("alexnet conv4", 384, 384, 3, 1, 13, 16), ("tv conv3", 192, 384, 3, 1, 13, 16),
          ("tv conv5", 256, 256, 3, 1, 13, 16), ("3x3 128ch @13", 128, 128, 3, 1, 13, 16),
          ("3x3 128ch @28", 128, 128, 3, 1, 28, 16))


def main(threads=2):
    rng = np.random.default_rng(0)
    rows = []
    for label, c, o, k, p, hw, n in SHAPES:
        x = rng.standard_normal((n, c, hw, hw), dtype=np.float32)
        w = rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.1
        dy = rng.standard_normal(F.conv2d(x, w, padding=p).shape, dtype=np.float32)
        for grad in (None, dy):
            def run(algo):
                def go():
                    F.conv2d(x, w, padding=p, algo=algo)
                    if grad is not None:
                        F.conv2d_backward(grad, x, w, padding=p, algo=algo)
                return go
            cases = {"im2col": run("im2col"),
                     "whole": with_setting(_cpu.conv_winograd_points_mode, 1, run("winograd")),
                     "split": with_setting(_cpu.conv_winograd_points_mode, 2, run("winograd"))}
            with pinned_threads(threads):
                med = interleaved_medians(cases, repeats=7)
            rows.append({"layer": label, "shape": f"{c}->{o} {k}x{k} @{hw} N{n}",
                         "pass": "fwd" if grad is None else "fwd+bwd", "threads": threads,
                         "whole vs split": med["split"] / med["whole"],
                         "whole vs im2col": med["im2col"] / med["whole"],
                         "split vs im2col": med["im2col"] / med["split"]})
    print(format_table(rows, f"Winograd products: whole per thread vs split, {threads} threads"))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)

"""Winograd's chunk size on the CPU: the cap (2^23 floats) bounding a
chunk's buffers alone (the change) against the cap bounding the chunk plus
the transformed weights U and dU (before it), emulated by lowering the cap
hook by U and dU's floats; im2col beside them. Interleaved medians in one
process; run from the repository root:

    python benchmarks/results/cpu-2026-11-30-winograd-avx2/chunks.py
"""
import numpy as np

import pykernels.functional as F
from pykernels import _cpu
from pykernels.bench.report import format_table
from pykernels.bench.timing import interleaved_medians, pinned_threads, with_setting

CAP = 2**23
SHAPES = (("alexnet conv3", 256, 384), ("alexnet conv4", 384, 384), ("tv conv3", 192, 384),
          ("tv conv4", 384, 256), ("tv conv5", 256, 256))


def main():
    rng = np.random.default_rng(0)
    rows = []
    for threads in (1, 2):
        for label, c, o in SHAPES:
            x = rng.standard_normal((16, c, 13, 13), dtype=np.float32)
            w = rng.standard_normal((o, c, 3, 3), dtype=np.float32) * 0.1
            dy = rng.standard_normal((16, o, 13, 13), dtype=np.float32)
            weights = 2 * 36 * c * o  # U and dU
            per_image = 36 * (c + o) * 16
            for grad in (None, dy):
                def run(algo):
                    def go():
                        F.conv2d(x, w, padding=1, algo=algo)
                        if grad is not None:
                            F.conv2d_backward(grad, x, w, padding=1, algo=algo)
                    return go
                before_cap = max(1, CAP - weights)
                cases = {"im2col": run("im2col"), "chunk capped": run("winograd"),
                         "chunk + U capped": with_setting(_cpu.conv_winograd_workspace_cap,
                                                          before_cap, run("winograd"))}
                with pinned_threads(threads):
                    med = interleaved_medians(cases, repeats=7)
                rows.append({"layer": label, "shape": f"{c}->{o} 3x3 @13 N16",
                             "pass": "fwd" if grad is None else "fwd+bwd", "threads": threads,
                             "images a chunk, before": max(1, min(16, before_cap // per_image)),
                             "images a chunk, after": max(1, min(16, CAP // per_image)),
                             "after vs before": med["chunk + U capped"] / med["chunk capped"],
                             "winograd vs im2col, before": med["im2col"] / med["chunk + U capped"],
                             "winograd vs im2col, after": med["im2col"] / med["chunk capped"]})
    print(format_table(rows, "Winograd chunks on the CPU: cap on the chunk vs on chunk + weights"))


if __name__ == "__main__":
    main()

"""How the GPU convolution's workspace cap moves its speed: AlexNet's five
convolutions at batch 128, forward and forward+backward, with the cap at
2**25 floats (128 MiB, the default until this sweep: conv1 and conv2 then run
in chunks of 25 images), 2**27 and 2**28 (1 GiB, one chunk for every layer,
the default since), timed with CUDA events, interleaved, medians. The
experiment that chose the default (benchmarks/results/h200-2026-11-29):

    python benchmarks/conv_workspace_sweep.py [--repeats 5] [--batch 128]
"""

from __future__ import annotations

import argparse
import sys

CAPS = (2**25, 2**27, 2**28)


def run(batch: int, repeats: int, caps=CAPS, layers=None):
    import cupy

    import pykernels.functional as F
    from pykernels._functional import conv as conv_module
    from pykernels.bench.conv import ALEXNET
    from pykernels.bench.gpu import event_medians

    def set_cap_and_run(cap, x, w, dy, stride, padding):
        conv_module._gpu_workspace_cap = cap
        F.conv2d(x, w, None, stride=stride, padding=padding)
        if dy is not None:
            F.conv2d_backward(dy, x, w, stride=stride, padding=padding)

    rows = []
    try:
        for name, c, o, k, stride, padding, hw in layers or ALEXNET:
            x = cupy.random.standard_normal((batch, c, hw, hw), dtype=cupy.float32)
            w = cupy.random.standard_normal((o, c, k, k), dtype=cupy.float32) * 0.01
            ones = cupy.ones_like(F.conv2d(x, w, None, stride=stride, padding=padding))
            for dy in (None, ones):
                cases = {cap: (lambda cap=cap: set_cap_and_run(cap, x, w, dy, stride, padding),
                               "cupy") for cap in caps}
                med = event_medians(cases, repeats=repeats)
                row = {"layer": name, "pass": "fwd" if dy is None else "fwd+bwd"}
                for cap in caps:
                    row[f"ms, cap 2^{cap.bit_length() - 1}"] = med[cap] * 1e3
                    row[f"speed-up, 2^{cap.bit_length() - 1}"] = med[caps[0]] / med[cap]
                rows.append(row)
    finally:
        conv_module._gpu_workspace_cap = None
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args(argv)
    from pykernels.bench.report import format_table

    print(format_table(run(args.batch, args.repeats), "conv workspace sweep"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Runs each GPU case once between cudaProfilerStart and Stop, after a
warm-up outside that range, for Nsight Compute:

    ncu --profile-from-start off --clock-control none \
        --section SpeedOfLight --section Occupancy --section WarpStateStats \
        python benchmarks/profile_kernels.py

so one call of benchmarks/gpu_check.sh brings back the counters (throughput
against the chip's limits, occupancy, where warps stall) of the kernels the
benchmarks time: the SGEMM rungs at n = 4096, a split-K LSTM step, AlexNet's
conv1 forward and backward, conv2 and conv3 forward at batch 128 (conv2 also
by Winograd, forward and backward), max and
average pooling, and batch norm forward and backward.
"""

from __future__ import annotations

import sys


def cases(cupy, F, n=4096, lstm=(64, 512), batch=32, image=224, act=(128, 64, 56, 56),
          conv_batch=128):
    """name -> callable; the sizes are parameters so the tests can run them small."""
    rnd = lambda *shape: cupy.random.standard_normal(shape, dtype=cupy.float32)  # noqa: E731
    a, b = rnd(n, n), rnd(n, n)
    rows, hidden = lstm
    h, w_hh, gates = rnd(rows, hidden), rnd(4 * hidden, hidden), rnd(rows, 4 * hidden)
    x1, w1 = rnd(batch, 3, image, image), rnd(64, 3, 11, 11)
    y1 = F.conv2d(x1, w1, None, stride=4, padding=2)
    side2, side3 = (image - 7) // 8, (image - 7) // 16  # 27 and 13 at 224: AlexNet's conv2, conv3
    x2, w2 = rnd(conv_batch, 64, side2, side2), rnd(192, 64, 5, 5)
    x3, w3 = rnd(conv_batch, 192, side3, side3), rnd(384, 192, 3, 3)
    y2 = F.conv2d(x2, w2, None, stride=1, padding=2)
    x = rnd(*act)
    ones, zeros = cupy.ones(act[1], cupy.float32), cupy.zeros(act[1], cupy.float32)
    return {
        f"sgemm vectorized {n}": lambda: F.gemm(a, b, algo="vectorized"),
        f"sgemm warptile {n}": lambda: F.gemm(a, b, algo="warptile"),
        f"cuBLAS {n}": lambda: cupy.matmul(a, b),
        f"LSTM step {rows}x{4 * hidden}x{hidden} (auto: split-K on a big GPU)":
            lambda: F.gemm(h, w_hh, gates, beta=1.0, trans_b=True),
        f"conv1 fwd batch {batch}": lambda: F.conv2d(x1, w1, None, stride=4, padding=2),
        f"conv1 bwd batch {batch}": lambda: F.conv2d_backward(y1, x1, w1, stride=4, padding=2),
        f"conv2 fwd batch {conv_batch}": lambda: F.conv2d(x2, w2, None, stride=1, padding=2),
        f"conv2 winograd fwd batch {conv_batch}":
            lambda: F.conv2d(x2, w2, None, stride=1, padding=2, algo="winograd"),
        f"conv2 winograd bwd batch {conv_batch}":
            lambda: F.conv2d_backward(y2, x2, w2, stride=1, padding=2, algo="winograd"),
        f"conv3 fwd batch {conv_batch}": lambda: F.conv2d(x3, w3, None, stride=1, padding=1),
        "max_pool2d 3x3/2": lambda: F.max_pool2d(x, 3, 2, 1),
        "avg_pool2d 2x2/2": lambda: F.avg_pool2d(x, 2, 2),
        "batch_norm train fwd": lambda: F.batch_norm(x, zeros.copy(), ones.copy(), ones, zeros,
                                                     True),
        "batch_norm bwd": lambda: F.batch_norm_backward(x, x, ones, zeros, ones),
    }


TOY_SIZES = dict(n=40, lstm=(3, 20), batch=1, image=23, act=(2, 3, 9, 9), conv_batch=1)


def main(argv=None) -> int:
    """--toy: the same cases at sizes the tests can run on the CUDA emulator."""
    import os

    os.environ.setdefault("CUPY_TF32", "0")
    import cupy

    import pykernels.functional as F

    toy = "--toy" in (sys.argv[1:] if argv is None else argv)
    todo = cases(cupy, F, **(TOY_SIZES if toy else {}))
    for fn in todo.values():
        fn()  # warm-up: module load, cuBLAS handle, pool growth
    cupy.cuda.Device().synchronize()
    runtime = cupy.cuda.runtime
    runtime.profilerStart()  # cudaProfilerStart: ncu --profile-from-start off begins here
    for name, fn in todo.items():
        print(f"== {name}", flush=True)
        fn()
        cupy.cuda.Device().synchronize()
    runtime.profilerStop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

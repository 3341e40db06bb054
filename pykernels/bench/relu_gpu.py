"""ReLU on the GPU: pykernels' kernel against cupy.maximum and a device copy,
timed with CUDA events on one stream, interleaved, medians of repeats."""

from __future__ import annotations

import statistics

from .. import functional as F


def _event_time(cupy, fn, calls: int) -> float:
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(calls):
        fn()
    stop.record()
    stop.synchronize()
    return cupy.cuda.get_elapsed_time(start, stop) / 1e3 / calls


def run(mib: int = 256, repeats: int = 9, calls: int = 20, **_):
    import cupy

    n = mib * 2**20 // 4
    x = cupy.random.standard_normal(n, dtype=cupy.float32)
    y_ours, y_max, y_copy = (cupy.empty_like(x) for _ in range(3))
    cases = {
        "pykernels": lambda: F.relu(x, out=y_ours),
        "cupy.maximum": lambda: cupy.maximum(x, 0, out=y_max),
        "copy": lambda: y_copy.__setitem__(Ellipsis, x),
    }
    for fn in cases.values():
        fn()
    samples = {k: [] for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            samples[name].append(_event_time(cupy, fn, calls))
    gbps = {k: 8 * n / statistics.median(v) / 1e9 for k, v in samples.items()}
    ok = bool(cupy.array_equal(y_ours, cupy.where(x < 0, 0, x)))
    return [{
        "op": "relu fwd (GPU)", "MiB": mib, "pykernels GB/s": gbps["pykernels"],
        "cupy.maximum GB/s": gbps["cupy.maximum"], "copy GB/s": gbps["copy"],
        "vs maximum": gbps["pykernels"] / gbps["cupy.maximum"],
        "vs copy": gbps["pykernels"] / gbps["copy"], "matches": ok,
    }]

"""ReLU on the GPU: pykernels' kernel against cupy.maximum and a device copy,
timed with CUDA events (bench/gpu.py), interleaved, medians of repeats."""

from __future__ import annotations

from .. import functional as F
from .gpu import event_medians


def run(mib: int = 256, repeats: int = 9, **_):
    import cupy

    n = mib * 2**20 // 4
    x = cupy.random.standard_normal(n, dtype=cupy.float32)
    y_ours, y_max, y_copy = (cupy.empty_like(x) for _ in range(3))
    med = event_medians({
        "pykernels": (lambda: F.relu(x, out=y_ours), "cupy"),
        "cupy.maximum": (lambda: cupy.maximum(x, 0, out=y_max), "cupy"),
        "copy": (lambda: y_copy.__setitem__(Ellipsis, x), "cupy"),
    }, repeats=repeats)
    gbps = {k: 8 * n / seconds / 1e9 for k, seconds in med.items()}
    ok = bool(cupy.array_equal(y_ours, cupy.where(x < 0, 0, x)))
    return [{
        "op": "relu fwd (GPU)", "MiB": mib, "pykernels GB/s": gbps["pykernels"],
        "cupy.maximum GB/s": gbps["cupy.maximum"], "copy GB/s": gbps["copy"],
        "vs maximum": gbps["pykernels"] / gbps["cupy.maximum"],
        "vs copy": gbps["pykernels"] / gbps["copy"], "matches": ok,
    }]

"""ReLU bandwidth: pykernels against np.maximum(x, 0) and a plain np.copyto,
all writing into preallocated outputs so that only the kernels are timed.
Traffic counted as one read and one write of the array (8 bytes per element).
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .timing import interleaved_medians, pinned_threads


def run(threads=(1, 2), mib: int = 64, repeats: int = 9, **_):
    n = mib * 2**20 // 4
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    y_ours, y_max, y_copy = (np.empty_like(x) for _ in range(3))
    bytes_moved = 8 * n
    rows = []
    for t in threads:
        with pinned_threads(t):
            med = interleaved_medians(
                {
                    "pykernels": lambda: F.relu(x, out=y_ours),
                    "np.maximum": lambda: np.maximum(x, 0, out=y_max),
                    "np.copyto": lambda: np.copyto(y_copy, x),
                },
                repeats=repeats,
            )
        gbps = {k: bytes_moved / v / 1e9 for k, v in med.items()}
        rows.append({
            "op": "relu fwd", "MiB": mib, "threads": t,
            "pykernels GB/s": gbps["pykernels"], "np.maximum GB/s": gbps["np.maximum"],
            "copy GB/s": gbps["np.copyto"],
            "vs maximum": gbps["pykernels"] / gbps["np.maximum"],
            "vs copy": gbps["pykernels"] / gbps["np.copyto"],
        })
    return rows

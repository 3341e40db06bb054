"""Side-by-side timing: the cases of one comparison run interleaved in one
process, each sample long enough to dwarf timer resolution, and the median of
the repeats is reported. Ratios of such medians survive a noisy shared machine
far better than lone absolute times.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from typing import Callable, Dict


def _calls_per_sample(fn: Callable[[], object], min_sample_s: float) -> int:
    fn()  # warm caches, page in outputs, spin up thread pools
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_sample_s or calls >= 1 << 20:
            return calls
        calls *= 2 if elapsed <= 0 else max(2, min(16, int(min_sample_s / elapsed) + 1))


# Idle worker threads keep spinning for a while after a call (OpenBLAS for
# about 2^28 cycles, ~0.1 s; OpenMP runtimes briefly), holding a core that the
# next contender needs. With more than one thread, each sample first waits
# this long so every contender starts on idle cores.
SETTLE_S = 0.15


def _settle_seconds() -> float:
    import pykernels

    return SETTLE_S if pykernels.get_num_threads() > 1 else 0.0


def interleaved_medians(
    cases: Dict[str, Callable[[], object]], repeats: int = 9, min_sample_s: float = 0.02
) -> Dict[str, float]:
    """Median seconds per call of each case, sampled round-robin."""
    settle = _settle_seconds()
    calls = {name: _calls_per_sample(fn, min_sample_s) for name, fn in cases.items()}
    samples: Dict[str, list] = {name: [] for name in cases}
    names = list(cases)
    for r in range(repeats):
        # Rotate the order so no case always runs right after the same neighbour.
        for name in names[r % len(names):] + names[: r % len(names)]:
            fn, n = cases[name], calls[name]
            if settle:
                time.sleep(settle)
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(s) for name, s in samples.items()}


def with_setting(setter: Callable[[object], object], value, fn: Callable[[], object]):
    """fn as a callable run with a pykernels switch (a hook that sets a value
    and returns the previous one, such as `_cpu.conv_shifted_rows`) at
    `value`, restored afterwards: a lower rung of a ladder, timed beside the
    default."""
    def run():
        previous = setter(value)
        try:
            return fn()
        finally:
            setter(previous)

    return run


@contextlib.contextmanager
def _torch_threads(n: int):
    # Only a torch that is already imported gets pinned: importing it here
    # would cost seconds for suites that never use it.
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def pinned_threads(n: int):
    """Run pykernels' OpenMP pool, NumPy's BLAS and (when imported) PyTorch's
    intra-op pool with `n` threads each."""
    import pykernels

    before = pykernels.get_num_threads()
    pykernels.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the bench extra is missing: NumPy's BLAS keeps its default
        limiter = contextlib.nullcontext()
    else:
        limiter = threadpool_limits(limits=n, user_api="blas")
    try:
        with limiter, _torch_threads(n):
            yield
    finally:
        pykernels.set_num_threads(before)

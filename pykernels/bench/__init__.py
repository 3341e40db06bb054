"""Benchmark suites behind `pykernels bench`. Each suite's run(threads,
repeats, quick) returns rows (dicts) measured side by side in this process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Suite:
    title: str
    run: Callable[..., list]
    default: bool = True


def _relu(**kw):
    from . import relu

    return relu.run(mib=16 if kw.get("quick") else 64, threads=kw["threads"],
                    repeats=kw["repeats"])


SUITES = {
    "relu": Suite("ReLU forward bandwidth vs np.maximum and np.copyto (64 MiB)", _relu),
}

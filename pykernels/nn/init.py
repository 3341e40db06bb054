"""PyTorch's default initialisations, drawn from one seedable generator."""

from __future__ import annotations

import math

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Make every later layer initialisation reproducible."""
    global _generator
    _generator = np.random.default_rng(seed)


def uniform(shape, bound: float) -> np.ndarray:
    return _generator.uniform(-bound, bound, size=shape).astype(np.float32)


def fan_in_uniform(shape, fan_in: int) -> np.ndarray:
    """torch's kaiming_uniform_(a=sqrt(5)) for weights and its bias rule
    alike: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return uniform(shape, 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0)


def next_seed() -> int:
    """A fresh seed for layers with their own randomness (dropout)."""
    return int(_generator.integers(0, 2**63 - 1))

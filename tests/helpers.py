"""Helpers shared by the test modules (tests/ is on pythonpath)."""

import numpy as np


def random_f32(rng, shape, low=-2.0, high=2.0):
    """Uniform float32 in [low, high) with no exact zeros (never all-zero input)."""
    x = rng.uniform(low, high, size=shape).astype(np.float32)
    x[x == 0] = 0.5
    return x

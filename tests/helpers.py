"""Helpers shared by the test modules (tests/ is on pythonpath)."""

import numpy as np


def random_f32(rng, shape, low=-2.0, high=2.0):
    """Uniform float32 in [low, high) with no exact zeros (never all-zero input)."""
    x = rng.uniform(low, high, size=shape).astype(np.float32)
    x[x == 0] = 0.5
    return x


def gemm_error_bound(a, b, trans_a, trans_b, alpha=1.0, c=None, beta=0.0):
    """Rounding bound for float32 accumulation: a few ulps times K times |A||B|."""
    op_a = np.abs(a.T if trans_a else a).astype(np.float64)
    op_b = np.abs(b.T if trans_b else b).astype(np.float64)
    k = op_a.shape[1]
    scale = abs(alpha) * (op_a @ op_b)
    if c is not None:
        scale += abs(beta) * np.abs(c)
    return 2 * np.finfo(np.float32).eps * (k + 2) * scale + 1e-30


def load_benchmark(name):
    """A script of benchmarks/ as a module (they are not part of the package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

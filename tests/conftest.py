"""Shared fixtures and the GPU policy: tests marked `gpu` skip when no CUDA GPU
(or no CuPy) is usable, unless --require-gpu turns that into a failure."""

from __future__ import annotations

import numpy as np
import pytest

import pykernels

try:  # hypothesis profiles for tests/test_properties.py; PYKERNELS_HYPOTHESIS_PROFILE picks one
    import os

    from hypothesis import HealthCheck, settings

    _quiet = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                              suppress_health_check=_quiet, print_blob=True)
    settings.register_profile("deep", max_examples=5000, deadline=None,
                              suppress_health_check=_quiet, print_blob=True)
    settings.load_profile(os.environ.get("PYKERNELS_HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is optional: test_properties.py skips without it
    pass


def pytest_addoption(parser):
    parser.addoption("--require-gpu", action="store_true",
                     help="fail, rather than skip, gpu tests when no GPU is usable")


def _gpu_unusable_reason() -> str | None:
    if not pykernels.cuda.is_built():
        return "pykernels was built without its CUDA module"
    if not pykernels.cuda.is_available():
        return "no CUDA GPU is usable"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CuPy is not installed"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _gpu_unusable_reason()
    if reason is None:
        return
    if config.getoption("--require-gpu"):
        raise pytest.UsageError(f"--require-gpu given but {reason}")
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(20121203)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def threads():
    """Run a callable under a given pykernels thread count, restoring after."""

    def run(n, fn, *args, **kwargs):
        before = pykernels.get_num_threads()
        pykernels.set_num_threads(n)
        try:
            return fn(*args, **kwargs)
        finally:
            pykernels.set_num_threads(before)

    return run


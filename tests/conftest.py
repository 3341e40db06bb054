"""Shared fixtures and the GPU policy.

Tests marked `gpu` run on a real GPU when one is usable. Without one, those
that take the `cp` fixture run on the CPU emulator instead (tests/cuda_emu.py
and tests/emu_cupy.py): same tests, same kernels, host memory. Tests also
marked `real_gpu` (timing, streams, large sizes) and `gpu` tests without `cp`
skip. --require-gpu turns a missing real GPU into a failure.
"""

from __future__ import annotations

import os
import shutil
import sys

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


def _emulator_unusable_reason() -> str | None:
    if shutil.which("g++") is None:
        return "no g++ to build the CUDA emulator"
    try:
        import pybind11  # noqa: F401
    except ImportError:
        return "pybind11 is needed to build the CUDA emulator"
    return None


_GPU_REASON = _gpu_unusable_reason()


def pytest_collection_modifyitems(config, items):
    if _GPU_REASON is None:
        return
    if config.getoption("--require-gpu"):
        raise pytest.UsageError(f"--require-gpu given but {_GPU_REASON}")
    emulator_reason = _emulator_unusable_reason()
    for item in items:
        if "gpu" not in item.keywords:
            continue
        if "real_gpu" in item.keywords or "cp" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.skip(reason=f"needs a real GPU: {_GPU_REASON}"))
        elif emulator_reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"{_GPU_REASON}; {emulator_reason}"))


@pytest.fixture
def cp(monkeypatch):
    """The CuPy module on a GPU machine; elsewhere an emulated CuPy with
    pykernels wired to the CPU-emulated CUDA module, for this test only."""
    if _GPU_REASON is None:
        import cupy

        return cupy
    import cuda_emu
    import emu_cupy

    from pykernels import _backend

    monkeypatch.setitem(sys.modules, "cupy", emu_cupy)
    # A GPU runs blocks in no promised order, so neither does the emulator:
    # a new random order each launch (cuda/emu/cuda_emu.h), unless the
    # environment names another ("" for the natural order, when debugging).
    monkeypatch.setenv("PYKERNELS_EMU_BLOCK_ORDER",
                       os.environ.get("PYKERNELS_EMU_BLOCK_ORDER", "shuffle"))
    monkeypatch.setattr(_backend, "_cuda_module", cuda_emu.load())
    monkeypatch.setattr(_backend, "_cuda_probed", True)
    monkeypatch.setattr(pykernels.cuda, "is_available", lambda: True)
    return emu_cupy


@pytest.fixture
def poisoned(cp, monkeypatch):
    """`cp` whose empty() returns NaN-filled float arrays, so an output or
    scratch element a kernel forgets to write shows up."""
    def empty(shape, dtype=np.float32):
        return cp.full(shape, np.nan, dtype=dtype)

    monkeypatch.setattr(cp, "empty", empty)
    return cp


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


def _isas():
    from pykernels.bench.peak import available_isas

    return available_isas()


@pytest.fixture(params=_isas())
def each_isa(request):
    """Runs the test once per SIMD ISA this CPU has, restoring the active one."""
    before = pykernels.get_isa()
    pykernels.set_isa(request.param)
    yield request.param
    pykernels.set_isa(before)

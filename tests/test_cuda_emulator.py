"""The CPU emulator of CUDA varies the order blocks run in, as a GPU may: the
gpu-marked tests run under a new random order each launch (conftest.py), which
shows nothing unless the order really changes. tools/emu_sanitize_probe.cpp's
ORDER kernel has every block write its index to one element, so the last
block to run wins."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def order_probe(tmp_path_factory):
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        pytest.skip(f"no {cxx} to build the emulator probe")
    exe = tmp_path_factory.mktemp("probe") / "probe_order"
    subprocess.run([cxx, "-std=c++20", "-O1", "-pthread", "-DORDER", f"-I{REPO / 'cuda'}",
                    str(REPO / "tools" / "emu_sanitize_probe.cpp"), "-o", str(exe)], check=True)
    return exe


def last_block(exe, order):
    env = {**os.environ, "PYKERNELS_EMU_BLOCK_ORDER": order}
    out = subprocess.run([str(exe)], env=env, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0]


def test_block_order_can_be_reversed_and_shuffled(order_probe):
    assert last_block(order_probe, "") == "last block to run: 7"
    assert last_block(order_probe, "reverse") == "last block to run: 0"
    # The probe launches once, and the first launch's permutation is fixed
    # (seeded by the launch count): it does not end on the last block.
    assert last_block(order_probe, "shuffle") != "last block to run: 7"

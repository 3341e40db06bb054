"""Checks of the CPU emulator of CUDA itself, through the kernels of
tools/emu_sanitize_probe.cpp.

- Block order: the gpu-marked tests run under a new random order each launch
  (conftest.py), which shows nothing unless the order really changes. The
  ORDER kernel has every block write its index to one element, so the last
  block to run wins.
- Warp collectives: a shuffle that reads a lane that has exited (or that a
  partial warp lacks) gets an undefined value on a GPU, and the emulator must
  fail that launch, or the tests could not catch such a kernel; a
  __syncwarp that names exited lanes is defined and must pass.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def build_probe(tmp_path_factory, define):
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        pytest.skip(f"no {cxx} to build the emulator probe")
    exe = tmp_path_factory.mktemp("probe") / f"probe_{define.lower()}"
    subprocess.run([cxx, "-std=c++20", "-O1", "-pthread", f"-D{define}", f"-I{REPO / 'cuda'}",
                    str(REPO / "tools" / "emu_sanitize_probe.cpp"), "-o", str(exe)], check=True)
    return exe


@pytest.fixture(scope="module")
def order_probe(tmp_path_factory):
    return build_probe(tmp_path_factory, "ORDER")


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


def test_warp_collective_with_a_gone_lane_fails_the_launch(tmp_path_factory):
    exe = build_probe(tmp_path_factory, "LANES")
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[:4] == [
        "all lanes: cudaSuccess",
        "lanes 16-31 returned: cudaErrorIllegalInstruction",
        "a 48-thread block: cudaErrorIllegalInstruction",
        "__syncwarp after lanes 16-31 returned: cudaSuccess"]

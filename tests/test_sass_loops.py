"""tools/sass_loops.py on a hand-written SASS listing: the loop found, and the
path through it that a block inside C takes (its loads vectorised and in
range)."""

import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parent.parent / "tools" / "sass_loops.py"

# A loop whose load is vectorised on one side of a branch and scalar on the
# other, then a second path around a bounds check written as `BRA P, target`.
LISTING = """
        Function : _Z6kernelv
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   FFMA R2, R3, R4, R2 ;
        /*0020*/              @P0 BRA 0x60 ;
        /*0030*/                   LDG.E R5, desc[UR4][R6.64] ;
        /*0040*/                   LDG.E.64 R10, desc[UR4][R6.64+0x4] ;
        /*0050*/                   BRA 0x70 ;
        /*0060*/                   LDG.E.128 R8, desc[UR4][R6.64] ;
        /*0070*/              @!P2 BRA P3, 0xa0 ;
        /*0080*/                   ISETP.GE.AND P4, PT, R1, R2, PT ;
        /*0090*/                   IADD3 R1, R1, 0x1, RZ ;
        /*00a0*/                   LDS.128 R12, [R1] ;
        /*00b0*/                   FFMA R2, R12, R13, R2 ;
        /*00c0*/              @P1 BRA 0x10 ;
        /*00d0*/                   EXIT ;
        /*00e0*/                   BRA 0xe0 ;
"""


@pytest.fixture(scope="module")
def sass_loops():
    spec = importlib.util.spec_from_file_location("sass_loops", PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_finds_the_loop_and_its_fast_path(sass_loops):
    listing = sass_loops.kernels(LISTING)["_Z6kernelv"]
    assert [ins.opcode for ins in listing[:3]] == ["MOV", "FFMA", "BRA"]
    # The trailing branch to itself, which ends every kernel, is not a loop.
    assert sass_loops.loops(listing) == [(1, 12)]
    path = sass_loops.fastest_path(listing, 1, 12)
    # FFMA, BRA, LDG.128, BRA P3 (taken), LDS, FFMA, BRA: not the scalar
    # loads (1 + 2 words), and not the bounds-check arithmetic, which loads
    # nothing more.
    assert (path.issued, path.ffma, path.lds, path.loaded_words) == (7, 2, 1, 4)
    assert path.ffma_share == pytest.approx(2 / 7)


def test_words_loaded_come_from_the_opcode_not_the_address(sass_loops):
    # Without the vector load, the scalar side is the most loaded: 1 + 2 words,
    # though both addresses read `R6.64`.
    no_vector = sass_loops.kernels(LISTING.replace("LDG.E.128 R8", "NOP R8"))["_Z6kernelv"]
    path = sass_loops.fastest_path(no_vector, 1, 12)
    assert path.loaded_words == 3


def test_report_names_each_matching_kernel(sass_loops):
    table = sass_loops.report(LISTING, [r"kernel"]).splitlines()
    assert len(table) == 3  # header, rule, the loop
    assert table[2] == "| _Z6kernelv | 0x10 | 12 | 7 | 2 | 1 | 4 | 28.6% |"
    assert sass_loops.report(LISTING, [r"no_such_kernel"]).count("\n") == 1

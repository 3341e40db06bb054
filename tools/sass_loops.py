"""What a GEMM kernel's main loop issues per iteration, read from its SASS.

    python tools/sass_loops.py [--cubin FILE] [--arch sm_90] [PATTERN ...]

A GPU issues one instruction per scheduler and clock, and an FP32 FMA of a
warp takes one of those slots on Hopper, so the share of FFMA among the
instructions a main loop issues bounds the fraction of the FP32 peak a kernel
can reach, before any stall. This counts it without a GPU: it compiles
cuda/gemm.cu to a cubin for one architecture (or reads --cubin), disassembles
it with cuobjdump (CUDA's, or the PyPI wheel nvidia-cuda-cuobjdump), finds
each kernel's loops (backward branches) and, of the paths through a loop
body, picks the one a block inside C takes, where every load is in range and
vectorised where the kernel can: the path with the most 128-bit global loads,
then the most words loaded, then the fewest instructions. It reports what
that path issues: instructions, FFMAs, shared loads and the FFMA share.

Kernels are picked by regular expressions over their mangled names, e.g.
'sgemm_tiled.*WarpLayoutILi2EEELi16ELb1ELb1ELb0ELb0ENS1_12CudaCore' for the
warptile rung with plain row-major, 16-byte aligned operands.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INSTRUCTION = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
PREDICATE = re.compile(r"^@!?U?P[T0-9]+\s+")
TARGET = re.compile(r"0x([0-9a-f]+)")

DEFAULT_PATTERNS = [
    r"sgemm_tiled.*WarpLayoutILi2EEELi16ELb1ELb1ELb0ELb0ENS1_12CudaCore",
    r"sgemm_tiled.*WarpLayoutILi1EEELi16ELb1ELb1ELb0ELb0ENS1_12CudaCore",
    r"sgemm_partial.*WarpLayoutILi1EEELb1ELb0ELb0E",
]


@dataclass
class Instruction:
    address: int
    opcode: str  # without predicate or modifiers: FFMA, LDS, BRA, ...
    text: str
    predicated: bool


@dataclass
class PathCount:
    issued: int
    ffma: int
    lds: int
    loaded_words: int  # 32-bit words the path's global loads bring in

    @property
    def ffma_share(self) -> float:
        return self.ffma / self.issued


def find_cuobjdump() -> str:
    found = shutil.which("cuobjdump")
    if found:
        return found
    try:
        import nvidia  # the PyPI wheels install under the nvidia namespace

        for root in nvidia.__path__:
            for candidate in Path(root).glob("*/bin/cuobjdump"):
                return str(candidate)
    except ImportError:
        pass
    sys.exit("sass_loops: no cuobjdump; pip install nvidia-cuda-cuobjdump, or put CUDA's on PATH")


def build_cubin(arch: str, out: Path) -> None:
    command = ["nvcc", "-std=c++17", "-O3", f"-I{REPO / 'csrc/include'}", f"-I{REPO / 'cuda'}",
               "-cubin", f"-arch={arch}", str(REPO / "cuda/gemm.cu"), "-o", str(out)]
    subprocess.run(command, check=True)


def kernels(sass: str) -> dict[str, list[Instruction]]:
    found: dict[str, list[Instruction]] = {}
    for chunk in re.split(r"\n\s*Function : ", sass)[1:]:
        name, body = chunk.split("\n", 1)
        listing = []
        for line in body.split("\n"):
            match = INSTRUCTION.match(line)
            if not match:
                continue
            text = match.group(2)
            bare = PREDICATE.sub("", text)
            listing.append(Instruction(int(match.group(1), 16), bare.split()[0].split(".")[0],
                                       text, bare != text))
        found[name.strip()] = listing
    return found


def loops(listing: list[Instruction]) -> list[tuple[int, int]]:
    """(first index, back-edge index) of each loop: a branch to an earlier address."""
    index_of = {ins.address: i for i, ins in enumerate(listing)}
    spans = []
    for i, ins in enumerate(listing):
        if ins.opcode == "BRA":
            target = int(TARGET.search(ins.text).group(1), 16)
            if target < ins.address:
                spans.append((index_of[target], i))
    return spans


def successors(listing: list[Instruction], index_of: dict[int, int], i: int) -> list[int]:
    ins = listing[i]
    if ins.opcode == "EXIT" and not ins.predicated:
        return []
    if ins.opcode != "BRA":
        return [i + 1]
    target = index_of[int(TARGET.search(ins.text).group(1), 16)]
    # `@P BRA` or `BRA P, target` (a branch on a second predicate) may fall through.
    conditional = ins.predicated or re.match(r"BRA(\.\S+)?\s+!?U?P\d", PREDICATE.sub("", ins.text))
    return [target, i + 1] if conditional else [target]


def fastest_path(listing: list[Instruction], first: int, back_edge: int) -> PathCount:
    """Of the paths from the loop's head to its back edge, the one with the
    most 128-bit global loads, then the most words loaded, then the fewest
    instructions."""
    index_of = {ins.address: i for i, ins in enumerate(listing)}

    def cost(i: int) -> tuple[int, int, int, int, int]:
        ins = listing[i]
        words = vector = 0
        if ins.opcode == "LDG":
            modifiers = PREDICATE.sub("", ins.text).split()[0].split(".")
            words = 4 if "128" in modifiers else 2 if "64" in modifiers else 1
            vector = words == 4
        return (1, ins.opcode == "FFMA", ins.opcode == "LDS", words, vector)

    def preference(counts: tuple[int, ...]) -> tuple[int, int, int]:
        issued, _, _, words, vector = counts
        return (vector, words, -issued)

    # Loop bodies are acyclic apart from the back edge, so the best path to each
    # instruction follows from its predecessors in address order.
    best: dict[int, tuple[int, ...]] = {first: cost(first)}
    for i in range(first, back_edge):
        if i not in best:
            continue
        for j in successors(listing, index_of, i):
            if not first <= j <= back_edge or j <= i:
                continue
            step = cost(j)
            candidate = tuple(a + b for a, b in zip(best[i], step))
            old = best.get(j)
            if old is None or preference(candidate) > preference(old):
                best[j] = candidate
    issued, ffma, lds, words, _ = best[back_edge]
    return PathCount(issued, ffma, lds, words)


def report(sass: str, patterns: list[str]) -> str:
    lines = ["| kernel | loop | static size | issued on the fast path | FFMA | LDS | "
             "words loaded | FFMA share |", "|---|---|---|---|---|---|---|---|"]
    for name, listing in kernels(sass).items():
        if not any(re.search(p, name) for p in patterns):
            continue
        short = re.sub(r"^_ZN2pk4cuda\w+?_gemm_cu_\w{8}\d+", "", name)[:70]
        for first, back_edge in loops(listing):
            path = fastest_path(listing, first, back_edge)
            lines.append(f"| {short} | {listing[first].address:#x} | {back_edge - first + 1} | "
                         f"{path.issued} | {path.ffma} | {path.lds} | {path.loaded_words} | "
                         f"{path.ffma_share:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("patterns", nargs="*", default=DEFAULT_PATTERNS)
    parser.add_argument("--cubin", type=Path, help="a cubin to read instead of building one")
    parser.add_argument("--arch", default="sm_90")
    args = parser.parse_args(argv)
    cuobjdump = find_cuobjdump()
    with tempfile.TemporaryDirectory() as scratch:
        cubin = args.cubin or Path(scratch) / "gemm.cubin"
        if args.cubin is None:
            build_cubin(args.arch, cubin)
        sass = subprocess.run([cuobjdump, "-sass", str(cubin)], check=True, capture_output=True,
                              text=True).stdout
    print(report(sass, args.patterns))


if __name__ == "__main__":
    main()

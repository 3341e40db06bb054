#!/usr/bin/env bash
# A racecheck for the CUDA kernels without a GPU. The CPU emulator of CUDA
# (cuda/emu/cuda_emu.h) runs the threads of a block as real threads ordered
# only by __syncthreads, __syncwarp and the shuffles, so ThreadSanitizer sees
# a missing barrier as a data race on shared (or global) memory, much as
# compute-sanitizer --tool racecheck would on a GPU. What it cannot see:
# races between blocks (the emulator runs them one at a time).
#
#   tools/racecheck.sh                    # control, then the gpu-marked op tests
#   tools/racecheck.sh tests/test_pool.py # other pytest arguments instead
#
# By default it runs the op tests, which reach every kernel with odd shapes;
# the network and benchmark tests run the same kernels again, for hours more
# under ThreadSanitizer's 256 threads a block on a small machine.
#
# Environment: PYTHON (default: the venv's python, else python3) must have
# numpy, pytest, pybind11 and pykernels' CPU module. Exit status non-zero when
# the control fails, a test fails, or ThreadSanitizer reports a race whose
# stack is in pykernels' CUDA sources.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
CXX="${CXX:-g++}"
LOGS="${RACECHECK_LOGS:-$ROOT/build/racecheck}"
rm -rf "$LOGS" && mkdir -p "$LOGS"

echo "== control: a planted race must be reported, its fixed twin must not"
for variant in RACE SYNC; do
  "$CXX" -std=c++20 -O1 -g -fsanitize=thread -pthread -D"$variant" -I"$ROOT/cuda" \
    tools/racecheck_probe.cpp -o "$LOGS/probe_$variant"
  rc=0
  TSAN_OPTIONS="exitcode=66" "$LOGS/probe_$variant" >"$LOGS/probe_$variant.log" 2>&1 || rc=$?
  echo "   $variant: exit $rc"
  expected=0
  [ "$variant" = RACE ] && expected=66
  if [ "$rc" != "$expected" ]; then
    echo "control failed: see $LOGS/probe_$variant.log" >&2
    exit 1
  fi
done

echo "== gpu-marked tests on the emulator, built with ThreadSanitizer"
# Single-threaded BLAS and OpenMP: their thread pools are not instrumented and
# would only add false reports; the emulator's own threads are what is checked.
export PYKERNELS_EMU_SANITIZE=thread OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export TSAN_OPTIONS="halt_on_error=0 report_signal_unsafe=0 log_path=$LOGS/tsan"
"$PYTHON" tests/cuda_emu.py >/dev/null   # build first, without libtsan preloaded
status=0
op_tests=(tests/test_gemm_gpu.py tests/test_conv.py tests/test_pool.py tests/test_batchnorm.py
          tests/test_dropout.py tests/test_loss.py tests/test_relu.py tests/test_lstm.py
          tests/test_bad_input.py)
if [ $# -eq 0 ]; then set -- "${op_tests[@]}"; fi
LD_PRELOAD="$("$CXX" -print-file-name=libtsan.so)" \
  "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu --durations=15 "$@" || status=$?

# Only races with a frame in cuda/ count; reports inside uninstrumented
# libraries (the interpreter, NumPy) are the sanitizer's blind spots.
"$PYTHON" - "$LOGS" <<'PY' || status=1
import pathlib, re, sys
reports = []
for log in pathlib.Path(sys.argv[1]).glob("tsan.*"):
    reports += re.split(r"^=+$", log.read_text(), flags=re.M)
races = [r for r in reports if "WARNING: ThreadSanitizer" in r]
ours = [r for r in races if re.search(r"/cuda/\w+\.(cu|cuh|h)", r)]
print(f"ThreadSanitizer: {len(races)} reports, {len(ours)} in pykernels' CUDA sources")
for r in ours[:5]:
    print(r)
sys.exit(1 if ours else 0)
PY
exit "$status"

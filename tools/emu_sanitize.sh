#!/usr/bin/env bash
# compute-sanitizer's checks, without a GPU: the CPU emulator of CUDA
# (cuda/emu/cuda_emu.h) built with a compiler sanitizer, under the gpu-marked
# tests. (Two more need no sanitizer and run in every test session: the
# emulator's blocks in a new random order each launch, and warp collectives
# that read an exited lane; see tests/conftest.py and
# tests/test_cuda_emulator.py.)
#   address    AddressSanitizer, as memcheck: a kernel reading or writing
#              past the end of a buffer (heap or stack). Every gpu-marked
#              test (a few minutes).
#   undefined  UndefinedBehaviorSanitizer: a float4/float2 access that is not
#              aligned to its size (a misaligned-address fault on a GPU),
#              signed overflow in index arithmetic, out-of-bounds shifts.
#              Every gpu-marked test (a few minutes).
#   thread     ThreadSanitizer, as a racecheck: the emulator runs a block's
#              threads as real threads ordered only by __syncthreads,
#              __syncwarp and the warp collectives, so a missing barrier is a
#              data race on shared (or global) memory. Races between blocks
#              are out of its reach (the emulator runs blocks one at a time).
#              The op tests, which reach every kernel with odd shapes; the
#              network and benchmark tests would add hours of the same
#              kernels under 256 instrumented threads a block.
# Each starts with a control: a planted fault must be reported and its fixed
# twin must not (tools/emu_sanitize_probe.cpp).
#
#   tools/emu_sanitize.sh                          # all three
#   EMU_SANITIZERS=thread tools/emu_sanitize.sh    # one
#   tools/emu_sanitize.sh tests/test_pool.py       # these tests instead
#
# Environment: PYTHON (default: python, else python3) must have numpy, pytest,
# pybind11 and pykernels' CPU module; EMU_SANITIZERS picks among "address
# undefined thread". Exit status non-zero when a control fails, a test fails, or
# a sanitizer reports a finding in pykernels' CUDA sources. Reports are kept
# in build/emu_sanitize/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
CXX="${CXX:-g++}"
LOGS="${EMU_SANITIZE_LOGS:-$ROOT/build/emu_sanitize}"
rm -rf "$LOGS" && mkdir -p "$LOGS"
# Single-threaded BLAS and OpenMP: their thread pools are not instrumented and
# would only add false reports; the emulator's own threads are what is checked.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
op_tests=(tests/test_gemm_gpu.py tests/test_conv.py tests/test_pool.py tests/test_batchnorm.py
          tests/test_dropout.py tests/test_loss.py tests/test_relu.py tests/test_lstm.py
          tests/test_bad_input.py)

# control SANITIZER PLANTED FIXED: builds the probe both ways and checks that
# only the planted fault is reported.
control() {
  local sanitizer=$1 planted=$2 fixed=$3 variant reports
  for variant in "$planted" "$fixed"; do
    "$CXX" -std=c++20 -O1 -g -fsanitize="$sanitizer" -fsanitize-recover=all -pthread \
      -D"$variant" -I"$ROOT/cuda" tools/emu_sanitize_probe.cpp -o "$LOGS/probe_$variant"
    ASAN_OPTIONS=halt_on_error=0 "$LOGS/probe_$variant" >"$LOGS/probe_$variant.log" 2>&1 || true
    reports=$(grep -cE 'WARNING: ThreadSanitizer|runtime error:|ERROR: AddressSanitizer' \
      "$LOGS/probe_$variant.log" || true)
    echo "   control $variant: $reports report(s)"
    if { [ "$variant" = "$planted" ] && [ "$reports" = 0 ]; } ||
       { [ "$variant" = "$fixed" ] && [ "$reports" != 0 ]; }; then
      echo "control failed: see $LOGS/probe_$variant.log" >&2
      return 1
    fi
  done
}

# findings LOG_PREFIX: counts the reports in the sanitizer's logs; fails on
# those that name a file in cuda/ (the rest come from uninstrumented
# libraries, the interpreter and NumPy, the sanitizers' blind spots).
findings() {
  "$PYTHON" - "$LOGS" "$1" <<'PY'
import pathlib, re, sys
reports = []
for log in pathlib.Path(sys.argv[1]).glob(sys.argv[2] + ".*"):
    text = log.read_text()
    if "ThreadSanitizer" in text:
        reports += re.split(r"^=+$", text, flags=re.M)
    elif "AddressSanitizer" in text:  # a report per ERROR line, its stack below it
        reports += re.split(r"^(?==+\d+==ERROR)", text, flags=re.M)[1:]
    else:
        reports += [line for line in text.splitlines() if "runtime error:" in line]
ours = [r for r in reports if re.search(r"/cuda/[\w/]+\.(cu|cuh|h)", r)]
print(f"   {sys.argv[2]}: {len(reports)} report(s), {len(ours)} in pykernels' CUDA sources")
for r in ours[:5]:
    print(r)
sys.exit(1 if ours else 0)
PY
}

status=0
for sanitizer in ${EMU_SANITIZERS:-address undefined thread}; do
  echo "== $sanitizer"
  preload="" tests=(tests)
  case $sanitizer in
    # libstdc++ preloaded too: else ASan's __cxa_throw hook finds no real one
    # in the python executable and aborts at the first C++ exception.
    address) control address OUT_OF_BOUNDS IN_BOUNDS
             preload="$("$CXX" -print-file-name=libasan.so) $("$CXX" -print-file-name=libstdc++.so.6)" ;;
    undefined) control undefined MISALIGNED ALIGNED ;;
    thread) control thread RACE SYNC
            preload="$("$CXX" -print-file-name=libtsan.so)" tests=("${op_tests[@]}") ;;
    *) echo "unknown sanitizer '$sanitizer' (address, undefined, thread)" >&2; exit 2 ;;
  esac
  [ $# -gt 0 ] && tests=("$@")
  PYKERNELS_EMU_SANITIZE=$sanitizer "$PYTHON" tests/cuda_emu.py >/dev/null  # no runtime preloaded
  PYKERNELS_EMU_SANITIZE=$sanitizer \
  UBSAN_OPTIONS="print_stacktrace=1 log_path=$LOGS/undefined" \
  ASAN_OPTIONS="halt_on_error=0 detect_leaks=0 log_path=$LOGS/address" \
  TSAN_OPTIONS="halt_on_error=0 report_signal_unsafe=0 log_path=$LOGS/thread" \
  LD_PRELOAD="$preload" \
    "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu --durations=10 "${tests[@]}" ||
    status=$?
  findings "$sanitizer" || status=1
done
exit "$status"

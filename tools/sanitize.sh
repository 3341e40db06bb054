#!/usr/bin/env bash
# Builds pykernels' CPU module with AddressSanitizer + UndefinedBehaviorSanitizer
# (-Ccmake.define.PYKERNELS_SANITIZE=ON) in its own build dir and venv, runs the
# CPU test suite under it, then a leak check (LeakSanitizer) over many repeated
# calls of every op.
#
#   tools/sanitize.sh                 # build + tests + leak check
#   tools/sanitize.sh -k conv         # extra arguments go to pytest
#
# Environment: BASE_VENV (default /work/venv_ops, or .venv) provides numpy,
# pytest, hypothesis and torch; SANITIZE_DIR (default build/sanitize) holds the
# build tree and the sanitizer venv; LEAK_CALLS (default 2000) calls per op in
# the leak check. Exit status: non-zero when a test fails, a sanitizer reports
# an error, or a leak inside pykernels is found.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BASE_VENV="${BASE_VENV:-$([ -d /work/venv_ops ] && echo /work/venv_ops || echo "$ROOT/.venv")}"
SANITIZE_DIR="${SANITIZE_DIR:-build/sanitize}"
LEAK_CALLS="${LEAK_CALLS:-2000}"
VENV="$ROOT/$SANITIZE_DIR/venv"

# 1. A venv of its own (the editable install points at the sanitized build),
#    borrowing the base venv's packages through a .pth line.
if [ ! -x "$VENV/bin/python" ]; then
  "$BASE_VENV/bin/python" -m venv --without-pip "$VENV"
  base_site="$("$BASE_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  own_site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  echo "$base_site" > "$own_site/_base_venv.pth"
fi

# 2. The sanitized build (CPU only).
PYKERNELS_CUDA=OFF "$VENV/bin/python" -m pip install --no-build-isolation --no-deps -e . \
  -Cbuild-dir="$SANITIZE_DIR/build" -Ccmake.define.PYKERNELS_SANITIZE=ON \
  -Ccmake.define.PYKERNELS_CUDA=OFF 2>&1 | tail -2

# 3. The runtime: the interpreter is not sanitized, so libasan must be loaded
#    first; the interpreter's own allocations at exit are not our leaks.
LIBASAN="$(${CXX:-g++} -print-file-name=libasan.so)"
LIBUBSAN="$(${CXX:-g++} -print-file-name=libubsan.so)"
export LD_PRELOAD="$LIBASAN:$LIBUBSAN"
# Reports go to files as well: pytest captures stderr, and an abort loses it.
LOGS="$ROOT/$SANITIZE_DIR/logs"
rm -rf "$LOGS" && mkdir -p "$LOGS"
# Tests ask for absurd allocations on purpose and expect MemoryError: ASan
# returns NULL for them (and for anything past 8 GiB) instead of aborting.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_init_order=1:log_path=$LOGS/asan:allocator_may_return_null=1:max_allocation_size_mb=8192"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$LOGS/ubsan"
export PYTHONMALLOC=malloc   # every Python allocation through ASan's malloc
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

"$VENV/bin/python" -c 'import pykernels, sys; print("sanitized build:", pykernels._cpu.__file__)'

echo "== CPU test suite under ASan + UBSan"
status=0
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not slow and not gpu" \
  "$@" || status=$?
# "failed to allocate" warnings are the absurd-size tests getting their
# MemoryError (allocator_may_return_null); anything else is a finding.
findings=0
for f in "$LOGS"/*; do
  [ -e "$f" ] || continue
  if grep -vq "WARNING: AddressSanitizer failed to allocate" "$f"; then
    echo "--- sanitizer report $f (first 80 lines)"; head -80 "$f"; findings=$((findings + 1))
  fi
done
echo "ASan/UBSan: $findings report(s) ($(cat "$LOGS"/* 2>/dev/null | grep -c 'failed to allocate' || true) expected allocation refusals)"
[ "$findings" = "0" ] || status=1

echo "== leak check: LeakSanitizer over $LEAK_CALLS calls of every op"
report="$ROOT/$SANITIZE_DIR/lsan.txt"
# --control-leak leaks 16 blocks through libc (via ctypes/libffi) on purpose:
# LeakSanitizer must report them (else it is not working here, e.g. without ptrace), and it
# has no pykernels frame.
# One OpenMP thread: with libgomp's worker threads alive LeakSanitizer cannot
# stop the world in some containers ("fatal error ... ptrace"); the threaded
# paths get the valgrind run below.
OMP_NUM_THREADS=1 ASAN_OPTIONS="detect_leaks=1:exitcode=0:log_path=$report.raw:allocator_may_return_null=1" \
  "$VENV/bin/python" "$ROOT/tools/leak_calls.py" "$LEAK_CALLS" --control-leak || status=$?
cat "$report".raw.* > "$report" 2>/dev/null || : > "$report"
rm -f "$report".raw.*
# The interpreter leaks by design at exit; only records with a pykernels frame count.
ours="$("$VENV/bin/python" "$ROOT/tools/leak_calls.py" --count-ours "$report")"
total="$(grep -cE '^(Direct|Indirect) leak of' "$report" || true)"
echo "LeakSanitizer: $total leak records in total, $ours with a pykernels frame (report: $report)"
grep -q "libffi" "$report" || { echo "LeakSanitizer missed the control leak"; status=1; }
[ "$ours" = "0" ] || status=1

# Valgrind over the threaded paths (OMP_NUM_THREADS=2) of the base venv's normal build.
if command -v valgrind >/dev/null && (unset LD_PRELOAD; "$BASE_VENV/bin/python" -c "import pykernels") 2>/dev/null; then
  rounds="${VALGRIND_ROUNDS:-20}"
  echo "== leak check: valgrind memcheck over $rounds calls of every op, 2 OpenMP threads"
  vlog="$ROOT/$SANITIZE_DIR/valgrind.txt"
  (unset LD_PRELOAD; PYTHONMALLOC=malloc OMP_NUM_THREADS=2 valgrind --leak-check=full \
     --show-leak-kinds=definite --num-callers=30 --log-file="$vlog" \
     "$BASE_VENV/bin/python" "$ROOT/tools/leak_calls.py" "$rounds") || status=$?
  vours="$(LD_PRELOAD= "$BASE_VENV/bin/python" "$ROOT/tools/leak_calls.py" --count-ours "$vlog")"
  echo "valgrind: $(grep -E 'definitely lost:' "$vlog" | tail -1 | sed 's/==[0-9]*==//'), $vours record(s) with a pykernels frame (log: $vlog)"
  [ "$vours" = "0" ] || status=1
else
  echo "(valgrind or a normal pykernels build in $BASE_VENV not available: valgrind run skipped)"
fi
exit $status

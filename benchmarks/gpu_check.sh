#!/usr/bin/env bash
# benchmarks/gpu_check.sh OUTDIR [BUNDLE]
#
# One run on a GPU machine without a package registry: build pykernels from
# this checkout with the preinstalled build tools, run the GPU tests with
# --require-gpu, run the GPU benchmarks, profile the benchmarked kernels once
# with Nsight Compute when it works there, and write a short table to
# OUTDIR/results.md (plus the logs it came from). It keeps going after a
# failed step so the table says what failed, and it watches a total budget
# (GPU_CHECK_BUDGET_S, default 520 s): a step that no longer fits is skipped
# and marked so, to stay inside one 10-minute device call.
#
# BUNDLE, when given, is a .tar.gz of OUTDIR written at the end: the device
# tool brings back at most 8 files, so on the lent machine run
#   benchmarks/gpu_check.sh /tmp/gpu_check "$OUT/gpu_check.tgz"; cp /tmp/gpu_check/results.md "$OUT/"
# The device machine's copy of .git can be the session's starting one (it was
# on 2026-11-29), so the table's commit line is `git describe --dirty` there;
# GPU_CHECK_COMMIT=<hash typed into the call> names the commit built instead.
set -uo pipefail
outdir=${1:?usage: benchmarks/gpu_check.sh OUTDIR [BUNDLE]}
bundle=${2:-}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
cd "$(dirname "$0")/.."
budget=${GPU_CHECK_BUDGET_S:-520}
# Seconds a step may take: its own cap, or what is left of the budget (at
# least 1: `timeout 0` would mean no limit at all).
time_for() {
  local left=$((budget - SECONDS))
  left=$(( left < $1 ? left : $1 ))
  echo $(( left < 1 ? 1 : left ))
}

py=${PYTHON:-python3}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
# This GPU's architecture only (sm_90 on an H100/H200): a third of the
# default build's nvcc time. CUDAARCHS overrides it for other GPUs.
export CUDAARCHS=${CUDAARCHS:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader \
  2>/dev/null | head -n 1 | tr -d '. ')}
[ -n "$CUDAARCHS" ] || unset CUDAARCHS
status() { if [ "$1" -eq 0 ]; then echo ok; else echo "FAILED (exit $1)"; fi; }

nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv \
  >"$outdir/nvidia-smi.txt" 2>&1

start=$SECONDS
PYKERNELS_CUDA=ON timeout "$(time_for 300)" "$py" -m pip install --no-build-isolation \
  --no-deps -v . >"$outdir/build.log" 2>&1
build=$?
build_s=$((SECONDS - start))

# From outside the checkout so the installed package (with _cuda) is imported.
(cd /tmp && "$py" -m pykernels info) >"$outdir/info.txt" 2>&1

start=$SECONDS
# From outside the checkout too: `python -m pytest` puts the current folder
# first on sys.path, and the checkout's pykernels/ has no compiled modules.
repo=$(pwd)
(cd /tmp && timeout "$(time_for 180)" "$py" -m pytest "$repo/tests" --rootdir "$repo" -m gpu \
  --require-gpu -q -p no:cacheprovider -rs) >"$outdir/gpu_tests.txt" 2>&1
gpu_tests=$?
tests_s=$((SECONDS - start))

# One suite per call, each with its own time limit, so a slow or failing
# suite cannot take the rest down with it.
# The TF32 rung is an extra beyond the issues' targets: last, on what is left.
# GPU_CHECK_SUITES narrows or reorders them for a short lease (e.g. a rerun
# that only needs the suites whose code changed); GPU_CHECK_SWEEP=0 and
# GPU_CHECK_PROFILE=0 leave out the Winograd sweep and Nsight Compute.
suites=${GPU_CHECK_SUITES:-"peak relu-gpu gemm-gpu gemm-ladder-all conv-gpu bandwidth-gpu lstm-gpu \
alexnet-gpu gemm-tf32-gpu"}
bench=0
bench_steps=""
for suite in $suites; do
  start=$SECONDS
  limit=$(time_for 150)
  if [ "$limit" -lt 20 ]; then
    bench=1
    bench_steps="$bench_steps| bench $suite | SKIPPED (budget spent) | 0 |
"
    continue
  fi
  (cd /tmp && timeout "$limit" "$py" -m pykernels bench "$suite" --threads "$(nproc)" \
    --repeats 5 --json "$outdir/bench_$suite.json") >"$outdir/bench_$suite.txt" 2>&1
  rc=$?
  [ $rc -eq 0 ] || bench=$rc
  bench_steps="$bench_steps| bench $suite | $(status $rc) | $((SECONDS - start)) |
"
done

# The measurements behind the GPU's algo="auto" rule for Winograd.
sweep="SKIPPED (budget spent)"
limit=$(time_for 90)
if [ "${GPU_CHECK_SWEEP:-1}" = 0 ]; then
  sweep="not run (GPU_CHECK_SWEEP=0)"
elif [ "$limit" -ge 20 ]; then
  start=$SECONDS
  (cd /tmp && timeout "$limit" "$py" "$repo/benchmarks/winograd_sweep.py" \
    --json "$outdir/winograd_sweep.json") >"$outdir/winograd_sweep.txt" 2>&1
  sweep="$(status $?) in $((SECONDS - start)) s"
fi

# Counters for the kernels timed above (Nsight Compute; it reads them on some
# of this workplace's machines and not on others). Not part of the pass/fail.
ncu_bin=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu \
  2>/dev/null | tail -n 1)
profile="not run (no ncu)"
limit=$(time_for 120)
if [ "${GPU_CHECK_PROFILE:-1}" = 0 ]; then
  profile="not run (GPU_CHECK_PROFILE=0)"
elif [ -n "$ncu_bin" ] && [ "$limit" -ge 30 ]; then
  start=$SECONDS
  timeout "$limit" "$ncu_bin" --profile-from-start off --clock-control none \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    "$py" benchmarks/profile_kernels.py >"$outdir/ncu.txt" 2>&1
  profile="$(status $?) in $((SECONDS - start)) s: ncu.txt"
elif [ -n "$ncu_bin" ]; then
  profile="skipped (budget spent)"
fi

{
  echo "# pykernels GPU check"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- commit: ${GPU_CHECK_COMMIT:-$(git describe --always --dirty 2>/dev/null || echo unknown)}"
  echo "- GPU: $(tail -n +2 "$outdir/nvidia-smi.txt" | head -n 1)"
  echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) cores)"
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---|"
  echo "| build (PYKERNELS_CUDA=ON) | $(status $build) | $build_s |"
  echo "| GPU tests (--require-gpu) | $(status $gpu_tests): $(tail -n 1 "$outdir/gpu_tests.txt") | $tests_s |"
  printf '%s' "$bench_steps"
  echo "| winograd sweep | $sweep | |"
  echo "| Nsight Compute profile | $profile | |"
  echo
  echo '```'
  cat "$outdir/info.txt"
  for suite in $suites; do
    echo
    [ -f "$outdir/bench_$suite.txt" ] && sed -n '/^== /,$p' "$outdir/bench_$suite.txt"
  done
  echo
  [ -f "$outdir/winograd_sweep.txt" ] && cat "$outdir/winograd_sweep.txt"
  echo '```'
} >"$outdir/results.md"
cat "$outdir/results.md"
if [ -n "$bundle" ]; then
  tar czf "$bundle" -C "$(dirname "$outdir")" "$(basename "$outdir")"
fi
[ $build -eq 0 ] && [ $gpu_tests -eq 0 ] && [ $bench -eq 0 ]

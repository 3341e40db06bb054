#!/usr/bin/env bash
# benchmarks/gpu_check.sh OUTDIR
#
# One run on a GPU machine without a package registry: build pykernels from
# this checkout with the preinstalled build tools, run the GPU tests with
# --require-gpu, run the GPU benchmarks, and write a short table to
# OUTDIR/results.md (plus the logs it came from). Meant to finish well under
# 10 minutes; it keeps going after a failed step so the table says what failed.
set -uo pipefail
outdir=${1:?usage: benchmarks/gpu_check.sh OUTDIR}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
cd "$(dirname "$0")/.."

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
PYKERNELS_CUDA=ON "$py" -m pip install --no-build-isolation --no-deps -v . \
  >"$outdir/build.log" 2>&1
build=$?
build_s=$((SECONDS - start))

# From outside the checkout so the installed package (with _cuda) is imported.
(cd /tmp && "$py" -m pykernels info) >"$outdir/info.txt" 2>&1

start=$SECONDS
"$py" -m pytest tests -m gpu --require-gpu -q -p no:cacheprovider -rs \
  >"$outdir/gpu_tests.txt" 2>&1
gpu_tests=$?
tests_s=$((SECONDS - start))

# One suite per call, each with its own time limit, so a slow or failing
# suite cannot take the rest down with it.
suites="peak relu-gpu gemm-gpu gemm-ladder-all conv-gpu bandwidth-gpu lstm-gpu alexnet-gpu"
bench=0
bench_steps=""
for suite in $suites; do
  start=$SECONDS
  (cd /tmp && timeout 150 "$py" -m pykernels bench "$suite" --threads "$(nproc)" --repeats 5 \
    --json "$outdir/bench_$suite.json") >"$outdir/bench_$suite.txt" 2>&1
  rc=$?
  [ $rc -eq 0 ] || bench=$rc
  bench_steps="$bench_steps| bench $suite | $(status $rc) | $((SECONDS - start)) |
"
done

{
  echo "# pykernels GPU check"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- GPU: $(tail -n +2 "$outdir/nvidia-smi.txt" | head -n 1)"
  echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) cores)"
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---|"
  echo "| build (PYKERNELS_CUDA=ON) | $(status $build) | $build_s |"
  echo "| GPU tests (--require-gpu) | $(status $gpu_tests): $(tail -n 1 "$outdir/gpu_tests.txt") | $tests_s |"
  printf '%s' "$bench_steps"
  echo
  echo '```'
  cat "$outdir/info.txt"
  for suite in $suites; do
    echo
    sed -n '/^== /,$p' "$outdir/bench_$suite.txt"
  done
  echo '```'
} >"$outdir/results.md"
cat "$outdir/results.md"
[ $build -eq 0 ] && [ $gpu_tests -eq 0 ] && [ $bench -eq 0 ]

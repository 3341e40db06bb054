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

(cd /tmp && "$py" -m pykernels bench relu relu-gpu --threads 1,"$(nproc)" --repeats 7 \
  --json "$outdir/bench.json") >"$outdir/bench.txt" 2>&1
bench=$?

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
  echo "| benchmarks | $(status $bench) | |"
  echo
  echo '```'
  cat "$outdir/info.txt"
  echo
  sed -n '/^== /,$p' "$outdir/bench.txt"
  echo '```'
} >"$outdir/results.md"
cat "$outdir/results.md"
[ $build -eq 0 ] && [ $gpu_tests -eq 0 ] && [ $bench -eq 0 ]

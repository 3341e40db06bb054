#!/usr/bin/env bash
# Distributed-training checks and measurements on one machine (README,
# "Distributed training"): the MPI tests, allreduce alpha/B, 2 ranks x 1 thread
# against 1 process x 2 threads (interleaved, REPS times), full-size compute
# times, and the cost-model table. Usage: tools/mpi_check.sh [OUTDIR] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-mpi_results}
reps=${2:-3}
mkdir -p "$out"
py=${PYTHON:-python}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun=(mpirun --oversubscribe --bind-to none)

"$py" -m pytest -q -p no:cacheprovider tests/test_distributed.py | tail -3
OMP_NUM_THREADS=1 "${mpirun[@]}" -n 2 "$py" tools/mpi_scaling.py allreduce | tee "$out/allreduce.json"
: > "$out/train.jsonl"
for _ in $(seq "$reps"); do
  for model in lenet resnet20; do
    OMP_NUM_THREADS=1 "${mpirun[@]}" -n 2 "$py" tools/mpi_scaling.py train "$model" 2 \
      | tee -a "$out/train.jsonl"
    OMP_NUM_THREADS=2 "$py" tools/mpi_scaling.py train "$model" 2 | tee -a "$out/train.jsonl"
    OMP_NUM_THREADS=1 "$py" tools/mpi_scaling.py train "$model" 2 | tee -a "$out/train.jsonl"
  done
done
OMP_NUM_THREADS=2 "$py" tools/mpi_scaling.py compute | tee "$out/compute.json"
echo "uptime: $(uptime)" | tee "$out/load.txt"

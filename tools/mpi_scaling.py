"""Measurements behind the README's "Distributed training" numbers.

    mpirun -n 2 python tools/mpi_scaling.py allreduce        # alpha, B of this machine
    mpirun -n 2 python tools/mpi_scaling.py train resnet20   # 2 ranks x 1 thread
    OMP_NUM_THREADS=2 python tools/mpi_scaling.py train resnet20  # 1 process x 2 threads
    python tools/mpi_scaling.py compute                      # per-sample step times
    python tools/mpi_scaling.py model [ALPHA_S]               # the cost-model table

Each prints one JSON line (rank 0 only). tools/mpi_check.sh runs them all.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

import pykernels
from pykernels import distributed, nn, optim
from pykernels.data import Batches
from pykernels.train import PRESETS, load_dataset, train_step


def _world():
    return distributed.world() if distributed.launched_by_mpi() else None


def allreduce(repeats: int = 15) -> dict:
    MPI = distributed.mpi()
    comm = MPI.COMM_WORLD
    rows = []
    for floats in (256, 4096, 65536, 2**18, 2**20, 2**22, 2**24):
        buf = np.ones(floats, np.float32)
        times = []
        for _ in range(repeats):
            comm.Barrier()
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            times.append(time.perf_counter() - start)
        # the slowest rank's time is the collective's time
        worst = comm.allreduce(float(np.median(times)), op=MPI.MAX)
        rows.append((floats * 4, worst))
    alpha, bandwidth = distributed.fit_alpha_beta([r[0] for r in rows], [r[1] for r in rows],
                                                  comm.Get_size())
    return {"ranks": comm.Get_size(), "bytes_seconds": rows, "alpha_s": alpha,
            "bandwidth_bytes_per_s": bandwidth}


def train(model_name: str, epochs: int = 3, batch: int = 64) -> dict:
    comm = _world()
    preset = PRESETS[model_name]
    nn.manual_seed(0)
    x, y, _, _ = load_dataset("digits")
    x = preset.shape(x)
    model = preset.build(10)
    dp = None
    if comm is not None and comm.Get_size() > 1:
        dp = distributed.DataParallel(model, comm, measure_wait=True)
        batches = distributed.ShardedBatches(x, y, batch, dp.rank, dp.size)
    else:
        batches = Batches(x, y, batch)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    per_epoch = []
    for _ in range(epochs):
        start = time.perf_counter()
        for xb, yb, *count in batches:
            if dp is None:
                train_step(model, loss_fn, opt, xb, yb)
            else:
                dp.train_step(loss_fn, opt, xb, yb, *count)
        per_epoch.append(time.perf_counter() - start)
    out = {"model": model_name, "ranks": 1 if dp is None else dp.size,
           "threads": pykernels.get_num_threads(), "global_batch": batch,
           "epoch_seconds": per_epoch, "median_epoch_s": float(np.median(per_epoch)),
           "params": int(sum(p.data.size for p in model.parameters()))}
    if dp is not None:
        out["allreduce_s_per_epoch"] = dp.buckets.seconds / epochs
        out["wait_s_per_epoch"] = dp.buckets.wait_seconds / epochs
        out["steps_per_epoch"] = len(batches)
    return out


def compute(repeats: int = 3) -> dict:
    """Seconds per sample of forward+backward+SGD at full size: AlexNet on
    224x224x3 (61M parameters) and ResNet-20 on 32x32x3 (0.27M)."""
    from pykernels import models

    cases = {"alexnet": (models.AlexNet(1000), (3, 224, 224), 4),
             "resnet20": (models.ResNet20(10), (3, 32, 32), 32)}
    rng = np.random.default_rng(0)
    out = {"threads": pykernels.get_num_threads()}
    for name, (model, shape, batch) in cases.items():
        xb = rng.standard_normal((batch, *shape)).astype(np.float32)
        yb = rng.integers(0, 10, batch)
        opt = optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            train_step(model, nn.CrossEntropyLoss(), opt, xb, yb)
            times.append(time.perf_counter() - start)
        out[name] = {"params": int(sum(p.data.size for p in model.parameters())),
                     "batch": batch, "step_s": float(np.median(times)),
                     "per_sample_s": float(np.median(times)) / batch}
    return out


def model_table(alpha_s: float = 5e-6, compute_per_sample=None) -> dict:
    """The README table: ring allreduce on 25 and 100 Gb/s for AlexNet and
    ResNet-20, per-rank batch 128 (AlexNet) and 128 (ResNet-20)."""
    per_sample = compute_per_sample or {"alexnet": None, "resnet20": None}
    models_ = {}
    for name, params in (("alexnet", 61.1e6), ("resnet20", 0.272e6)):
        if per_sample.get(name):
            models_[name] = (params, per_sample[name] * 128)
    networks = {"25Gb/s": 25e9 / 8, "100Gb/s": 100e9 / 8}
    rows = distributed.scaling_table(models_, networks, alpha_s=alpha_s)
    return {"alpha_s": alpha_s, "rows": [r.__dict__ for r in rows]}


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "allreduce":
        result = allreduce()
    elif what == "train":
        result = train(sys.argv[2], *(int(v) for v in sys.argv[3:]))
    elif what == "compute":
        result = compute()
    elif what == "model":
        per_sample = json.loads(os.environ["PER_SAMPLE"]) if "PER_SAMPLE" in os.environ else None
        result = model_table(float(sys.argv[2]) if len(sys.argv) > 2 else 5e-6, per_sample)
    else:
        sys.exit(f"unknown {what!r}")
    comm = _world()
    if comm is None or comm.Get_rank() == 0:
        print(json.dumps(result), flush=True)

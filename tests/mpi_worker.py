"""Programs that tests/test_distributed.py runs under `mpirun -n 2`.

    python mpi_worker.py equivalence OUTDIR
        k data-parallel SGD steps of a few small models; every rank writes
        its final weights to OUTDIR/<case>_rank<r>.npz for the test to
        compare with one process on the whole batch.
    python mpi_worker.py die
        rank 1 exits (os._exit) while rank 0 waits in Allreduce.
    python mpi_worker.py crash-at STEP -- CLI ARGS...
        `pykernels train ... --distributed` where rank 1 raises at its
        STEP-th training step (counted from 1), to test the abort and resume.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

STEPS = 4
SEED = 7

# name -> (model kind, global batch, sync_bn)
CASES = {
    "lenet": ("lenet", 64, False),
    "lenet_uneven": ("lenet", 61, False),   # shards of 31 and 30 samples
    "bn_sync": ("bn", 64, True),
    "bn_local": ("bn", 64, False),          # per-rank BN: must NOT match one process
}


def build(kind: str):
    from pykernels import models, nn

    nn.manual_seed(SEED)
    if kind == "lenet":
        return models.LeNet5(10, 1, 8)
    # ResNet-shaped and small: BN after every conv, a projection shortcut, BN1d at the head.
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        models.basic_block(8, 12, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 16), nn.BatchNorm1d(16),
        nn.ReLU(), nn.Linear(16, 10))


def digits():
    from pykernels import data

    x, y = data.load_digits()
    x = ((x - 8.0) / 8.0).astype(np.float32)[:, None]
    return x, y


def optimizer_for(model):
    from pykernels import optim

    return optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4,
                     nesterov=True)


def equivalence(outdir: Path) -> None:
    from pykernels import distributed, nn

    comm = distributed.world()
    x, y = digits()
    for name, (kind, batch, sync_bn) in CASES.items():
        dp = distributed.DataParallel(build(kind), comm, sync_bn=sync_bn,
                                      bucket_bytes=64 * 1024)  # several buckets
        optimizer = optimizer_for(dp.model)
        loss_fn = nn.CrossEntropyLoss()
        batches = distributed.ShardedBatches(x, y, batch, comm.Get_rank(), comm.Get_size(),
                                             seed=SEED)
        for step, (xb, yb, count) in enumerate(batches):
            if step == STEPS:
                break
            dp.train_step(loss_fn, optimizer, xb, yb, count)
        np.savez(outdir / f"{name}_rank{comm.Get_rank()}.npz", **dp.model.state_dict())


def crash_at(step: int, cli_args) -> int:
    from pykernels import cli, distributed

    comm = distributed.world()
    original = distributed.DataParallel.train_step
    calls = [0]

    def failing(self, *args, **kwargs):
        calls[0] += 1
        if comm.Get_rank() == 1 and calls[0] == step:
            raise RuntimeError(f"injected failure at step {step}")
        return original(self, *args, **kwargs)

    distributed.DataParallel.train_step = failing
    return cli.main(cli_args)


if __name__ == "__main__":
    if sys.argv[1] == "equivalence":
        from pykernels import distributed

        distributed.run_or_abort(lambda: equivalence(Path(sys.argv[2])))
    elif sys.argv[1] == "die":  # rank 1 vanishes while rank 0 waits in a collective
        import os

        from pykernels import distributed

        comm = distributed.world()
        if comm.Get_rank() == 1:
            os._exit(3)
        comm.Allreduce(distributed.mpi().IN_PLACE, np.zeros(4, np.float32))
    elif sys.argv[1] == "crash-at":
        sys.exit(crash_at(int(sys.argv[2]), sys.argv[4:]))
    else:
        sys.exit(f"unknown mode {sys.argv[1]!r}")

"""One AlexNet training step (full width, 3x224x224, forward + backward +
SGD) at batch 4 on all threads: slow, so a fixed 3 rounds after a warm-up."""

import numpy as np
import pytest

BATCH = 4


@pytest.mark.benchmark(group="alexnet train step b4")
def test_alexnet_train_step(benchmark):
    from pykernels import models, nn, optim
    from pykernels.bench.alexnet import step_flops
    from pykernels.train import train_step

    nn.manual_seed(0)
    model = models.AlexNet()
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 3, 224, 224), dtype=np.float32)
    y = rng.integers(0, 1000, BATCH)
    benchmark.extra_info.update(op="alexnet step", batch=BATCH,
                                flops=step_flops(model, BATCH)["per_step"])
    benchmark.pedantic(train_step, args=(model, loss_fn, opt, x, y), rounds=3,
                       warmup_rounds=1)

"""Training-step throughput (forward, loss, backward, SGD step) of LeNet-5 and
ResNet-20 at batch 64 and AlexNet at batch 8, pykernels against the same
network in PyTorch CPU with the same weights, same thread count, interleaved
medians; and pykernels with the NumPy reference's SGD update instead of the
fused kernel (what the fused step buys)."""

from __future__ import annotations


import numpy as np

from .. import models, nn, optim
from .timing import interleaved_medians, pinned_threads

# name, model factory, input shape (C, H, W), batch
NETWORKS = (
    ("lenet5 (1x32x32)", lambda: models.LeNet5(10, 1, 32), (1, 32, 32), 64),
    ("resnet20 (3x32x32)", lambda: models.ResNet20(10, 3), (3, 32, 32), 64),
    ("alexnet (3x224x224)", lambda: models.AlexNet(1000, 3), (3, 224, 224), 8),
)


def sgd_step(model, x, y, weight_decay: float = 0.0, fused: bool = True):
    """One training step of `model` on (x, y) as a callable: forward,
    cross-entropy, backward, SGD with momentum; the benchmarks time it."""
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=weight_decay,
                    fused=fused)

    def step():
        opt.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        opt.step()

    return step


def _torch_step(torch, twin, x, y):
    opt = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(twin(tx), ty).backward()
        opt.step()

    return step


def run(threads=(2,), repeats: int = 5, quick: bool = False, **_):
    try:
        import torch
    except ImportError:
        torch = None
    from .torch_twin import copy_weights, to_torch

    rows = []
    rng = np.random.default_rng(0)
    for name, build, shape, batch in NETWORKS[:2] if quick else NETWORKS:
        nn.manual_seed(0)
        model = build()
        model.train()
        x = rng.standard_normal((batch, *shape), dtype=np.float32)
        y = rng.integers(0, 10, batch)
        # Two optimisers over one model: each timed step also moves the
        # weights the other sees, which changes nothing that is timed.
        cases = {"pykernels": sgd_step(model, x, y),
                 "numpy sgd": sgd_step(model, x, y, fused=False)}
        if torch is not None:
            twin = to_torch(model, torch)
            copy_weights(model, twin, torch)
            twin.train()
            cases["torch"] = _torch_step(torch, twin, x, y)
        for t in threads:
            with pinned_threads(t):  # PyTorch's pool too, once imported
                med = interleaved_medians(cases, repeats=repeats, min_sample_s=0.2)
            row = {"network": name, "batch": batch, "threads": t,
                   "pykernels img/s": batch / med["pykernels"],
                   "fused SGD gain": med["numpy sgd"] / med["pykernels"]}
            if "torch" in med:
                row["torch img/s"] = batch / med["torch"]
                row["vs torch"] = med["torch"] / med["pykernels"]
            else:
                row["vs torch"] = "skipped: torch not installed"
            rows.append(row)
    return rows

"""Training and evaluation loops, and the model/data presets that the
`pykernels train` and `pykernels eval` commands use."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import data, models, nn, optim
from .nn.module import move


@dataclass
class Preset:
    """How a model is built and how the data is shaped for it."""

    build: Callable[[int], nn.Module]           # num_classes -> model
    shape: Callable[[np.ndarray], np.ndarray]   # (N, H, W) images -> model input
    lr: float
    batch_size: int = 32
    epochs: int = 20


def _images(x):
    return x[:, None]


def _upsample8(x):
    # AlexNet's stride-4 11x11 stem needs at least 63x63: repeat each pixel 8x8.
    return np.ascontiguousarray(np.kron(x, np.ones((8, 8), np.float32))[:, None])


PRESETS = {
    "lenet": Preset(lambda k, side=8: models.LeNet5(k, 1, side), _images, lr=0.05),
    "resnet20": Preset(lambda k: models.ResNet20(k, in_channels=1), _images, lr=0.05,
                       epochs=10),
    "alexnet": Preset(lambda k: models.AlexNet(k, in_channels=1, width=0.25, dropout=0.3),
                      _upsample8, lr=0.01, epochs=10),
    "lstm": Preset(lambda k: models.LSTMClassifier(8, 64, k), lambda x: x, lr=0.1),
}


def load_dataset(name: str, seed: int = 0, test_fraction: float = 0.2):
    """(x_train, y_train, x_test, y_test) normalised with the training stats.
    `name` is 'digits' or a directory holding MNIST IDX files."""
    if name == "digits":
        x, y = data.load_digits()
    else:
        x, y = data.load_mnist(name)
    x_train, y_train, x_test, y_test = data.train_test_split(x, y, test_fraction, seed)
    norm = data.Normalizer.fit(x_train)
    return norm(x_train), y_train, norm(x_test), y_test


def evaluate(model: nn.Module, x, y, batch_size: int = 256) -> float:
    """Accuracy of `model` (in eval mode) on host arrays (x, y); batches go to
    the model's device."""
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        xb = move(np.ascontiguousarray(x[start:start + batch_size]), model.device)
        yb = move(y[start:start + batch_size], model.device)
        correct += int((model(xb).argmax(axis=1) == yb).sum())
    return correct / max(1, len(x))


def train_step(model: nn.Module, loss_fn, optimizer, xb, yb):
    """One forward, backward and SGD step; returns (loss, correct)."""
    optimizer.zero_grad()
    logits = model(xb)
    loss = loss_fn(logits, yb)
    model.backward(loss_fn.backward())
    optimizer.step()
    return loss, int((logits.argmax(axis=1) == yb).sum())


def fit(model_name: str, dataset: str = "digits", epochs: int | None = None, seed: int = 0,
        batch_size: int | None = None, lr: float | None = None, progress: bool = True,
        out: str | None = None, distributed: bool = False, sync_bn: bool = False,
        checkpoint: str | None = None, resume: bool = False, report: dict | None = None,
        device: str = "cpu"):
    """Train a preset model; returns (model, test accuracy, seconds).

    distributed: data-parallel over MPI.COMM_WORLD (pykernels.distributed);
    batch_size is then the global batch, split across the ranks, and only
    rank 0 shows progress and writes files. sync_bn: synchronized batch norm.
    checkpoint: written after every epoch (weights, momentum, epoch, RNG
    state); resume: start after the epoch it holds. report: a dict filled
    with timings (epoch_seconds, allreduce_seconds, ranks). device: 'cpu' or
    'cuda'; each batch is copied to the device as it is used."""
    preset = PRESETS[model_name]
    if distributed and device != "cpu":
        raise ValueError("distributed training runs on the CPU; use device='cpu'")
    epochs = epochs or preset.epochs
    nn.manual_seed(seed)
    x_train, y_train, x_test, y_test = load_dataset(dataset, seed)
    x_train, x_test = preset.shape(x_train), preset.shape(x_test)
    classes = int(max(y_train.max(), y_test.max())) + 1
    model = preset.build(classes).to(device)
    dp = None
    if distributed:
        from .distributed import DataParallel

        dp = DataParallel(model, sync_bn=sync_bn)  # broadcasts rank 0's weights
        model = dp.model
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=lr or preset.lr, momentum=0.9,
                          weight_decay=1e-4, nesterov=True)
    schedule = optim.StepLR(optimizer, step_size=max(1, (epochs * 2) // 3), gamma=0.1)
    if dp is None:
        batches = data.Batches(x_train, y_train, batch_size or preset.batch_size, seed=seed)
    else:
        from .distributed import ShardedBatches

        batches = ShardedBatches(x_train, y_train, batch_size or preset.batch_size, dp.rank,
                                 dp.size, seed=seed)
        progress = progress and dp.rank == 0
    first_epoch = 0
    if resume:
        from .distributed import load_checkpoint

        first_epoch = load_checkpoint(checkpoint, model_name, model, optimizer, schedule, batches)
    writes = dp is None or dp.rank == 0
    report = {} if report is None else report
    report.update(epoch_seconds=[], allreduce_seconds=0.0, ranks=1 if dp is None else dp.size)
    start = time.perf_counter()
    for epoch in range(first_epoch, epochs):
        epoch_start = time.perf_counter()
        if dp is not None:
            dp.seed_epoch(seed, epoch)  # dropout masks differ by rank, reproducibly
        model.train()
        bar = _progress(batches, f"epoch {epoch + 1}/{epochs}", progress)
        seen = correct = 0
        total_loss = 0.0
        for xb, yb, *global_count in bar:
            xb, yb = move(xb, device), move(yb, device)
            if dp is None:
                loss, hits = train_step(model, loss_fn, optimizer, xb, yb)
            else:
                loss, hits = dp.train_step(loss_fn, optimizer, xb, yb, *global_count)
            seen += len(yb)
            correct += hits
            total_loss += loss * len(yb)
            if hasattr(bar, "set_postfix"):  # tqdm may be missing: then no bar at all
                bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}")
        schedule.step()
        report["epoch_seconds"].append(time.perf_counter() - epoch_start)
        if checkpoint and writes:
            from .distributed import save_checkpoint

            save_checkpoint(checkpoint, model_name, epoch + 1, model, optimizer, schedule,
                            batches)
    seconds = time.perf_counter() - start
    if dp is not None:
        report["allreduce_seconds"] = dp.allreduce_seconds
    accuracy = evaluate(model, x_test, y_test)
    if out and writes:
        model.save(out)
    return model, accuracy, seconds


def _progress(iterable, desc, enabled):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=desc, leave=False)


def eval_saved(model_name: str, weights: str, dataset: str = "digits", seed: int = 0) -> float:
    """Accuracy on the held-out split of weights saved by `fit`."""
    preset = PRESETS[model_name]
    _, y_train, x_test, y_test = load_dataset(dataset, seed)
    model = preset.build(int(max(y_train.max(), y_test.max())) + 1)
    model.load(weights)
    return evaluate(model, preset.shape(x_test), y_test)

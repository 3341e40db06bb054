"""Whole training steps with the shifted-rows forward (mode 1, the rule)
against packed panels (`_cpu.conv_shifted_rows(0)`), interleaved medians of 9,
1 and 2 threads: ResNet-20 at batch 64 (32x32, 3 channels; its dx passes of
stride-1 layers run as forwards, so they take the path too), LeNet-5 at
batch 64 on the 8x8 digits (whose 5x5 convolutions pad by 2) and at 32x32
(the classic "valid" ones)."""
import numpy as np

from pykernels import _cpu, models, nn
from pykernels.bench.timing import interleaved_medians, pinned_threads, with_setting
from pykernels.bench.training import sgd_step

rng = np.random.default_rng(0)
nn.manual_seed(0)
NETS = [
    ("resnet20 b64", models.ResNet20(10, 3), (64, 3, 32, 32)),
    ("lenet5 digits b64", models.LeNet5(10, 1, 8), (64, 1, 8, 8)),
    ("lenet5 32x32 b64", models.LeNet5(10, 1, 32), (64, 1, 32, 32)),
]
for name, model, shape in NETS:
    model.train()
    x = rng.standard_normal(shape, dtype=np.float32)
    y = rng.integers(0, 10, shape[0])
    step = sgd_step(model, x, y)

    cases = {"shifted": with_setting(_cpu.conv_shifted_rows, 1, step),
             "panels": with_setting(_cpu.conv_shifted_rows, 0, step)}
    for t in (1, 2):
        with pinned_threads(t):
            med = interleaved_medians(cases, repeats=9, min_sample_s=0.2)
        print(f"{name} t{t}", {k: round(v * 1e3, 2) for k, v in med.items()},
              "gain", round(med["panels"] / med["shifted"], 3), flush=True)

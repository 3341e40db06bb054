"""Whole training steps with a conv path on (mode 1, the rule) against off
(mode 0), interleaved medians of 9, 1 and 2 threads: ResNet-20 at batch 64
(32x32, 3 channels), LeNet-5 at batch 64 on the 8x8 digits (whose 5x5
convolutions pad by 2) and at 32x32 (the classic "valid" ones).
`python training_step.py` (the default, `forward`): the forward's shifted
rows (`_cpu.conv_shifted_rows`) against packed panels; ResNet-20's stride-1
dx passes run as forwards, so they take the path too.
`python training_step.py dw`: the weight gradient's dot tiles
(`_cpu.conv_dw_shifted_rows`) against its GEMM paths."""
import sys

import numpy as np

from pykernels import _cpu, models, nn
from pykernels.bench.timing import interleaved_medians, pinned_threads, with_setting
from pykernels.bench.training import sgd_step

HOOKS = {"forward": (_cpu.conv_shifted_rows, "shifted", "panels"),
         "dw": (_cpu.conv_dw_shifted_rows, "dot tiles", "GEMM")}
hook, on, off = HOOKS[sys.argv[1] if len(sys.argv) > 1 else "forward"]

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

    cases = {on: with_setting(hook, 1, step), off: with_setting(hook, 0, step)}
    for t in (1, 2):
        with pinned_threads(t):
            med = interleaved_medians(cases, repeats=9, min_sample_s=0.2)
        print(f"{name} t{t}", {k: round(v * 1e3, 2) for k, v in med.items()},
              "gain", round(med[off] / med[on], 3), flush=True)

"""A whole ResNet-20 training step (batch 64) with the weight gradient packed
from the image against im2col (`_cpu.conv_dw_from_image`), interleaved
medians of 9, 1 and 2 threads."""
import numpy as np
from pykernels import models, nn, _cpu
from pykernels.bench.training import sgd_step
from pykernels.bench.timing import interleaved_medians, pinned_threads, with_setting

rng = np.random.default_rng(0)
nn.manual_seed(0)
model = models.ResNet20(10, 3)
model.train()
x = rng.standard_normal((64, 3, 32, 32), dtype=np.float32)
y = rng.integers(0, 10, 64)
step = sgd_step(model, x, y)


cases = {"from image": with_setting(_cpu.conv_dw_from_image, True, step),
         "im2col": with_setting(_cpu.conv_dw_from_image, False, step)}
for t in (1, 2):
    with pinned_threads(t):
        med = interleaved_medians(cases, repeats=9, min_sample_s=0.2)
    print(f"resnet20 b64 t{t}", {k: round(v * 1e3, 1) for k, v in med.items()},
          "gain", round(med["im2col"] / med["from image"], 3), flush=True)

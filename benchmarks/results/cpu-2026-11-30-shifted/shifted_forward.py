"""The forward alone: shifted rows (B read in place from a padded image)
forced on every shape (`_cpu.conv_shifted_rows(2)`, also where the rule
leaves packed panels) against packed panels (`conv_shifted_rows(0)`: from
the image at 256+ column rows, from phase planes or an explicit im2col
otherwise, the path before shifted rows) and PyTorch, with a bias,
interleaved medians of 9, 1 and 2 threads. The last column says which one
the rule (mode 1, the default) takes. `python shifted_forward.py valid` times
stride-1 convolutions whose outputs are narrower than the input instead."""
import sys

import numpy as np
import torch

from pykernels import _cpu
from pykernels._functional.conv import conv2d_workspace_bytes
from pykernels.bench.timing import interleaved_medians, pinned_threads, with_setting

SHAPES = [  # name, batch, in, out, size, kernel, padding
    ("resnet 16->16 32x32 b64", 64, 16, 16, 32, 3, 1),
    ("resnet 32->32 16x16 b64", 64, 32, 32, 16, 3, 1),
    ("resnet 64->64 8x8 b64", 64, 64, 64, 8, 3, 1),
    ("resnet 3->16 32x32 b64", 64, 3, 16, 32, 3, 1),
    ("resnet 16->16 32x32 b1", 1, 16, 16, 32, 3, 1),
    ("lenet 6->16 14x14 pad 2 b64", 64, 6, 16, 14, 5, 2),
    ("32->32 8x8 b64", 64, 32, 32, 8, 3, 1),
    ("32->32 32x32 b16", 16, 32, 32, 32, 3, 1),
    ("64->64 16x16 b16", 16, 64, 64, 16, 3, 1),
    ("64->64 32x32 b8", 8, 64, 64, 32, 3, 1),
    ("128->128 16x16 b16", 16, 128, 128, 16, 3, 1),
    ("128->128 8x8 b32", 32, 128, 128, 8, 3, 1),
    ("alexnet conv2 b8", 8, 64, 192, 27, 5, 2),
    ("alexnet conv3 b8", 8, 192, 384, 13, 3, 1),
    ("alexnet conv4 b8", 8, 384, 256, 13, 3, 1),
    ("alexnet conv5 b8", 8, 256, 256, 13, 3, 1),
]
VALID = [
    ("lenet 1->6 32x32 valid b64", 64, 1, 6, 32, 5, 0),
    ("lenet 6->16 14x14 valid b64", 64, 6, 16, 14, 5, 0),
    ("16->16 32x32 valid 3x3 b64", 64, 16, 16, 32, 3, 0),
    ("64->64 16x16 valid 3x3 b16", 16, 64, 64, 16, 3, 0),
    ("3->64 56x56 valid 7x7 b8", 8, 3, 64, 56, 7, 0),
    ("64->192 27x27 valid 5x5 b8", 8, 64, 192, 27, 5, 0),
]
if sys.argv[1:] == ["valid"]:
    SHAPES = VALID
rng = np.random.default_rng(0)
for name, n, c, o, h, k, p in SHAPES:
    x = rng.standard_normal((n, c, h, h), dtype=np.float32)
    w = rng.standard_normal((o, c, k, k), dtype=np.float32)
    b = rng.standard_normal(o, dtype=np.float32)
    out = h + 2 * p - k + 1
    y = np.empty((n, o, out, out), np.float32)
    xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)

    def forward():
        _cpu.conv2d_forward(x, w, b, y, (1, 1), (p, p), (1, 1), 1)

    cases = {"shifted": with_setting(_cpu.conv_shifted_rows, 2, forward),
             "panels": with_setting(_cpu.conv_shifted_rows, 0, forward),
             "torch": lambda: torch.nn.functional.conv2d(xt, wt, bt, 1, p)}
    def workspace(mode):
        return with_setting(_cpu.conv_shifted_rows, mode, lambda: conv2d_workspace_bytes(
            x.shape, w.shape, padding=p, threads=1))()

    rule = "shifted" if workspace(1) == workspace(2) else "panels"
    for t in (1, 2):
        with pinned_threads(t):
            m = interleaved_medians(cases, repeats=9, min_sample_s=0.05)
        print(f"{name:28s} t{t}: " + "  ".join(f"{k} {v * 1e3:7.3f} ms" for k, v in m.items()) +
              f"   panels/shifted {m['panels'] / m['shifted']:.2f}x"
              f"  torch/shifted {m['torch'] / m['shifted']:.2f}x  rule: {rule}", flush=True)

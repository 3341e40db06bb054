"""Stride-1 conv backward (dx, dW, db) with dx as a forward convolution of dy
against W^T @ dy + col2im (`_cpu.conv_dx_as_forward`), interleaved medians.

    python conv_dx_as_forward.py          # dxfwd.txt: ResNet / AlexNet layers, with PyTorch,
                                          # 1 and 2 threads (the new path forced on every shape)
    python conv_dx_as_forward.py rule     # dxfwd_rule.txt: LeNet, the ResNet stem and
                                          # ResNet layers, 2 threads, after the rule
"""
import sys

import numpy as np

import pykernels.functional as F
from pykernels import _cpu
from pykernels.bench.timing import interleaved_medians, pinned_threads, with_setting

rng = np.random.default_rng(0)
RULE = sys.argv[1:] == ["rule"]
# (batch, in, out, plane, kernel, padding)
SHAPES = ([(64, 1, 6, 32, 5, 0), (64, 6, 16, 14, 5, 0), (64, 3, 16, 32, 3, 1),
           (64, 16, 16, 32, 3, 1), (64, 32, 32, 16, 3, 1), (64, 64, 64, 8, 3, 1)] if RULE else
          [(64, 16, 16, 32, 3, 1), (64, 32, 32, 16, 3, 1), (64, 64, 64, 8, 3, 1),
           (16, 64, 192, 27, 5, 2), (16, 192, 384, 13, 3, 1), (16, 384, 256, 13, 3, 1)])


for t in (2,) if RULE else (1, 2):
    for n, c, o, hw, k, p in SHAPES:
        x = rng.standard_normal((n, c, hw, hw), dtype=np.float32)
        w = rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.1
        side = hw + 2 * p - k + 1
        dy = rng.standard_normal((n, o, side, side), dtype=np.float32)
        backward = lambda: F.conv2d_backward(dy, x, w, padding=p, algo="im2col")  # noqa: E731
        cases = {"as forward": with_setting(_cpu.conv_dx_as_forward, True, backward),
                 "col2im": with_setting(_cpu.conv_dx_as_forward, False, backward)}
        if not RULE:
            import torch

            tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
            tdy = torch.from_numpy(dy)
            cases["torch"] = lambda: torch.ops.aten.convolution_backward(
                tdy, tx, tw, [o], [1, 1], [p, p], [1, 1], False, [0, 0], 1, [True, True, True])
        with pinned_threads(t):
            med = interleaved_medians(cases, repeats=7)
        line = (f"t{t} N{n} {c}->{o} @{hw} k{k} p{p} "
                f"{ {name: round(v * 1e3, 2) for name, v in med.items()} } "
                f"gain {med['col2im'] / med['as forward']:.2f}")
        if "torch" in med:
            line += (f" vs torch {med['torch'] / med['as forward']:.2f}"
                     f" (col2im vs torch {med['torch'] / med['col2im']:.2f})")
        print(line, flush=True)

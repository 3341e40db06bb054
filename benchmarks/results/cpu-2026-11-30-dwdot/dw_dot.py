"""The weight gradient as dot tiles against the GEMM paths it replaced
(`_cpu.conv_dw_shifted_rows(2)` against `(0)`), dW alone (conv2d_backward
with dx and db skipped), and PyTorch's forward + weight gradient for scale;
interleaved medians of 7, per thread count. `python dw_dot.py THREADS`."""
import sys

import numpy as np
import torch

from pykernels import _cpu
from pykernels.bench.timing import interleaved_medians, pinned_threads, with_setting

# (batch, C, O, H = W, kernel, padding)
CASES = [
    (64, 16, 16, 32, 3, 1), (64, 32, 32, 16, 3, 1), (64, 64, 64, 8, 3, 1),  # ResNet-20
    (32, 64, 64, 8, 3, 1), (16, 64, 64, 8, 3, 1), (2, 64, 64, 8, 3, 1),
    (64, 3, 16, 32, 3, 1),                                                  # its stem
    (64, 1, 6, 32, 5, 0), (64, 6, 16, 14, 5, 0),                            # LeNet-5
    (16, 128, 128, 8, 3, 1), (16, 128, 128, 16, 3, 1), (4, 128, 128, 8, 3, 1),
    (4, 64, 64, 56, 3, 1),                                                  # ResNet-18 stage 1
    (8, 64, 192, 27, 5, 2), (8, 192, 384, 13, 3, 1), (8, 384, 256, 13, 3, 1),
    (8, 256, 256, 13, 3, 1),                                                # AlexNet conv2-5
]


def main(threads):
    rng = np.random.default_rng(0)
    print(f"threads {threads}: dW alone, GFLOP/s = 2*N*O*C*k*k*OH*OW / time")
    with pinned_threads(threads):
        for n, c, o, hw, k, p in CASES:
            out = hw + 2 * p - k + 1
            x = rng.standard_normal((n, c, hw, hw), dtype=np.float32)
            w = rng.standard_normal((o, c, k, k), dtype=np.float32)
            dy = rng.standard_normal((n, o, out, out), dtype=np.float32)
            dw = np.empty_like(w)
            tx, tw, tdy = torch.from_numpy(x), torch.from_numpy(w).requires_grad_(), torch.from_numpy(dy)

            def dw_only():
                _cpu.conv2d_backward(dy, x, w, None, dw, None, (1, 1), (p, p), (1, 1), 1)

            def torch_fwd_dw():
                y = torch.nn.functional.conv2d(tx, tw, None, 1, p)
                torch.autograd.grad(y, (tw,), tdy)

            med = interleaved_medians({
                "dot tiles": with_setting(_cpu.conv_dw_shifted_rows, 2, dw_only),
                "GEMM": with_setting(_cpu.conv_dw_shifted_rows, 0, dw_only),
                "torch fwd+dW": torch_fwd_dw,
            }, repeats=7)
            gf = 2 * n * o * c * k * k * out * out / 1e9
            print(f"  b{n:<3d} {c:>3d} -> {o:<3d} {k}x{k} on {hw}x{hw}: dot tiles "
                  f"{gf / med['dot tiles']:6.1f} GF/s, GEMM {gf / med['GEMM']:6.1f} GF/s, "
                  f"dot vs GEMM {med['GEMM'] / med['dot tiles']:.2f}x "
                  f"(torch fwd+dW {med['torch fwd+dW'] * 1e3:.2f} ms)", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2)

"""The weight gradient alone (conv2d_backward with dx and db skipped): cols^T
packed from the image against im2col (`_cpu.conv_dw_from_image`, which only
acts where the rule takes the new path: 256+ column rows), interleaved
medians of 15, 1 and 2 threads. Below 256 rows (ResNet's 16-channel and
LeNet's layers) both columns time the same path."""
import numpy as np
from pykernels import _backend
from pykernels.bench.timing import interleaved_medians, pinned_threads
cpu = _backend.cpu()
rng = np.random.default_rng(0)
SHAPES = [("resnet 16->16 32x32 b64", 64, 16, 16, 32, 3, 1), ("resnet 32->32 16x16 b64", 64, 32, 32, 16, 3, 1),
          ("resnet 64->64 8x8 b64", 64, 64, 64, 8, 3, 1), ("alexnet conv2 b8", 8, 64, 192, 27, 5, 2),
          ("alexnet conv3 b8", 8, 192, 384, 13, 3, 1), ("alexnet conv4 b8", 8, 384, 256, 13, 3, 1),
          ("lenet 6->16 b64 (pad 2)", 64, 6, 16, 14, 5, 2)]
for name, n, c, o, h, k, p in SHAPES:
    x = rng.standard_normal((n, c, h, h), dtype=np.float32)
    w = rng.standard_normal((o, c, k, k), dtype=np.float32)
    dy = rng.standard_normal((n, o, h, h), dtype=np.float32)
    dw = np.empty_like(w)
    def run(implicit):
        def f():
            cpu.conv_dw_from_image(implicit)
            cpu.conv2d_backward(dy, x, w, None, dw, None, (1, 1), (p, p), (1, 1), 1)
        return f
    for t in (1, 2):
        with pinned_threads(t):
            m = interleaved_medians({"implicit": run(True), "im2col": run(False)}, repeats=15, min_sample_s=0.05)
        print(f"{name:26s} t{t}: implicit {m['implicit']*1e3:7.2f} ms  im2col {m['im2col']*1e3:7.2f} ms  gain {m['im2col']/m['implicit']:.2f}x", flush=True)
cpu.conv_dw_from_image(True)

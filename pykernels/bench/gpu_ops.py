"""The GPU ops against PyTorch CUDA (cuDNN, TF32 off) and against the
device-to-device copy bandwidth, timed with CUDA events after warm-up,
interleaved, medians (bench/gpu.py):

- AlexNet's five convolutions at batch 128, forward and forward+backward:
  the default (algo="auto": Winograd for conv2-5 at this batch), im2col and,
  where it applies (conv2-5), algo="winograd";
- max/avg pooling, ReLU, batch norm and the SGD step as a fraction of copy
  bandwidth (bytes each must move: read input, write output, and the extra
  passes), timed with the queue kept ahead of the kernels and, beside it,
  as back-to-back Python calls (which the host's work per call can pace);
- the LSTM layer, I = H = 512, N = 64, T = 50, against cuDNN's nn.LSTM;
- one AlexNet training step at batch 128 on the GPU and on the CPU, images/s.
"""

from __future__ import annotations

import time

import numpy as np

from .. import functional as F
from .conv import ALEXNET, winograd_applies
from .gpu import copy_gbps, event_medians, torch_cuda


def _torch_fp32(torch):
    """cuDNN and cuBLAS in true FP32, as our kernels compute."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return torch


def _conv_cases(cupy, torch, name, c, o, k, s, p, hw, batch, backward):
    x = cupy.random.standard_normal((batch, c, hw, hw), dtype=cupy.float32)
    w = cupy.random.standard_normal((o, c, k, k), dtype=cupy.float32) * 0.01
    b = cupy.zeros(o, cupy.float32)
    y = F.conv2d(x, w, b, stride=s, padding=p)
    dy = cupy.ones_like(y)

    def ours(algo):
        def run():
            F.conv2d(x, w, b, stride=s, padding=p, algo=algo)
            if backward:
                F.conv2d_backward(dy, x, w, stride=s, padding=p, algo=algo)
        return run

    cases = {"pykernels": (ours("auto"), "cupy"), "im2col": (ours("im2col"), "cupy")}
    if winograd_applies(k, s, p):
        cases["winograd"] = (ours("winograd"), "cupy")
    if torch is not None:
        tx = torch.as_tensor(x, device="cuda").requires_grad_(backward)
        tw = torch.as_tensor(w, device="cuda").requires_grad_(backward)
        tb = torch.as_tensor(b, device="cuda").requires_grad_(backward)
        tdy = torch.as_tensor(dy, device="cuda")

        def cudnn():
            ty = torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p)
            if backward:
                ty.backward(tdy)

        cases["cuDNN"] = (cudnn, "torch")
    flops = 2.0 * batch * o * c * k * k * y.shape[2] * y.shape[3] * (3 if backward else 1)
    return cases, flops


def run_conv(batch: int = 128, repeats: int = 5, quick: bool = False, layers=ALEXNET, **_):
    """`layers`: (name, C, O, kernel, stride, padding, input size) as bench/conv.py's ALEXNET.
    TFLOP/s count the direct convolution's multiply-adds for every algorithm, so
    Winograd's (and cuDNN's FFT/Winograd) figures can exceed the FP32 peak."""
    import cupy

    torch = torch_cuda()
    torch = _torch_fp32(torch) if torch is not None else None
    rows = []
    for name, c, o, k, s, p, hw in (layers[:2] if quick else layers):
        for backward in (False, True):
            cases, flops = _conv_cases(cupy, torch, name, c, o, k, s, p, hw, batch, backward)
            med = event_medians(cases, repeats=repeats)
            row = {"layer": name, "batch": batch, "pass": "fwd+bwd" if backward else "fwd",
                   "auto takes": F.conv2d_algorithm((batch, c, hw, hw), (o, c, k, k), s, p,
                                                    device="cuda"),
                   "pykernels TFLOP/s": flops / med["pykernels"] / 1e12,
                   "im2col TFLOP/s": flops / med["im2col"] / 1e12}
            if "winograd" in med:
                row["winograd TFLOP/s"] = flops / med["winograd"] / 1e12
            if "cuDNN" in med:
                row["cuDNN TFLOP/s"] = flops / med["cuDNN"] / 1e12
                row["vs cuDNN"] = med["cuDNN"] / med["pykernels"]
                row["im2col vs cuDNN"] = med["cuDNN"] / med["im2col"]
            rows.append(row)
    return rows


ACTIVATION = (128, 64, 56, 56)  # a ResNet/AlexNet-sized activation, 98 MiB


def _memory_bound_cases(cupy, shape):
    """(name, fn, bytes moved) for the memory-bound ops on an activation of `shape`."""
    x = cupy.random.standard_normal(shape, dtype=cupy.float32)
    n = x.size * 4
    channels = shape[1]
    y_relu = cupy.empty_like(x)
    mean, var = cupy.zeros(channels, cupy.float32), cupy.ones(channels, cupy.float32)
    gamma, beta = cupy.ones(channels, cupy.float32), cupy.zeros(channels, cupy.float32)
    y_bn, save_mean, save_invstd = F.batch_norm(x, mean, var, gamma, beta, True)
    pooled, indices = F.max_pool2d(x, 3, 2, 1)
    w, g = x.copy(), cupy.random.standard_normal(shape, dtype=cupy.float32)
    v = cupy.zeros(shape, cupy.float32)
    return [
        ("relu fwd", lambda: F.relu(x, out=y_relu), 2 * n),
        ("max_pool2d 3x3/2 fwd", lambda: F.max_pool2d(x, 3, 2, 1),
         n + pooled.nbytes + indices.nbytes),
        ("avg_pool2d 2x2/2 fwd", lambda: F.avg_pool2d(x, 2, 2), n + n // 4),
        # Statistics read x once, normalisation reads it again and writes y.
        ("batch_norm train fwd", lambda: F.batch_norm(x, mean, var, gamma, beta, True), 3 * n),
        # Sums read dy and x; dx reads them again and writes dx.
        ("batch_norm bwd", lambda: F.batch_norm_backward(y_bn, x, gamma, save_mean,
                                                         save_invstd), 5 * n),
        # AlexNet's update (momentum, Nesterov, weight decay): reads w, g, v, writes w, v.
        ("sgd step", lambda: F.sgd_step(w, g, v, lr=0.01, momentum=0.9, weight_decay=5e-4,
                                        nesterov=True), 5 * n),
    ]


def run_bandwidth(repeats: int = 5, shape=ACTIVATION, copy_mib: int = 512, **_):
    import cupy

    copy = copy_gbps(copy_mib)
    rows = []
    for name, fn, moved in _memory_bound_cases(cupy, shape):
        # The kernels' own bandwidth (the queue kept ahead of them, as in a
        # training step), and back-to-back Python calls, which on a fast GPU
        # can be paced by the host's work per call instead.
        device_s = event_medians({name: (fn, "cupy")}, repeats=repeats, queue_ahead=True)[name]
        paced_s = event_medians({name: (fn, "cupy")}, repeats=repeats)[name]
        gbps = moved / device_s / 1e9
        rows.append({"op": name, "GB/s": gbps, "copy GB/s": copy, "of copy": gbps / copy,
                     "of copy, host-paced": moved / paced_s / 1e9 / copy})
    return rows


def run_lstm(repeats: int = 5, t: int = 50, n: int = 64, h: int = 512, **_):
    import cupy

    rng = np.random.default_rng(0)
    u = lambda *s: cupy.asarray(rng.uniform(-0.1, 0.1, s).astype(np.float32))  # noqa: E731
    x, h0, c0 = u(t, n, h), u(n, h), u(n, h)
    w_ih, w_hh, b_ih, b_hh, dy = u(4 * h, h), u(4 * h, h), u(4 * h), u(4 * h), u(t, n, h)
    zeros = cupy.zeros((n, h), cupy.float32)
    rows = []
    torch = torch_cuda()
    for backward in (False, True):
        def ours():
            y, hn, cn, cache = F.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
            if backward:
                F.lstm_backward(dy, zeros, zeros, cache)

        cases = {"pykernels": (ours, "cupy")}
        if torch is not None:
            _torch_fp32(torch)
            mod = torch.nn.LSTM(h, h).cuda()
            with torch.no_grad():
                for name, value in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh),
                                    ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)):
                    getattr(mod, name).copy_(torch.as_tensor(value, device="cuda"))
            tx = torch.as_tensor(x, device="cuda")
            state = (torch.as_tensor(h0, device="cuda")[None],
                     torch.as_tensor(c0, device="cuda")[None])
            tdy = torch.as_tensor(dy, device="cuda")

            def cudnn():
                xg = tx.detach().requires_grad_(backward)
                y, _ = mod(xg, state)
                if backward:
                    y.backward(tdy)

            cases["cuDNN"] = (cudnn, "torch")
        med = event_medians(cases, repeats=repeats)
        row = {"case": f"LSTM T={t} N={n} I=H={h}", "pass": "fwd+bwd" if backward else "fwd",
               "pykernels ms": med["pykernels"] * 1e3}
        if "cuDNN" in med:
            row["cuDNN ms"] = med["cuDNN"] * 1e3
            row["vs cuDNN"] = med["cuDNN"] / med["pykernels"]
        rows.append(row)
    return rows


def alexnet_batch(batch, image):
    """A fixed random AlexNet batch: images (batch, 3, image, image), labels."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((batch, 3, image, image), dtype=np.float32),
            rng.integers(0, 1000, batch))


def alexnet_gpu_seconds(x, y, width: float = 1.0, repeats: int = 3) -> dict:
    """Seconds of one AlexNet training step on the GPU (CUDA events, medians,
    interleaved) on the batch (x, y): "gpu" with the default convolutions
    (algo="auto"), "im2col" with algo="im2col" in every layer."""
    import cupy

    from .. import models, nn
    from .training import sgd_step

    steps = {}
    for name in ("gpu", "im2col"):
        nn.manual_seed(0)
        model = models.AlexNet(1000, width=width).to("cuda")
        for layer in model.modules():
            if name == "im2col" and isinstance(layer, nn.Conv2d):
                layer.algo = "im2col"
        steps[name] = (sgd_step(model, cupy.asarray(x), cupy.asarray(y), weight_decay=5e-4),
                       "cupy")
    return event_medians(steps, repeats=repeats)


def run_alexnet(batch: int = 128, repeats: int = 3, width: float = 1.0, image: int = 224, **_):
    """Images/s of one AlexNet training step on the GPU and on the CPU (all
    cores), same weights and batch; the CPU is timed with wall-clock medians.
    The GPU is also timed with algo="im2col" in every convolution.
    `width` and `image` shrink the network and its input (tests only)."""
    import statistics

    from .. import models, nn
    from .training import sgd_step

    x, y = alexnet_batch(batch, image)
    med = alexnet_gpu_seconds(x, y, width, repeats)
    gpu_s = med["gpu"]
    nn.manual_seed(0)
    cpu_step = sgd_step(models.AlexNet(1000, width=width), x, y, weight_decay=5e-4)
    cpu_step()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        cpu_step()
        samples.append(time.perf_counter() - start)
    cpu_s = statistics.median(samples)
    return [{"network": f"AlexNet (3x{image}x{image}, 1000 classes, width {width:g})",
             "batch": batch,
             "GPU img/s": batch / gpu_s, "GPU im2col img/s": batch / med["im2col"],
             "CPU img/s": batch / cpu_s, "GPU / CPU": cpu_s / gpu_s}]

"""The 2012 report: one AlexNet training step (forward, backward, SGD with
momentum and weight decay) measured here, extrapolated to ILSVRC-2012, next to
what Krizhevsky, Sutskever and Hinton reported for two GTX 580s.

FLOPs are counted from the layer shapes of pykernels.models.AlexNet (the
torchvision layout, 3x224x224 input, 1000 classes): a convolution is
2*O*C*kh*kw*OH*OW per image, a linear layer 2*in*out, both multiply-adds.
Backward computes the input gradient and the weight gradient, each the same
size of GEMM as the forward, so a training step is ~3x the forward. ReLU,
pooling, dropout, the loss and the SGD update are counted too (they are
memory-bound and small); the report lists every term.
"""

from __future__ import annotations

import time

import numpy as np

ILSVRC_2012_IMAGES = 1_281_167
EPOCHS = 90

# Literature, not measured here: Krizhevsky et al., "ImageNet Classification
# with Deep Convolutional Neural Networks", NIPS 2012 ("five to six days on
# two NVIDIA GTX 580 3GB GPUs", ~90 passes over the training set); the
# GTX 580's FP32 peak (512 CUDA cores x 1544 MHz x 2) and memory bandwidth
# from NVIDIA's specification.
LITERATURE = {
    "source": "Krizhevsky, Sutskever, Hinton, NIPS 2012; NVIDIA GTX 580 specification",
    "gpus": 2,
    "gpu": "GTX 580 (3 GB)",
    "gpu_fp32_tflops": 1.58,
    "gpu_bandwidth_gbps": 192.0,
    "days_low": 5.0,
    "days_high": 6.0,
    "epochs": EPOCHS,
}


def _out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def layer_flops(model, hw: int = 224) -> list:
    """[(layer, output shape per image, forward FLOPs per image)] for AlexNet."""
    from .. import nn

    rows, c, size = [], None, hw
    conv_i = pool_i = relu_i = 0
    for layer in model.features:
        if isinstance(layer, nn.Conv2d):
            conv_i += 1
            k, s, p = layer.kernel_size[0], layer.stride[0], layer.padding[0]
            c_in, c = layer.in_channels, layer.out_channels
            size = _out(size, k, s, p)
            rows.append((f"conv{conv_i} {k}x{k}/{s}", (c, size, size),
                         2.0 * c * c_in * k * k * size * size + c * size * size))
        elif isinstance(layer, nn.MaxPool2d):
            pool_i += 1
            k, s = layer.kernel_size, layer.stride or layer.kernel_size
            size = _out(size, k, s, layer.padding)
            rows.append((f"maxpool{pool_i} {k}x{k}/{s}", (c, size, size),
                         float(c * size * size * (k * k - 1))))
        elif isinstance(layer, nn.ReLU):
            relu_i += 1
            rows.append((f"relu{relu_i}", (c, size, size), float(c * size * size)))
    out_hw = model.avgpool.output_size
    rows.append(("adaptive avgpool", (c, *out_hw), float(c * size * size)))
    features = c * out_hw[0] * out_hw[1]
    fc_i = 0
    for layer in model.classifier:
        if isinstance(layer, nn.Linear):
            fc_i += 1
            rows.append((f"fc{fc_i + 5} {layer.in_features}->{layer.out_features}",
                         (layer.out_features,),
                         2.0 * layer.in_features * layer.out_features + layer.out_features))
            features = layer.out_features
        elif isinstance(layer, nn.ReLU):
            rows.append(("relu", (features,), float(features)))
        elif isinstance(layer, nn.Dropout):
            rows.append(("dropout", (features,), float(features)))
    rows.append(("softmax cross-entropy", (features,), 5.0 * features))
    return rows


def step_flops(model, batch: int, hw: int = 224) -> dict:
    """FLOPs of one training step: forward, backward (2x forward) and SGD
    (momentum + weight decay + Nesterov: ~6 flops per parameter)."""
    forward = sum(f for _, _, f in layer_flops(model, hw))
    params = sum(p.data.size for p in model.parameters())
    sgd = 6.0 * params
    return {"forward_per_image": forward, "backward_per_image": 2 * forward,
            "params": params, "sgd_per_step": sgd,
            "per_step": 3 * forward * batch + sgd, "batch": batch}


def measure_step(batch: int, steps: int, threads: int, progress=None, width: float = 1.0,
                 hw: int = 224) -> dict:
    """Time `steps` AlexNet training steps at `batch` (after one warm-up step).
    `width` and `hw` shrink the network and input for tests only: the report
    is about the real one (1.0, 224)."""
    from .. import models, nn, optim
    from ..train import train_step
    from .timing import pinned_threads

    nn.manual_seed(0)
    model = models.AlexNet(num_classes=1000, in_channels=3, width=width, dropout=0.5)
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4,
                          nesterov=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, hw, hw), dtype=np.float32)
    y = rng.integers(0, 1000, batch)
    times = []
    with pinned_threads(threads):
        for i in range(steps + 1):
            start = time.perf_counter()
            train_step(model, loss_fn, optimizer, x, y)
            if i:  # step 0 is the warm-up: page faults, velocity buffers
                times.append(time.perf_counter() - start)
            if progress:
                progress()
    seconds = float(np.median(times))
    flops = step_flops(model, batch, hw)
    return {"batch": batch, "steps": steps, "threads": threads, "step_seconds": seconds,
            "step_times": times, "images_per_s": batch / seconds, "flops": flops,
            "width": width, "input": [3, hw, hw],
            "layers": [(n, list(s), f) for n, s, f in layer_flops(model, hw)]}


def summarize(measured: dict, cpu_peak_gflops: float) -> dict:
    """Extrapolations from a measured step, and the literature side by side."""
    ips = measured["images_per_s"]
    epoch_s = ILSVRC_2012_IMAGES / ips
    achieved = measured["flops"]["per_step"] / measured["step_seconds"] / 1e9
    lit = LITERATURE
    lit_ips_low = ILSVRC_2012_IMAGES * EPOCHS / (lit["days_high"] * 86400)
    lit_ips_high = ILSVRC_2012_IMAGES * EPOCHS / (lit["days_low"] * 86400)
    per_image = 3 * measured["flops"]["forward_per_image"]
    lit_gflops = [per_image * v / 1e9 for v in (lit_ips_low, lit_ips_high)]
    lit_peak = lit["gpus"] * lit["gpu_fp32_tflops"] * 1e3
    return {
        "measured": {
            "images_per_s": ips, "epoch_hours": epoch_s / 3600,
            "ninety_epochs_days": EPOCHS * epoch_s / 86400,
            "achieved_gflops": achieved, "cpu_peak_gflops": cpu_peak_gflops,
            "of_peak": achieved / cpu_peak_gflops if cpu_peak_gflops else None,
        },
        "literature": {
            **lit,
            "derived_images_per_s": [lit_ips_low, lit_ips_high],
            "derived_gflops": lit_gflops,
            "peak_gflops": lit_peak,
            "derived_of_peak": [g / lit_peak for g in lit_gflops],
            "note": "derived: 1.28M images x 90 epochs / 5-6 days; FLOPs per image from the "
                    "torchvision layout counted here (the 2012 network differs slightly)",
        },
        "gpu": "not measured: pykernels' nn has no GPU kernels yet",
    }


def run(threads=(2,), repeats: int = 3, quick: bool = False, batch: int | None = None, **_):
    """Suite entry: one row per thread count, plus the 2012 line."""
    from .peak import peak_gflops
    from .. import _cpu

    batch = batch or (4 if quick else 8)
    rows = []
    for t in threads:
        m = measure_step(batch, steps=2 if quick else max(2, min(repeats, 5)), threads=t)
        s = summarize(m, peak_gflops(_cpu.get_isa(), t))["measured"]
        rows.append({"what": "measured here", "device": f"cpu {t} thr", "batch": batch,
                     "step s": m["step_seconds"], "images/s": s["images_per_s"],
                     "epoch h": s["epoch_hours"], "90 epochs days": s["ninety_epochs_days"],
                     "GFLOP/s": s["achieved_gflops"], "of peak": s["of_peak"]})
    lit = summarize(m, 1.0)["literature"]
    rows.append({"what": "literature (2012)", "device": "2x GTX 580", "batch": 128,
                 "step s": "", "images/s": "%.0f-%.0f" % tuple(lit["derived_images_per_s"]),
                 "epoch h": "%.1f-%.1f" % tuple(ILSVRC_2012_IMAGES / v / 3600
                                               for v in lit["derived_images_per_s"][::-1]),
                 "90 epochs days": "5-6",
                 "GFLOP/s": "%.0f-%.0f" % tuple(lit["derived_gflops"]),
                 "of peak": "%.2f-%.2f" % tuple(lit["derived_of_peak"])})
    rows.append({"what": "GPU (this machine)", "device": "cuda", "batch": "",
                 "step s": "", "images/s": "see `pykernels bench alexnet-gpu`"})
    return rows

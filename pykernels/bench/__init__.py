"""Benchmarks behind `pykernels bench`.

A bare `pykernels bench` is the main run (bench/main.py): the ceilings, each op
against the NumPy reference and its peer, the AlexNet step, a printed table
and a report folder (bench/report.py, bench/plots.py). `pykernels bench NAME`
runs a named suite from SUITES: each suite's run(threads, repeats, quick)
returns rows (dicts) measured side by side in this process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Suite:
    title: str
    run: Callable[..., list]
    default: bool = True


def _relu(**kw):
    from . import relu

    return relu.run(mib=16 if kw.get("quick") else 64, threads=kw["threads"],
                    repeats=kw["repeats"])


def _peak(**kw):
    from . import peak

    return peak.run(threads=kw["threads"], repeats=kw["repeats"],
                    mib=128 if kw.get("quick") else 512)


def _gemm(**kw):
    from . import gemm

    return gemm.run(**kw)


def _gemm_ladder(**kw):
    from . import gemm

    return gemm.run_ladder(threads=kw["threads"], repeats=min(kw["repeats"], 3),
                           quick=kw.get("quick", False))


def _lstm(**kw):
    from . import lstm

    return lstm.run(threads=kw["threads"], repeats=kw["repeats"], quick=kw.get("quick", False))


def _layers(**kw):
    from . import layers

    return layers.run(threads=kw["threads"], repeats=kw["repeats"], quick=kw.get("quick", False))


def _conv(**kw):
    from . import conv

    return conv.run(threads=kw["threads"], repeats=kw["repeats"], quick=kw.get("quick", False))


def _conv_memory(**kw):
    from . import conv

    return conv.run_memory(threads=kw["threads"], batch=32 if kw.get("quick") else 128)


def _alexnet(**kw):
    from . import alexnet

    return alexnet.run(threads=kw["threads"][-1:], repeats=kw["repeats"],
                       quick=kw.get("quick", False))


def _relu_gpu(**kw):
    from . import relu_gpu

    return relu_gpu.run(mib=64 if kw.get("quick") else 256, repeats=kw["repeats"])


def _gemm_gpu(**kw):
    from . import gemm_gpu

    return gemm_gpu.run(repeats=kw["repeats"], quick=kw.get("quick", False))


def _gemm_tf32_gpu(**kw):
    from . import gemm_gpu

    return gemm_gpu.run_tf32(repeats=kw["repeats"], quick=kw.get("quick", False))


def _gemm_ladder_all(**kw):
    from . import gemm_gpu

    return gemm_gpu.run_side_by_side(threads=kw["threads"][-1:], repeats=min(kw["repeats"], 3))


def _training(**kw):
    from . import training

    return training.run(threads=kw["threads"], repeats=min(kw["repeats"], 5),
                        quick=kw.get("quick", False))


def _gpu_ops(name):
    def run(**kw):
        from . import gpu_ops

        return getattr(gpu_ops, name)(repeats=kw["repeats"], quick=kw.get("quick", False))

    return run


def _gpu_usable() -> bool:
    from .. import cuda

    try:
        import cupy  # noqa: F401
    except ImportError:
        return False
    return cuda.is_available()


SUITES = {
    "peak": Suite("FP32 FMA peak per ISA and thread count, read and triad bandwidth; GPU FMA "
                  "and copy bandwidth when usable", _peak),
    "alexnet": Suite("The 2012 report: an AlexNet training step (batch 8, 4 with --quick), "
                     "images/s, epoch and 90-epoch time vs 2x GTX 580", _alexnet),
    "conv": Suite("AlexNet conv1-5 at batch 16 and ResNet-20's stride-1 layers at 64, fwd and "
                  "fwd+bwd: vs PyTorch, the lower rungs and the NumPy reference", _conv),
    "conv-memory": Suite("Peak RSS of AlexNet conv1 forward at batch 128 (fresh process) and "
                         "the workspace bound", _conv_memory),
    "gemm": Suite("SGEMM vs numpy.matmul: squares, AlexNet shapes, small sizes", _gemm),
    "gemm-ladder": Suite("SGEMM ladder (naive, blocked, packed) vs NumPy at n=512, 1024",
                         _gemm_ladder),
    "layers": Suite("Max/avg pooling and batch norm (train fwd, bwd) on AlexNet/ResNet "
                    "shapes vs PyTorch", _layers),
    "lstm": Suite("LSTM layer T=50 fwd and fwd+bwd: fused vs naive vs PyTorch vs NumPy", _lstm),
    "relu": Suite("ReLU forward bandwidth vs np.maximum and np.copyto (64 MiB)", _relu),
    "training": Suite("Training steps (LeNet-5, ResNet-20 at batch 64, AlexNet at 8) vs "
                      "PyTorch CPU, and the fused SGD step's gain", _training),
    "relu-gpu": Suite("ReLU forward bandwidth on the GPU vs cupy.maximum and a copy",
                      _relu_gpu, default=_gpu_usable()),
    "gemm-gpu": Suite("GPU SGEMM ladder vs cuBLAS (TF32 off) at n=1024-8192, TFLOP/s and "
                      "fraction of the measured FP32 peak", _gemm_gpu, default=_gpu_usable()),
    "gemm-tf32-gpu": Suite("The tensor-core TF32 rung vs cuBLAS TF32 (PyTorch) and FP32 at "
                           "n=2048-8192, with its error", _gemm_tf32_gpu, default=_gpu_usable()),
    "gemm-ladder-all": Suite("The CPU and GPU SGEMM ladders side by side at n=1024",
                             _gemm_ladder_all, default=_gpu_usable()),
    "conv-gpu": Suite("AlexNet conv1-5 at batch 128 on the GPU, fwd and fwd+bwd, vs cuDNN",
                      _gpu_ops("run_conv"), default=_gpu_usable()),
    "bandwidth-gpu": Suite("Pooling, ReLU, batch norm and the SGD step on the GPU as a "
                           "fraction of the device-to-device copy bandwidth",
                           _gpu_ops("run_bandwidth"),
                           default=_gpu_usable()),
    "lstm-gpu": Suite("LSTM layer T=50 N=64 I=H=512 on the GPU vs cuDNN, fwd and fwd+bwd",
                      _gpu_ops("run_lstm"), default=_gpu_usable()),
    "alexnet-gpu": Suite("One AlexNet training step at batch 128, GPU vs CPU images/s",
                         _gpu_ops("run_alexnet"), default=_gpu_usable()),
}

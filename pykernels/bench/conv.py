"""AlexNet's five convolutions (torchvision layout) and ResNet-20's three
stride-1 3x3 layers (batch 64), forward and forward +
backward: pykernels against PyTorch CPU (same thread count, skipped when torch
is missing) side by side, interleaved, medians; also against pykernels with
its implicit im2col off (the explicit column matrix in the forward and the
weight gradient, the bottom rung) for
the layers whose forward packs from the image or its stride phases, and with
its shifted rows off (the forward's packed panels, the rung below) where the
forward reads them, and with the weight gradient's dot tiles off (dW as a
GEMM over packed columns) where the backward takes them; and against the
NumPy reference,
which is slow, so it is timed once per case on a smaller batch and scaled per
image (the row says so). GFLOP/s count 2*N*O*C/g*kh*kw*OH*OW per pass; backward
computes dx, dweight and dbias (twice the forward's FLOPs).

Where Winograd applies (conv2-5) it is timed too, beside im2col: GFLOP/s
still count the direct convolution's multiply-adds. "pykernels" is the
default algorithm ("auto": at batch 16 Winograd for conv2-5 on the CPU, by
the measured rule in csrc/conv_winograd.cpp, im2col for conv1).

`run_memory` measures the peak resident memory of conv1's forward at batch 128
in a fresh subprocess, next to the output's size and the workspace bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from .. import _cpu
from .. import functional as F
from .. import reference as R
from .._functional.conv import conv2d_workspace_bytes
from .peak import peak_gflops
from .timing import interleaved_medians, pinned_threads, with_setting

# (name, C, O, kernel, stride, padding, input H = W)
ALEXNET = (
    ("conv1", 3, 64, 11, 4, 2, 224),
    ("conv2", 64, 192, 5, 1, 2, 27),
    ("conv3", 192, 384, 3, 1, 1, 13),
    ("conv4", 384, 256, 3, 1, 1, 13),
    ("conv5", 256, 256, 3, 1, 1, 13),
)
# ResNet-20's stride-1 layers (CIFAR-sized): where the shifted rows matter.
RESNET20 = (
    ("resnet 16->16", 16, 16, 3, 1, 1, 32),
    ("resnet 32->32", 32, 32, 3, 1, 1, 16),
    ("resnet 64->64", 64, 64, 3, 1, 1, 8),
)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _operands(batch, c, o, k, s, p, hw, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, c, hw, hw), dtype=np.float32)
    w = rng.standard_normal((o, c, k, k), dtype=np.float32) * np.float32(1.0 / np.sqrt(c * k * k))
    b = rng.standard_normal(o, dtype=np.float32)
    out = (hw + 2 * p - k) // s + 1
    dy = rng.standard_normal((batch, o, out, out), dtype=np.float32)
    return x, w, b, dy


def _forward_flops(batch, c, o, k, s, p, hw):
    out = (hw + 2 * p - k) // s + 1
    return 2.0 * batch * o * c * k * k * out * out


def winograd_applies(k, s, p):
    """conv2d(algo="winograd")'s conditions, for AlexNet's square layers."""
    return s == 1 and k in (3, 5) and p <= k - 1


def _pykernels_cases(x, w, b, dy, s, p, algo="auto"):
    def fwd_bwd():
        F.conv2d(x, w, b, s, p, algo=algo)
        F.conv2d_backward(dy, x, w, s, p, algo=algo)

    return {"fwd": lambda: F.conv2d(x, w, b, s, p, algo=algo), "fwd+bwd": fwd_bwd}


def _workspace_changes(setter, value, x_shape, w_shape, s, p, backward=False):
    """Whether a switch changes the forward's (or backward's) path here, seen
    in its workspace bound (each path has its own)."""
    def workspace():
        return conv2d_workspace_bytes(x_shape, w_shape, s, p, threads=1, backward=backward)

    return with_setting(setter, value, workspace)() != workspace()


def _torch_cases(torch, x, w, b, dy, s, p):
    tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, w, b, dy))
    gx, gw, gb = (t.clone().requires_grad_() for t in (tx, tw, tb))

    def fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(tx, tw, tb, s, p)

    def fwd_bwd():
        gx.grad = gw.grad = gb.grad = None
        torch.nn.functional.conv2d(gx, gw, gb, s, p).backward(tdy)

    return {"fwd": fwd, "fwd+bwd": fwd_bwd}


def _reference_seconds_per_image(layer, ref_batch, what, samples):
    _, c, o, k, s, p, hw = layer
    x, w, b, dy = _operands(ref_batch, c, o, k, s, p, hw, seed=1)
    best = float("inf")
    for _ in range(samples):
        start = time.perf_counter()
        R.conv2d(x, w, b, s, p)
        if what == "fwd+bwd":
            R.conv2d_backward(dy, x, w, s, p)
        best = min(best, time.perf_counter() - start)
    return best / ref_batch


def run(threads=(1, 2), repeats: int = 7, quick: bool = False, **_):
    torch = _torch()
    ref_batch = 1 if quick else 2
    layers = [(layer, 4 if quick else 16) for layer in ALEXNET]
    layers += [(layer, 16 if quick else 64) for layer in RESNET20]
    rows = []
    for t in threads:
        peak = peak_gflops(_cpu.get_isa(), t)
        for layer, batch in layers:
            name, c, o, k, s, p, hw = layer
            x, w, b, dy = _operands(batch, c, o, k, s, p, hw)
            ours = _pykernels_cases(x, w, b, dy, s, p)
            im2col = _pykernels_cases(x, w, b, dy, s, p, "im2col")
            winograd = winograd_applies(k, s, p)
            if winograd:
                ours_winograd = _pykernels_cases(x, w, b, dy, s, p, "winograd")
            theirs = _torch_cases(torch, x, w, b, dy, s, p) if torch is not None else {}
            for what in ("fwd", "fwd+bwd"):
                cases = {"pykernels": ours[what]}
                if winograd:
                    cases["im2col"] = im2col[what]
                    cases["winograd"] = ours_winograd[what]
                implicit = _workspace_changes(_cpu.conv_implicit_im2col, False, x.shape,
                                              w.shape, s, p)
                if implicit:
                    cases["explicit im2col"] = with_setting(_cpu.conv_implicit_im2col, False,
                                                            im2col[what])
                shifted = _workspace_changes(_cpu.conv_shifted_rows, 0, x.shape, w.shape, s, p)
                if shifted:
                    cases["packed panels"] = with_setting(_cpu.conv_shifted_rows, 0, ours[what])
                dot = what == "fwd+bwd" and _workspace_changes(
                    _cpu.conv_dw_shifted_rows, 0, x.shape, w.shape, s, p, backward=True)
                if dot:
                    cases["dW as a GEMM"] = with_setting(_cpu.conv_dw_shifted_rows, 0, ours[what])
                if theirs:
                    cases["torch"] = theirs[what]
                with pinned_threads(t):
                    med = interleaved_medians(cases, repeats=repeats, min_sample_s=0.05)
                    ref_s = _reference_seconds_per_image(layer, ref_batch, what,
                                                         samples=1 if quick else 2)
                flops = _forward_flops(batch, c, o, k, s, p, hw) * (1 if what == "fwd" else 3)
                gf = flops / med["pykernels"] / 1e9
                ref_gf = flops / (ref_s * batch) / 1e9
                row = {"layer": name, "pass": what, "batch": batch, "threads": t,
                       "pykernels GFLOP/s": gf}
                if "torch" in med:
                    row["torch GFLOP/s"] = flops / med["torch"] / 1e9
                    row["vs torch"] = med["torch"] / med["pykernels"]
                if winograd:
                    row["winograd GFLOP/s"] = flops / med["winograd"] / 1e9
                    row["winograd vs im2col"] = med["im2col"] / med["winograd"]
                if implicit:
                    row["implicit vs explicit im2col"] = (med["explicit im2col"]
                                                          / med.get("im2col", med["pykernels"]))
                if shifted:
                    row["shifted vs packed panels"] = med["packed panels"] / med["pykernels"]
                if dot:
                    row["dW dot tiles vs GEMM"] = med["dW as a GEMM"] / med["pykernels"]
                row["reference GFLOP/s"] = ref_gf
                row["vs reference"] = gf / ref_gf
                row["of peak"] = gf / peak
                row["note"] = (f"reference: best of {1 if quick else 2} at batch "
                               f"{ref_batch}, scaled per image")
                rows.append(row)
    return rows


# Peak RSS is read from /proc/self/status (VmHWM, reset through clear_refs
# just before the call): ru_maxrss would do on a fresh process, but Linux
# carries the parent's high-water mark into a forked child across exec.
_MEMORY_PROBE = r"""
import json, resource, sys
import numpy as np

def status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None

def mark():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    rss = status_kib("VmRSS")
    return rss if rss is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def peak():
    hwm = status_kib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

which, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
x = rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)
w = rng.standard_normal((64, 3, 11, 11), dtype=np.float32)
b = np.zeros(64, np.float32)
small = x[:2, :, :64, :64].copy()
if which == "torch":
    import torch
    torch.set_num_threads(threads)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    with torch.no_grad():
        torch.nn.functional.conv2d(torch.from_numpy(small), tw, tb, 4, 2)  # warm up
        before = mark()
        y = torch.nn.functional.conv2d(tx, tw, tb, 4, 2)
else:
    import pykernels, pykernels.functional as F
    pykernels.set_num_threads(threads)
    F.conv2d(small, w, b, 4, 2)  # warm up: thread pool, code pages
    before = mark()
    y = F.conv2d(x, w, b, 4, 2)
after = peak()
print(json.dumps({"delta_kib": after - before, "output_bytes": int(np.prod(y.shape)) * 4}))
"""


def _probe(which, batch, threads):
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, which, str(batch), str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_memory(threads=(1, 2), batch: int = 128, **_):
    """Peak-RSS growth of one conv1 forward at `batch`, each in a fresh process."""
    rows = []
    impls = ["pykernels"] + (["torch"] if _torch() is not None else [])
    for t in threads:
        bound = conv2d_workspace_bytes((batch, 3, 224, 224), (64, 3, 11, 11), 4, 2, threads=t)
        for which in impls:
            got = _probe(which, batch, t)
            delta = got["delta_kib"] * 1024
            rows.append({
                "case": f"conv1 fwd batch {batch}", "impl": which, "threads": t,
                "peak RSS growth MiB": delta / 2**20,
                "output MiB": got["output_bytes"] / 2**20,
                "growth - output MiB": (delta - got["output_bytes"]) / 2**20,
                "pykernels workspace bound MiB": bound / 2**20,
            })
    return rows

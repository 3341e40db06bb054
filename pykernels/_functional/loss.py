"""Softmax cross-entropy, mean over the batch (torch's F.cross_entropy with
reduction='mean', no weights, no label smoothing).

cross_entropy(logits, labels) -> (loss, probs): logits (N, C) float32, labels
(N,) integers in [0, C) (any integer dtype, used as int64; unlike torch there
is no ignore_index, so -100 is an error). loss is a NumPy float32 scalar (NaN
for N = 0, as torch), probs the row-wise softmax. Computed with the row max
subtracted, so logits of any finite magnitude give a finite loss.
cross_entropy_backward(probs, labels) -> dlogits = (probs - onehot) / N.

NumPy arrays run on the CPU (csrc/loss.cpp), CuPy arrays on the GPU
(cuda/loss.cu); probs and dlogits come back on the inputs' device. The loss
is a NumPy float32 on both devices (on the GPU that reads one number back,
which waits for the kernels), so callers such as nn.CrossEntropyLoss treat it
the same way whatever the device.
"""

from __future__ import annotations

import numpy as np

from .._backend import accepts_cuda_interface, array_module, cpu, current_stream_ptr, require_cuda
from .._validate import device_of, float32_contiguous

__all__ = ["cross_entropy", "cross_entropy_backward"]


def _first_bad_label(labels, classes):
    """The first label outside [0, classes), read on the host (error path only)."""
    host = labels if isinstance(labels, np.ndarray) else array_module(labels).asnumpy(labels)
    return host[(host < 0) | (host >= classes)][0]


def _check(matrix, labels, name):
    device = device_of(**{name: matrix, "labels": labels})
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer array (class indices), got dtype "
                        f"{labels.dtype}")
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, C), got shape {matrix.shape}")
    n, classes = matrix.shape
    if tuple(labels.shape) != (n,):
        raise ValueError(f"labels must have shape ({n},) for {name} of shape {matrix.shape}, "
                         f"got {tuple(labels.shape)}")
    if classes < 1:
        raise ValueError(f"{name} has shape {matrix.shape}: it needs at least one class")
    # Checked before any launch: the kernels cannot raise. On the GPU min and
    # max are two reductions and two scalars read back.
    if n and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise ValueError(f"labels must lie in [0, {classes}) for {name} of shape "
                         f"{matrix.shape}, got {_first_bad_label(labels, classes)}")
    matrix = float32_contiguous(matrix, name)
    xp = array_module(labels)
    return device, matrix, xp.ascontiguousarray(labels, dtype=xp.int64)


@accepts_cuda_interface
def cross_entropy(logits, labels):
    """Mean softmax cross-entropy; returns (loss, probs)."""
    device, logits, labels = _check(logits, labels, "logits")
    if device == "cpu":
        probs = np.empty(logits.shape, dtype=np.float32)
        loss = cpu().cross_entropy_forward(logits, labels, probs)
        return np.float32(loss), probs
    import cupy

    n, classes = logits.shape
    probs = cupy.empty(logits.shape, dtype=cupy.float32)
    workspace = cupy.empty(n + 1, dtype=cupy.float64)  # row losses, then the mean
    require_cuda().cross_entropy_forward(logits.data.ptr, labels.data.ptr, probs.data.ptr,
                                         workspace.data.ptr, n, classes, current_stream_ptr())
    # asnumpy copies on the same (current) stream, after the kernel.
    return np.float32(cupy.asnumpy(workspace[n:])[0]), probs


@accepts_cuda_interface
def cross_entropy_backward(probs, labels):
    """dlogits = (probs - onehot(labels)) / N, the gradient of the mean loss."""
    device, probs, labels = _check(probs, labels, "probs")
    if device == "cpu":
        dlogits = np.empty(probs.shape, dtype=np.float32)
        cpu().cross_entropy_backward(probs, labels, dlogits)
        return dlogits
    import cupy

    n, classes = probs.shape
    dlogits = cupy.empty(probs.shape, dtype=cupy.float32)
    require_cuda().cross_entropy_backward(probs.data.ptr, labels.data.ptr, dlogits.data.ptr, n,
                                          classes, current_stream_ptr())
    return dlogits

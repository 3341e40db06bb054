"""Softmax cross-entropy on the CPU, mean over the batch (torch's
F.cross_entropy with reduction='mean', no weights, no label smoothing).

cross_entropy(logits, labels) -> (loss, probs): logits (N, C) float32, labels
(N,) integers in [0, C) (any integer dtype, used as int64; unlike torch there
is no ignore_index, so -100 is an error). loss is a NumPy float32 scalar (NaN
for N = 0, as torch), probs the row-wise softmax. Computed with the row max
subtracted, so logits of any finite magnitude give a finite loss.
cross_entropy_backward(probs, labels) -> dlogits = (probs - onehot) / N.
"""

from __future__ import annotations

import numpy as np

from .._backend import cpu
from .._validate import device_of, float32_contiguous

__all__ = ["cross_entropy", "cross_entropy_backward"]


def _check(matrix, labels, name):
    if device_of(**{name: matrix, "labels": labels}) != "cpu":
        raise NotImplementedError("cross_entropy on CuPy arrays is not available yet")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be an integer array (class indices), got dtype "
                        f"{labels.dtype}")
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, C), got shape {matrix.shape}")
    n, classes = matrix.shape
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},) for {name} of shape {matrix.shape}, "
                         f"got {labels.shape}")
    if classes < 1:
        raise ValueError(f"{name} has shape {matrix.shape}: it needs at least one class")
    if n and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)][0]
        raise ValueError(f"labels must lie in [0, {classes}) for {name} of shape "
                         f"{matrix.shape}, got {bad}")
    matrix = float32_contiguous(matrix, name)
    return matrix, np.ascontiguousarray(labels, dtype=np.int64)


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy; returns (loss, probs)."""
    logits, labels = _check(logits, labels, "logits")
    probs = np.empty(logits.shape, dtype=np.float32)
    loss = cpu().cross_entropy_forward(logits, labels, probs)
    return np.float32(loss), probs


def cross_entropy_backward(probs, labels):
    """dlogits = (probs - onehot(labels)) / N, the gradient of the mean loss."""
    probs, labels = _check(probs, labels, "probs")
    dlogits = np.empty(probs.shape, dtype=np.float32)
    cpu().cross_entropy_backward(probs, labels, dlogits)
    return dlogits

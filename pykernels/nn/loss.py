"""CrossEntropyLoss: softmax cross-entropy, mean over the batch."""

from __future__ import annotations

from .. import functional as F
from .module import Module


class CrossEntropyLoss(Module):
    def __init__(self):
        super().__init__()
        self._saved_state = None

    def forward(self, logits, labels):
        if logits.ndim != 2 or labels.shape != (logits.shape[0],):
            raise ValueError(f"CrossEntropyLoss: expected logits (N, C) and labels (N,), got "
                             f"{tuple(logits.shape)} and {tuple(labels.shape)}")
        loss, probs = F.cross_entropy(logits, labels)
        self._saved_state = (probs, labels)
        return float(loss)

    def backward(self, dloss: float = 1.0):
        probs, labels = self._saved(self._saved_state)
        dlogits = F.cross_entropy_backward(probs, labels)
        return dlogits if dloss == 1.0 else dlogits * dloss

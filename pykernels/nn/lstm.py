"""Stacked LSTM module over pykernels.functional.lstm (seq-first by default)."""

from __future__ import annotations

import math

import numpy as np

from .._backend import array_module

from .. import functional as F
from . import init
from .module import Module, Parameter


class LSTM(Module):
    """torch.nn.LSTM's parameters and layout: per layer k, weight_ih_l{k}
    (4H, in), weight_hh_l{k} (4H, H), bias_ih_l{k}, bias_hh_l{k}; gates i, f,
    g, o. forward(x, state=None) -> y, (hn, cn) with hn, cn of shape
    (num_layers, N, H); backward(dy, dhn=None, dcn=None) -> dx."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 batch_first: bool = False):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.batch_first = num_layers, batch_first
        bound = 1.0 / math.sqrt(hidden_size)
        for k in range(num_layers):
            inputs = input_size if k == 0 else hidden_size
            setattr(self, f"weight_ih_l{k}", Parameter(init.uniform((4 * hidden_size, inputs), bound)))
            setattr(self, f"weight_hh_l{k}",
                    Parameter(init.uniform((4 * hidden_size, hidden_size), bound)))
            setattr(self, f"bias_ih_l{k}", Parameter(init.uniform((4 * hidden_size,), bound)))
            setattr(self, f"bias_hh_l{k}", Parameter(init.uniform((4 * hidden_size,), bound)))
        self._caches = None

    def extra_repr(self):
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}")

    def _layer(self, k):
        return [getattr(self, f"{name}_l{k}") for name in
                ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    def forward(self, x, state=None):
        if x.ndim != 3 or x.shape[2] != self.input_size:
            layout = "(N, T, I)" if self.batch_first else "(T, N, I)"
            raise ValueError(f"{self!r}: expected input of shape "
                             f"{layout.replace('I', str(self.input_size))}, got {tuple(x.shape)}")
        xp = array_module(x)
        seq = xp.ascontiguousarray(x.transpose(1, 0, 2)) if self.batch_first else x
        batch, hidden = seq.shape[1], self.hidden_size
        if state is None:
            zeros = xp.zeros((self.num_layers, batch, hidden), np.float32)
            state = (zeros, zeros)
        h0, c0 = state
        expected = (self.num_layers, batch, hidden)
        if h0.shape != expected or c0.shape != expected:
            raise ValueError(f"{self!r}: state must be two arrays of shape {expected}, got "
                             f"{tuple(h0.shape)} and {tuple(c0.shape)}")
        caches, hns, cns = [], [], []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = (p.data for p in self._layer(k))
            seq, hn, cn, cache = F.lstm(seq, h0[k], c0[k], w_ih, w_hh, b_ih, b_hh)
            caches.append(cache)
            hns.append(hn)
            cns.append(cn)
        self._caches = caches
        y = xp.ascontiguousarray(seq.transpose(1, 0, 2)) if self.batch_first else seq
        return y, (xp.stack(hns), xp.stack(cns))

    def backward(self, dy, dhn=None, dcn=None):
        caches = self._saved(self._caches)
        xp = array_module(dy)
        grad = xp.ascontiguousarray(dy.transpose(1, 0, 2)) if self.batch_first else dy
        batch = caches[0].h0.shape[0]
        zeros = xp.zeros((self.num_layers, batch, self.hidden_size), np.float32)
        dhn = zeros if dhn is None else dhn
        dcn = zeros if dcn is None else dcn
        for k in reversed(range(self.num_layers)):
            grad, _, _, dw_ih, dw_hh, db = F.lstm_backward(grad, dhn[k], dcn[k], caches[k])
            w_ih, w_hh, b_ih, b_hh = self._layer(k)
            w_ih.grad += dw_ih
            w_hh.grad += dw_hh
            b_ih.grad += db
            b_hh.grad += db
        return xp.ascontiguousarray(grad.transpose(1, 0, 2)) if self.batch_first else grad

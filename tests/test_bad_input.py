"""The bad-input table: for every public function of pykernels.functional,
wrong type, dtype and number of dimensions, mismatched shapes, zero or
negative stride, negative padding, a kernel larger than the padded input, an
empty batch, NaN/Inf inputs and absurd sizes. Each row gives a clear exception
(the type is checked, and the message must name something useful) or the
result PyTorch gives, never a crash.

Absurd sizes run in one child process under an address-space limit, so that a
crash or an attempt to touch terabytes shows up as a failed row instead of
taking pytest (or the machine) down.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import sys
import textwrap

import numpy as np
import pytest

import pykernels.functional as F


def _a(*shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed + len(shape))
    x = rng.uniform(-1, 1, size=shape).astype(dtype)
    if x.dtype.kind == "f":
        x[x == 0] = 0.5
    return x


def _good_calls():
    """name -> (function, args): a valid call of every public function."""
    x4 = _a(2, 3, 6, 6)
    _, idx = F.max_pool2d(x4, 2)
    _, mean, invstd = F.batch_norm(x4, None, None, None, None, True)
    _, _, gates = F.lstm_cell(_a(2, 3), _a(2, 4), _a(2, 4), _a(16, 3), _a(16, 4))
    _, _, _, cache = F.lstm(_a(3, 2, 3), _a(2, 4), _a(2, 4), _a(16, 3), _a(16, 4))
    _, mask = F.dropout(_a(4, 5), 0.5, seed=1)
    return {
        "relu": (F.relu, [_a(3, 4)]),
        "relu_backward": (F.relu_backward, [_a(3, 4), _a(3, 4)]),
        "gemm": (F.gemm, [_a(3, 4), _a(4, 5)]),
        "linear": (F.linear, [_a(2, 4), _a(3, 4), _a(3)]),
        "linear_backward": (F.linear_backward, [_a(2, 3), _a(2, 4), _a(3, 4)]),
        "conv2d": (F.conv2d, [x4, _a(4, 3, 3, 3), _a(4)]),
        "conv2d_backward": (F.conv2d_backward, [_a(2, 4, 4, 4), x4, _a(4, 3, 3, 3)]),
        "im2col": (F.im2col, [x4, 3]),
        "col2im": (F.col2im, [_a(2, 27, 16), (2, 3, 6, 6), 3]),
        "max_pool2d": (F.max_pool2d, [x4, 2]),
        "max_pool2d_backward": (F.max_pool2d_backward, [_a(2, 3, 3, 3), idx, (2, 3, 6, 6)]),
        "avg_pool2d": (F.avg_pool2d, [x4, 2]),
        "avg_pool2d_backward": (F.avg_pool2d_backward, [_a(2, 3, 3, 3), (2, 3, 6, 6), 2]),
        "adaptive_avg_pool2d": (F.adaptive_avg_pool2d, [x4, 4]),
        "adaptive_avg_pool2d_backward": (F.adaptive_avg_pool2d_backward,
                                         [_a(2, 3, 4, 4), (2, 3, 6, 6)]),
        "batch_norm": (F.batch_norm, [x4, _a(3), np.ones(3, np.float32), _a(3), _a(3), True]),
        "batch_norm_backward": (F.batch_norm_backward, [_a(2, 3, 6, 6), x4, _a(3), mean, invstd]),
        "dropout": (F.dropout, [_a(4, 5), 0.5, True, 7]),
        "dropout_backward": (F.dropout_backward, [_a(4, 5), mask, 0.5]),
        "cross_entropy": (F.cross_entropy, [_a(4, 5), np.array([0, 4, 2, 1])]),
        "cross_entropy_backward": (F.cross_entropy_backward,
                                   [np.full((4, 5), 0.2, np.float32), np.array([0, 4, 2, 1])]),
        "lstm_cell": (F.lstm_cell, [_a(2, 3), _a(2, 4), _a(2, 4), _a(16, 3), _a(16, 4),
                                    _a(16), _a(16)]),
        "lstm_cell_backward": (F.lstm_cell_backward, [_a(2, 4), _a(2, 4), _a(2, 3), _a(2, 4),
                                                      _a(2, 4), _a(16, 3), _a(16, 4), gates]),
        "lstm": (F.lstm, [_a(3, 2, 3), _a(2, 4), _a(2, 4), _a(16, 3), _a(16, 4), _a(16), _a(16)]),
        "lstm_backward": (F.lstm_backward, [_a(3, 2, 4), _a(2, 4), _a(2, 4), cache]),
        # In place: param (0) and velocity (2) are written, so they must be
        # C-contiguous; the table's calls keep updating them, which is fine.
        "sgd_step": (_sgd_step, [_a(3, 4), _a(3, 4, seed=1), np.zeros((3, 4), np.float32)]),
    }


def _sgd_step(param, grad, velocity):
    return F.sgd_step(param, grad, velocity, lr=0.1, momentum=0.9, weight_decay=1e-4)


GOOD = _good_calls()
PUBLIC = sorted(GOOD)


def test_the_table_covers_every_public_op():
    import pykernels.reference as R

    assert set(PUBLIC) == set(R.__all__)


def _call(name, **changes):
    fn, args = GOOD[name]
    args = list(args)
    for pos, value in changes.items():
        args[int(pos[1:])] = value
    return fn(*args)


def _array_positions(name):
    return [i for i, a in enumerate(GOOD[name][1]) if isinstance(a, np.ndarray)]


# ---- rows 1-2: wrong type and wrong dtype of every array argument --------------

TYPE_ROWS = [(name, i) for name in PUBLIC for i in _array_positions(name)]


@pytest.mark.parametrize("name,pos", TYPE_ROWS, ids=[f"{n}-arg{i}" for n, i in TYPE_ROWS])
def test_wrong_type(name, pos):
    """A nested list (or None where None means nothing) is a TypeError."""
    good = GOOD[name][1][pos]
    with pytest.raises(TypeError, match=r"numpy|ndarray|array"):
        _call(name, **{f"a{pos}": good.tolist()})


def _wrong_dtype(a):
    if a.dtype == np.float32:
        return a.astype(np.float64)
    if a.dtype == np.uint8:          # a dropout mask
        return a.astype(np.float32)
    return a.astype(np.float32)      # integer labels or indices


@pytest.mark.parametrize("name,pos", TYPE_ROWS, ids=[f"{n}-arg{i}" for n, i in TYPE_ROWS])
def test_wrong_dtype(name, pos):
    with pytest.raises(TypeError, match="dtype"):
        _call(name, **{f"a{pos}": _wrong_dtype(GOOD[name][1][pos])})


@pytest.mark.parametrize("name", PUBLIC)
def test_good_call_is_fine_and_non_contiguous_is_accepted(name):
    """The baseline of every row: the unchanged call works, and so does the
    same call on non-contiguous (strided) copies of the float32 inputs."""
    fn, args = GOOD[name]
    expected = fn(*args)
    strided = []
    # Written in place, so refused when strided, by design: batch norm's running
    # statistics, SGD's parameters and velocity.
    in_place = {"batch_norm": {1, 2}, "sgd_step": {0, 2}}.get(name, set())
    for i, a in enumerate(args):
        if (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.ndim >= 1
                and i not in in_place):
            s = np.empty((*a.shape, 2), np.float32)
            s[..., 0] = a
            a = s[..., 0]
            assert not a.flags.c_contiguous
        strided.append(a)
    got = fn(*strided)
    for g, e in zip(got if isinstance(got, tuple) else (got,),
                    expected if isinstance(expected, tuple) else (expected,)):
        if isinstance(e, np.ndarray):
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)


# ---- rows 3-7: dimensions, shapes, stride, padding, kernel size ---------------------

def _rows():
    x4 = GOOD["conv2d"][1][0]
    w = GOOD["conv2d"][1][1]
    V, T = ValueError, TypeError
    rows = [
        # (id, thunk, exception, message fragment)
        ("relu_backward-shapes", lambda: F.relu_backward(_a(3, 4), _a(4, 3)), V, "shape"),
        ("relu-out-shape", lambda: F.relu(_a(3), out=_a(4)), V, "shape"),
        ("gemm-ndim", lambda: F.gemm(_a(3, 4, 1), _a(4, 5)), V, "2-D"),
        ("gemm-1d", lambda: F.gemm(_a(4), _a(4, 5)), V, "2-D"),
        ("gemm-inner", lambda: F.gemm(_a(3, 4), _a(5, 5)), V, "inner"),
        ("gemm-c-shape", lambda: F.gemm(_a(3, 4), _a(4, 5), _a(5, 3)), V, "shape"),
        ("gemm-beta-no-c", lambda: F.gemm(_a(3, 4), _a(4, 5), beta=1.0), V, "beta"),
        ("gemm-algo", lambda: F.gemm(_a(3, 4), _a(4, 5), algo="fast"), V, "algo"),
        ("linear-in", lambda: F.linear(_a(2, 5), _a(3, 4)), V, "in_features"),
        ("linear-weight-ndim", lambda: F.linear(_a(2, 4), _a(3, 4, 1)), V, "2-D"),
        ("linear-bias", lambda: F.linear(_a(2, 4), _a(3, 4), _a(4)), V, "bias"),
        ("linear-0d", lambda: F.linear(np.ones((), np.float32), _a(3, 1)), V,
         "x"),
        ("linear_backward-dy", lambda: F.linear_backward(_a(2, 4), _a(2, 4), _a(3, 4)), V, "dy"),
        ("conv2d-x-3d", lambda: F.conv2d(_a(3, 6, 6), w), V, "4-D"),
        ("conv2d-w-3d", lambda: F.conv2d(x4, _a(4, 3, 3)), V, "4-D"),
        ("conv2d-x-5d", lambda: F.conv2d(_a(1, 2, 3, 6, 6), w), V, "4-D"),
        ("conv2d-channels", lambda: F.conv2d(x4, _a(4, 2, 3, 3)), V, "channels"),
        ("conv2d-groups", lambda: F.conv2d(x4, _a(4, 1, 3, 3), groups=2), V, "groups"),
        ("conv2d-groups-0", lambda: F.conv2d(x4, w, groups=0), V, "groups"),
        ("conv2d-groups-float", lambda: F.conv2d(x4, w, groups=1.0), T, "groups|integer"),
        ("conv2d-bias", lambda: F.conv2d(x4, w, _a(3)), V, "bias"),
        ("conv2d-stride-0", lambda: F.conv2d(x4, w, stride=0), V, "stride"),
        ("conv2d-stride-neg", lambda: F.conv2d(x4, w, stride=(1, -2)), V, "stride"),
        ("conv2d-stride-float", lambda: F.conv2d(x4, w, stride=1.5), T, "stride"),
        ("conv2d-stride-bool", lambda: F.conv2d(x4, w, stride=True), T, "stride"),
        ("conv2d-stride-triple", lambda: F.conv2d(x4, w, stride=(1, 1, 1)), V, "stride"),
        ("conv2d-dilation-0", lambda: F.conv2d(x4, w, dilation=0), V, "dilation"),
        ("conv2d-padding-neg", lambda: F.conv2d(x4, w, padding=-1), V, "padding"),
        ("conv2d-kernel-too-big", lambda: F.conv2d(x4, _a(4, 3, 9, 9), padding=1), V, "kernel"),
        ("conv2d-dilated-too-big", lambda: F.conv2d(x4, w, dilation=3), V, "kernel"),
        ("conv2d-empty-kernel", lambda: F.conv2d(x4, _a(4, 3, 0, 3)), V, "kernel"),
        ("conv2d_backward-dy", lambda: F.conv2d_backward(_a(2, 4, 3, 3), x4, w), V, "dy"),
        ("conv2d_backward-stride-0", lambda: F.conv2d_backward(_a(2, 4, 4, 4), x4, w, stride=0),
         V, "stride"),
        ("conv2d_backward-padding-neg",
         lambda: F.conv2d_backward(_a(2, 4, 4, 4), x4, w, padding=-2), V, "padding"),
        ("conv2d_backward-kernel-too-big",
         lambda: F.conv2d_backward(_a(2, 4, 1, 1), x4, _a(4, 3, 7, 7)), V, "kernel"),
        ("im2col-2d", lambda: F.im2col(_a(6, 6), 3), V, "3-D"),
        ("im2col-kernel-0", lambda: F.im2col(x4, 0), V, "kernel_size"),
        ("im2col-stride-0", lambda: F.im2col(x4, 3, stride=0), V, "stride"),
        ("im2col-stride-neg", lambda: F.im2col(x4, 3, stride=-1), V, "stride"),
        ("im2col-padding-neg", lambda: F.im2col(x4, 3, padding=-1), V, "padding"),
        ("im2col-kernel-too-big", lambda: F.im2col(x4, 7), V, "kernel"),
        ("col2im-cols-shape", lambda: F.col2im(_a(2, 27, 15), (2, 3, 6, 6), 3), V, "cols"),
        ("col2im-ndim", lambda: F.col2im(_a(27, 16), (2, 3, 6, 6), 3), V, "cols"),
        ("col2im-shape-len", lambda: F.col2im(_a(2, 27, 16), (3, 6, 6, 1, 1), 3), V,
         "input_shape"),
        ("col2im-shape-neg", lambda: F.col2im(_a(2, 27, 16), (2, -3, 6, 6), 3), V,
         "input_shape"),
        ("col2im-stride-0", lambda: F.col2im(_a(2, 27, 16), (2, 3, 6, 6), 3, stride=0), V,
         "stride"),
        ("col2im-padding-neg", lambda: F.col2im(_a(2, 27, 16), (2, 3, 6, 6), 3, padding=-1), V,
         "padding"),
        ("col2im-kernel-too-big", lambda: F.col2im(_a(2, 27, 16), (2, 3, 2, 2), 3), V, "kernel"),
        ("max_pool2d-2d", lambda: F.max_pool2d(_a(6, 6), 2), V, "4-D"),
        ("max_pool2d-5d", lambda: F.max_pool2d(_a(1, 2, 3, 6, 6), 2), V, "4-D"),
        ("max_pool2d-stride-0", lambda: F.max_pool2d(x4, 2, stride=0), V, "stride"),
        ("max_pool2d-stride-neg", lambda: F.max_pool2d(x4, 2, stride=-1), V, "stride"),
        ("max_pool2d-kernel-0", lambda: F.max_pool2d(x4, 0), V, "kernel_size"),
        ("max_pool2d-padding-neg", lambda: F.max_pool2d(x4, 2, padding=-1), V, "padding"),
        ("max_pool2d-padding-over-half", lambda: F.max_pool2d(x4, 2, padding=2), V, "padding"),
        ("max_pool2d-kernel-too-big", lambda: F.max_pool2d(x4, 7), V, "below 1"),
        ("max_pool2d-empty-plane", lambda: F.max_pool2d(_a(2, 3, 0, 6), 2), V, "batch"),
        ("max_pool2d_backward-dy",
         lambda: F.max_pool2d_backward(_a(2, 3, 3, 3), np.zeros((2, 3, 3, 2), np.int64),
                                       (2, 3, 6, 6)), V, "indices"),
        ("max_pool2d_backward-shape",
         lambda: F.max_pool2d_backward(_a(2, 3, 3, 3), GOOD["max_pool2d_backward"][1][1],
                                       (2, 4, 6, 6)), V, "input_shape"),
        ("max_pool2d_backward-index-out-of-plane",
         lambda: F.max_pool2d_backward(_a(1, 1, 1, 1), np.array([[[[36]]]]), (1, 1, 6, 6)), V,
         "outside"),
        ("max_pool2d_backward-index-negative",
         lambda: F.max_pool2d_backward(_a(1, 1, 1, 1), np.array([[[[-1]]]]), (1, 1, 6, 6)), V,
         "outside"),
        ("avg_pool2d-stride-0", lambda: F.avg_pool2d(x4, 2, stride=0), V, "stride"),
        ("avg_pool2d-padding-neg", lambda: F.avg_pool2d(x4, 2, padding=-1), V, "padding"),
        ("avg_pool2d-kernel-too-big", lambda: F.avg_pool2d(x4, (2, 9)), V, "below 1"),
        ("avg_pool2d-2d", lambda: F.avg_pool2d(_a(6, 6), 2), V, "4-D"),
        ("avg_pool2d_backward-dy", lambda: F.avg_pool2d_backward(_a(2, 3, 2, 3), (2, 3, 6, 6), 2),
         V, "dy"),
        ("avg_pool2d_backward-stride-0",
         lambda: F.avg_pool2d_backward(_a(2, 3, 3, 3), (2, 3, 6, 6), 2, stride=0), V, "stride"),
        ("avg_pool2d_backward-padding-neg",
         lambda: F.avg_pool2d_backward(_a(2, 3, 3, 3), (2, 3, 6, 6), 2, padding=-1), V,
         "padding"),
        ("avg_pool2d_backward-kernel-too-big",
         lambda: F.avg_pool2d_backward(_a(2, 3, 1, 1), (2, 3, 6, 6), 7), V, "below 1"),
        ("adaptive_avg_pool2d-out-0", lambda: F.adaptive_avg_pool2d(x4, 0), V, "output_size"),
        ("adaptive_avg_pool2d-out-neg", lambda: F.adaptive_avg_pool2d(x4, (2, -1)), V,
         "output_size"),
        ("adaptive_avg_pool2d-2d", lambda: F.adaptive_avg_pool2d(_a(6, 6), 2), V, "4-D"),
        ("adaptive_avg_pool2d_backward-dy",
         lambda: F.adaptive_avg_pool2d_backward(_a(2, 4, 4, 4), (2, 3, 6, 6)), V, "dy"),
        ("batch_norm-1d", lambda: F.batch_norm(_a(5), None, None, None, None, True), V,
         "2 dimensions"),
        ("batch_norm-weight", lambda: F.batch_norm(x4, None, None, _a(4), None, True), V,
         "weight"),
        ("batch_norm-running", lambda: F.batch_norm(x4, _a(2), _a(3), None, None, True), V,
         "running_mean"),
        ("batch_norm-eval-no-stats", lambda: F.batch_norm(x4, None, None, None, None, False), V,
         "running"),
        ("batch_norm-eps-0", lambda: F.batch_norm(x4, None, None, None, None, True, eps=0.0), V,
         "eps"),
        ("batch_norm-one-value", lambda: F.batch_norm(_a(1, 3), None, None, None, None, True), V,
         "more than 1"),
        ("batch_norm_backward-dy",
         lambda: F.batch_norm_backward(_a(2, 3, 6, 5), x4, None, *GOOD["batch_norm_backward"][1][3:]),
         V, "same shape"),
        ("batch_norm_backward-mean",
         lambda: F.batch_norm_backward(_a(2, 3, 6, 6), x4, None, _a(4), _a(3)), V, "save_mean"),
        ("dropout-p-neg", lambda: F.dropout(_a(4), -0.1), V, "p"),
        ("dropout-p-big", lambda: F.dropout(_a(4), 1.5), V, "p"),
        ("dropout-p-nan", lambda: F.dropout(_a(4), float("nan")), V, "p"),
        ("dropout-p-str", lambda: F.dropout(_a(4), "0.5"), T, "p"),
        ("dropout-seed-neg", lambda: F.dropout(_a(4), 0.5, seed=-1), V, "seed"),
        ("dropout-seed-float", lambda: F.dropout(_a(4), 0.5, seed=1.5), T, "seed"),
        ("dropout_backward-mask", lambda: F.dropout_backward(_a(4, 5), np.ones((5, 4), np.uint8),
                                                             0.5), V, "mask"),
        ("cross_entropy-1d", lambda: F.cross_entropy(_a(5), np.array([1])), V, "2-D"),
        ("cross_entropy-labels-shape", lambda: F.cross_entropy(_a(4, 5), np.array([0, 1])), V,
         "labels"),
        ("cross_entropy-label-high", lambda: F.cross_entropy(_a(2, 5), np.array([0, 5])), V,
         "labels"),
        ("cross_entropy-label-neg", lambda: F.cross_entropy(_a(2, 5), np.array([0, -100])), V,
         "labels"),
        ("cross_entropy-no-classes", lambda: F.cross_entropy(_a(2, 0), np.array([0, 0])), V,
         "class"),
        ("cross_entropy_backward-label-high",
         lambda: F.cross_entropy_backward(_a(2, 5), np.array([7, 0])), V, "labels"),
        ("lstm_cell-x-3d", lambda: F.lstm_cell(_a(1, 2, 3), _a(2, 4), _a(2, 4), _a(16, 3),
                                               _a(16, 4)), V, "2-D"),
        ("lstm_cell-w_hh", lambda: F.lstm_cell(_a(2, 3), _a(2, 4), _a(2, 4), _a(16, 3),
                                               _a(12, 4)), V, "w_hh"),
        ("lstm_cell-w_ih", lambda: F.lstm_cell(_a(2, 3), _a(2, 4), _a(2, 4), _a(16, 2),
                                               _a(16, 4)), V, "w_ih"),
        ("lstm_cell-h", lambda: F.lstm_cell(_a(2, 3), _a(3, 4), _a(2, 4), _a(16, 3), _a(16, 4)),
         V, "h"),
        ("lstm_cell-bias", lambda: F.lstm_cell(_a(2, 3), _a(2, 4), _a(2, 4), _a(16, 3),
                                               _a(16, 4), _a(15)), V, "b_ih"),
        ("sgd_step-shapes", lambda: F.sgd_step(_a(3, 4), _a(4, 3), lr=0.1), V, "shape"),
        ("sgd_step-lr-neg", lambda: F.sgd_step(_a(3, 4), _a(3, 4), lr=-1.0), V, "lr"),
        ("sgd_step-no-velocity", lambda: F.sgd_step(_a(3, 4), _a(3, 4), lr=0.1, momentum=0.9),
         V, "velocity"),
        ("sgd_step-aliased", lambda: F.sgd_step(*[_a(3, 4)] * 2, lr=0.1), V, "share memory"),
        ("sgd_step-param-1d-strided", lambda: F.sgd_step(_a(8)[::2], _a(4), lr=0.1), V,
         "C-contiguous"),
        ("lstm_cell-algo", lambda: F.lstm_cell(*GOOD["lstm_cell"][1], algo="magic"), V, "algo"),
        ("lstm_cell_backward-gates",
         lambda: F.lstm_cell_backward(*GOOD["lstm_cell_backward"][1][:7], _a(2, 12)), V, "gates"),
        ("lstm_cell_backward-dh1",
         lambda: F.lstm_cell_backward(_a(3, 4), *GOOD["lstm_cell_backward"][1][1:]), V, "h"),
        ("lstm-x-2d", lambda: F.lstm(_a(2, 3), _a(2, 4), _a(2, 4), _a(16, 3), _a(16, 4)), V,
         "3-D"),
        ("lstm-h0", lambda: F.lstm(_a(3, 2, 3), _a(2, 5), _a(2, 4), _a(16, 3), _a(16, 4)), V,
         "w_ih|h"),
        ("lstm_backward-dy", lambda: F.lstm_backward(_a(3, 2, 5), _a(2, 4), _a(2, 4),
                                                     GOOD["lstm_backward"][1][3]), V, "dy"),
        ("lstm_backward-cache", lambda: F.lstm_backward(_a(3, 2, 4), _a(2, 4), _a(2, 4),
                                                        {"y": 1}), T, "cache"),
    ]
    return rows


ROWS = _rows()


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_argument(row):
    _, thunk, exc, fragment = row
    with pytest.raises(exc, match=fragment):
        thunk()


# ---- rows 8-9: empty batch and NaN/Inf, against PyTorch -----------------------------

def _t(torch, a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _same(got, want):
    want = want.detach().numpy() if hasattr(want, "detach") else np.asarray(want)
    assert np.shape(got) == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, equal_nan=True)


def _torch_rows():
    def conv_empty(torch):
        x, w = _a(0, 3, 6, 6), _a(4, 3, 3, 3)
        _same(F.conv2d(x, w, stride=2, padding=1),
              torch.nn.functional.conv2d(_t(torch, x), _t(torch, w), stride=2, padding=1))
        dx, dw, db = F.conv2d_backward(_a(0, 4, 3, 3), x, w, stride=2, padding=1)
        assert dx.shape == x.shape and not dw.any() and not db.any()

    def pool_empty(torch):
        x = _a(0, 3, 6, 6)
        y, idx = F.max_pool2d(x, 3, 2, 1)
        _same(y, torch.nn.functional.max_pool2d(_t(torch, x), 3, 2, 1))
        _same(F.max_pool2d_backward(y, idx, x.shape), np.zeros(x.shape))
        _same(F.avg_pool2d(x, 2), torch.nn.functional.avg_pool2d(_t(torch, x), 2))
        _same(F.avg_pool2d_backward(_a(0, 3, 3, 3), x.shape, 2), np.zeros(x.shape))
        _same(F.adaptive_avg_pool2d(x, 1), torch.nn.functional.adaptive_avg_pool2d(_t(torch, x), 1))
        _same(F.adaptive_avg_pool2d_backward(_a(0, 3, 1, 1), x.shape), np.zeros(x.shape))

    def im2col_empty(torch):
        x = _a(0, 3, 6, 6)
        cols = F.im2col(x, 3)
        _same(cols, torch.nn.functional.unfold(_t(torch, x), 3))
        _same(F.col2im(cols, x.shape, 3), torch.nn.functional.fold(_t(torch, cols), (6, 6), 3))

    def linear_empty(torch):
        x, w, b = _a(0, 4), _a(3, 4), _a(3)
        _same(F.linear(x, w, b), torch.nn.functional.linear(_t(torch, x), _t(torch, w),
                                                            _t(torch, b)))
        dx, dw, db = F.linear_backward(_a(0, 3), x, w)
        assert dx.shape == (0, 4) and not dw.any() and not db.any()
        _same(F.gemm(_a(0, 4), _a(4, 3)), np.zeros((0, 3)))
        _same(F.gemm(_a(3, 0), _a(0, 2)), np.zeros((3, 2)))

    def bn_empty(torch):
        x = _a(0, 3, 4, 4)
        rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
        y, mean, invstd = F.batch_norm(x, rm, rv, None, None, True)
        assert y.shape == x.shape and np.isnan(mean).all()
        assert (rm == 0).all() and (rv == 1).all()  # running statistics untouched
        y, _, _ = F.batch_norm(x, rm, rv, None, None, False)
        assert y.shape == x.shape

    def ce_empty(torch):
        loss, probs = F.cross_entropy(_a(0, 5), np.zeros(0, np.int64))
        want = torch.nn.functional.cross_entropy(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long))
        assert np.isnan(loss) and np.isnan(want.item()) and probs.shape == (0, 5)
        assert F.cross_entropy_backward(probs, np.zeros(0, np.int64)).shape == (0, 5)

    def lstm_empty(torch):
        h, c = _a(0, 4), _a(0, 4)
        h1, c1, gates = F.lstm_cell(_a(0, 3), h, c, _a(16, 3), _a(16, 4))
        assert h1.shape == (0, 4) and gates.shape == (0, 16)
        y, hn, cn, cache = F.lstm(_a(0, 2, 3), _a(2, 4), _a(2, 4), _a(16, 3), _a(16, 4))
        assert y.shape == (0, 2, 4)
        dx, dh0, *_ = F.lstm_backward(y, hn, cn, cache)
        assert dx.shape == (0, 2, 3)
        np.testing.assert_array_equal(dh0, hn)  # no step: the gradient passes through

    def elementwise_empty(torch):
        x = _a(0, 5)
        assert F.relu(x).shape == (0, 5) and F.relu_backward(x, x).shape == (0, 5)
        y, mask = F.dropout(x, 0.5, seed=3)
        assert y.shape == (0, 5) and F.dropout_backward(y, mask, 0.5).shape == (0, 5)

    def _special(shape, seed=0):
        x = _a(*shape, seed=seed)
        flat = x.reshape(-1)
        flat[:: max(1, flat.size // 5)][:3] = [np.nan, np.inf, -np.inf]
        return x

    def relu_nan(torch):
        x = _special((4, 7))
        _same(F.relu(x), torch.relu(_t(torch, x)))

    def gemm_nan(torch):
        a, b = _special((5, 6)), _a(6, 4)
        _same(F.gemm(a, b), _t(torch, a) @ _t(torch, b))
        c = np.full((5, 4), np.nan, np.float32)  # beta = 0 ignores c, NaN included
        _same(F.gemm(_a(5, 6), b, c, beta=0.0), _t(torch, _a(5, 6)) @ _t(torch, b))
        x, w = _special((3, 6)), _a(2, 6)
        _same(F.linear(x, w), torch.nn.functional.linear(_t(torch, x), _t(torch, w)))

    def conv_nan(torch):
        x, w = _special((2, 3, 7, 7)), _a(4, 3, 3, 3)
        _same(F.conv2d(x, w, padding=1),
              torch.nn.functional.conv2d(_t(torch, x), _t(torch, w), padding=1))
        _same(F.im2col(x, 3, padding=1), torch.nn.functional.unfold(_t(torch, x), 3, padding=1))

    def pool_nan(torch):
        x = _special((2, 3, 7, 7))
        y, idx = F.max_pool2d(x, 3, 2, 1)
        ty, tidx = torch.nn.functional.max_pool2d(_t(torch, x), 3, 2, 1, return_indices=True)
        _same(y, ty)
        np.testing.assert_array_equal(idx, tidx.numpy())
        _same(F.avg_pool2d(x, 3, 2, 1), torch.nn.functional.avg_pool2d(_t(torch, x), 3, 2, 1))
        _same(F.adaptive_avg_pool2d(x, 3),
              torch.nn.functional.adaptive_avg_pool2d(_t(torch, x), 3))

    def bn_nan(torch):
        x = _special((4, 3, 3, 3))
        y, _, _ = F.batch_norm(x, None, None, None, None, True)
        _same(y, torch.nn.functional.batch_norm(_t(torch, x), None, None, training=True))

    def ce_inf(torch):
        logits, labels = _a(4, 5), np.array([0, 1, 2, 3])
        logits[0, 0] = np.inf
        logits[1, 2] = -np.inf
        logits[2, 1] = np.nan
        loss, probs = F.cross_entropy(logits, labels)
        tl = torch.nn.functional.cross_entropy(_t(torch, logits), torch.from_numpy(labels))
        _same(np.float32(loss), tl)
        _same(probs, torch.softmax(_t(torch, logits), 1))

    def dropout_nan(torch):
        x = _special((6, 6))
        y, mask = F.dropout(x, 0.5, seed=5)
        # kept elements carry NaN/Inf through; dropped ones are multiplied by 0 (NaN for inf)
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(y, x * mask * np.float32(2.0))

    def lstm_nan(torch):
        x = _special((3, 2, 3))
        w_ih, w_hh = _a(16, 3), _a(16, 4)
        h0, c0 = _a(1, 2, 4), _a(1, 2, 4)
        y, hn, cn, _ = F.lstm(x, h0[0], c0[0], w_ih, w_hh)
        lstm = torch.nn.LSTM(3, 4, bias=False)
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(_t(torch, w_ih))
            lstm.weight_hh_l0.copy_(_t(torch, w_hh))
            ty, (thn, tcn) = lstm(_t(torch, x), (_t(torch, h0), _t(torch, c0)))
        _same(y, ty)
        _same(cn, tcn[0])

    def sgd_nan(torch):
        param, grad = _special((6, 6)), _special((6, 6))[::-1].copy()
        theirs = torch.nn.Parameter(_t(torch, param))
        theirs.grad = _t(torch, grad)
        torch.optim.SGD([theirs], lr=0.1, momentum=0.9, weight_decay=0.01,
                        nesterov=True).step()
        F.sgd_step(param, grad, np.empty_like(param), lr=0.1, momentum=0.9, weight_decay=0.01,
                   nesterov=True, first_step=True)
        _same(param, theirs)

    def sgd_empty(torch):
        param = _a(0, 5)
        F.sgd_step(param, _a(0, 5), _a(0, 5), lr=0.1, momentum=0.9)
        assert param.shape == (0, 5)

    return [("empty-conv2d", conv_empty), ("empty-pool", pool_empty),
            ("empty-im2col-col2im", im2col_empty), ("empty-linear-gemm", linear_empty),
            ("empty-batch_norm", bn_empty), ("empty-cross_entropy", ce_empty),
            ("empty-lstm", lstm_empty), ("empty-elementwise", elementwise_empty),
            ("nan-relu", relu_nan), ("nan-gemm-linear", gemm_nan), ("nan-conv2d-im2col", conv_nan),
            ("nan-pool", pool_nan), ("nan-batch_norm", bn_nan), ("inf-cross_entropy", ce_inf),
            ("nan-dropout", dropout_nan), ("nan-lstm", lstm_nan), ("nan-sgd_step", sgd_nan),
            ("empty-sgd_step", sgd_empty)]


TORCH_ROWS = _torch_rows()


@pytest.mark.parametrize("row", TORCH_ROWS, ids=[r[0] for r in TORCH_ROWS])
def test_same_as_torch(row, torch):
    row[1](torch)


# ---- row 10: absurd sizes, in a child process under an address-space limit ----------

# id: (code run in the child, None or a check on its result `r`). With None the
# call must raise a clear MemoryError, ValueError or OverflowError; with a check
# it may raise one of those or return a result the check accepts (PyTorch's).
ABSURD = {
    "relu-broadcast-2^40": ("F.relu(np.broadcast_to(np.float32(1), (2**40,)))", None),
    "gemm-out-2^62": ("F.gemm(np.empty((2**31, 0), np.float32), np.empty((0, 2**31), np.float32))",
                      None),
    "linear-out-2^40": ("F.linear(np.ones((2**20, 1), np.float32), "
                        "np.broadcast_to(np.ones((1, 1), np.float32), (2**20, 1)))", None),
    "linear_backward-2^40": ("F.linear_backward(np.broadcast_to(np.float32(1), (2**20, 2**20)), "
                             "np.ones((2**20, 1), np.float32), np.ones((2**20, 1), np.float32))",
                             None),
    "conv2d-stride-2^62": ("F.conv2d(x, np.ones((1, 3, 1, 1), np.float32), stride=2**62)",
                           "r.shape == (1, 1, 1, 1) and r[0, 0, 0, 0] == 3"),
    "conv2d-padding-2^40": ("F.conv2d(x, np.ones((1, 3, 1, 1), np.float32), padding=2**40)", None),
    "conv2d-padding-2^70": ("F.conv2d(x, np.ones((1, 3, 1, 1), np.float32), padding=2**70)", None),
    "conv2d-dilation-2^62": ("F.conv2d(x, np.ones((1, 3, 2, 2), np.float32), dilation=2**62, "
                             "padding=2**61)", "r.shape == (1, 1, 5, 5) and not r.any()"),
    "conv2d-kernel-2^31": ("F.conv2d(x, np.broadcast_to(np.float32(1), (1, 3, 2**31, 1)), "
                           "padding=(2**30, 0))", None),
    "conv2d_backward-padding-2^40": ("F.conv2d_backward(np.ones((1, 1, 5, 5), np.float32), x, "
                                     "np.ones((1, 3, 2, 2), np.float32), dilation=2**40, "
                                     "padding=2**39)", None),
    "im2col-kernel-2^31": ("F.im2col(x, (2**31, 1), padding=(2**30, 0))", None),
    "im2col-padding-2^20": ("F.im2col(x, 3, padding=2**20)", None),
    "im2col-stride-2^62-padding-2^61": ("F.im2col(x, 3, stride=2**62, padding=2**61)", None),
    "im2col-stride-2^62": ("F.im2col(x, 3, stride=2**62)",
                           "(r == x[:, :, :3, :3].reshape(1, 27, 1)).all()"),
    "col2im-stride-2^62": ("F.col2im(np.ones((1, 27, 1), np.float32), x.shape, 3, stride=2**62)",
                           "r[0, :, :3, :3].all() and not r[0, :, 3:].any()"),
    "conv2d_backward-stride-2^62": ("F.conv2d_backward(np.ones((1, 1, 1, 1), np.float32), x, "
                                    "np.ones((1, 3, 2, 2), np.float32), stride=2**62)",
                                    "r[0][0, :, :2, :2].all() and r[1].all() and r[2][0] == 1"),
    "col2im-shape-2^40": ("F.col2im(np.ones((1, 9, 1), np.float32), (1, 1, 2**40, 2**40), 3, "
                          "stride=2**41)", None),
    "max_pool2d-kernel-2^62": ("F.max_pool2d(x, 2**62)", None),
    "max_pool2d-padding-2^40": ("F.max_pool2d(x, 2**41, padding=2**40)",
                                "r[0].shape == (1, 3, 1, 1) and (r[0] == 1).all()"),
    "avg_pool2d-padding-2^40": ("F.avg_pool2d(x, 2**41, stride=1, padding=2**40)", None),
    "avg_pool2d-kernel-2^32": ("F.avg_pool2d(x, 2**32, stride=1, padding=2**31)", None),
    "avg_pool2d_backward-shape-2^40": ("F.avg_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), "
                                       "(1, 1, 2**40, 2**40), 2**40)", None),
    "max_pool2d_backward-shape-2^40": ("F.max_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), "
                                       "np.zeros((1, 1, 1, 1), np.int64), (1, 1, 2**40, 2**40))",
                                       None),
    "adaptive_avg_pool2d-out-2^40": ("F.adaptive_avg_pool2d(x, 2**40)", None),
    "adaptive_avg_pool2d_backward-shape-2^40": (
        "F.adaptive_avg_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), (1, 1, 2**40, 2**40))",
        None),
    "batch_norm-broadcast-2^40": ("F.batch_norm(np.broadcast_to(np.float32(1), (2**20, 2, 2**20)),"
                                  " None, None, None, None, True)", None),
    "dropout-seed-2^64": ("F.dropout(x, 0.5, seed=2**64)", None),
    "sgd_step-grad-2^40": ("F.sgd_step(np.ones(4, np.float32), "
                           "np.broadcast_to(np.float32(1), (2**40,)), lr=0.1)", None),
    "cross_entropy-2^40": ("F.cross_entropy(np.broadcast_to(np.float32(1), (2**20, 2**20)), "
                           "np.zeros(2**20, np.int64))", None),
    "lstm-hidden-2^20": ("F.lstm(np.ones((1, 1, 1), np.float32), np.ones((1, 2**20), np.float32), "
                         "np.ones((1, 2**20), np.float32), "
                         "np.broadcast_to(np.float32(1), (2**22, 1)), "
                         "np.broadcast_to(np.float32(1), (2**22, 2**20)))", None),
    "lstm_cell-hidden-2^20": ("F.lstm_cell(np.ones((1, 1), np.float32), "
                              "np.ones((1, 2**20), np.float32), np.ones((1, 2**20), np.float32), "
                              "np.broadcast_to(np.float32(1), (2**22, 1)), "
                              "np.broadcast_to(np.float32(1), (2**22, 2**20)))", None),
}

_CHILD = textwrap.dedent("""
    import json, os, resource, sys
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):  # ASan needs terabytes of shadow
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    import numpy as np
    import pykernels.functional as F
    x = np.ones((1, 3, 5, 5), np.float32)
    rows = json.loads(sys.argv[1])
    for name, (code, check) in rows.items():
        print(json.dumps([name, "started"]), flush=True)
        try:
            r = eval(code)
            if check is None:
                outcome = "returned without an exception"
            else:
                outcome = "ok result" if eval(check) else "wrong result"
        except (MemoryError, ValueError, OverflowError) as exc:
            outcome = "ok " + type(exc).__name__ + ": " + str(exc)[:200]
        except Exception as exc:
            outcome = "wrong exception " + type(exc).__name__ + ": " + str(exc)[:200]
        print(json.dumps([name, outcome]), flush=True)
""")


@pytest.fixture(scope="module")
def absurd_outcomes():
    """Runs the rows in a child; when one kills the child, records how and
    starts a new child at the next row."""
    env = dict(os.environ, OMP_NUM_THREADS="2")
    outcomes = {}
    while len(outcomes) < len(ABSURD):
        todo = {k: v for k, v in ABSURD.items() if k not in outcomes}
        proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(todo)], cwd=tempfile.gettempdir(), env=env,
                              capture_output=True, text=True, timeout=300)
        for line in proc.stdout.splitlines():
            if line.startswith("["):
                name, outcome = json.loads(line)
                outcomes[name] = outcome
        running = [k for k, v in outcomes.items() if v == "started"]
        for name in running:
            outcomes[name] = f"child died with exit code {proc.returncode}: {proc.stderr[-500:]}"
        if not running and len(outcomes) < len(ABSURD):  # died before starting a row
            outcomes.update({k: f"child failed: {proc.stderr[-500:]}" for k in todo})
    return outcomes


@pytest.mark.parametrize("name", sorted(ABSURD))
def test_absurd_size(name, absurd_outcomes):
    assert absurd_outcomes[name].startswith("ok "), f"{name}: {absurd_outcomes[name]}"


# ---- GPU: arguments checked before any launch; OOM leaves the process usable -------------
# (skipped without a GPU and CuPy; they run in a child so a poisoned CUDA
# context cannot affect the rest of the session)

_GPU_CHILD = textwrap.dedent("""
    import cupy, numpy as np, pykernels.functional as F
    x = cupy.arange(-8, 8, dtype=cupy.float32)
    bad_calls = [(lambda: F.relu(x, out=cupy.empty(3, cupy.float32)), ValueError),
                 (lambda: F.relu(x.astype(cupy.float64)), TypeError),
                 (lambda: F.relu_backward(x, x[:4]), ValueError),
                 (lambda: F.relu(x, out=np.empty(16, np.float32)), TypeError),
                 (lambda: F.conv2d(x.reshape(1, 1, 4, 4), cupy.ones((1, 2, 3, 3), cupy.float32)),
                  ValueError)]
    for case, (bad, exc) in enumerate(bad_calls):
        try:
            bad()
            raise SystemExit(f"no {exc.__name__} from bad call {case}")
        except exc:
            pass
    try:  # far more than any GPU holds
        cupy.empty(2**48, cupy.float32)
        raise SystemExit("no OOM")
    except cupy.cuda.memory.OutOfMemoryError:
        pass
    assert (F.relu(x).get() == np.maximum(np.arange(-8, 8), 0)).all()  # still usable
    print("ok")
""")


@pytest.mark.gpu
def test_gpu_checks_before_launch_and_survives_oom():
    proc = subprocess.run([sys.executable, "-c", _GPU_CHILD], cwd=tempfile.gettempdir(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]

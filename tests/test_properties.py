"""Property-based tests: every public op of pykernels.functional against its
NumPy reference (computed in float64) on shapes and parameters drawn by
hypothesis, edge cases included (size 1, primes, empty batch, stride above the
kernel, kernel equal to the padded input).

Profiles are registered in conftest.py: "ci" (default, 200 examples per op,
derandomized so CI is reproducible) and "deep" (5000 examples, random), picked
with PYKERNELS_HYPOTHESIS_PROFILE=deep. Shapes are kept tiny so that 200
examples of every op run in well under a minute on two cores.

Array values come from a NumPy generator seeded by hypothesis: shrinking then
works on shapes and parameters, and a failure reproduces from its seed.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pykernels.functional as F  # noqa: E402
import pykernels.reference as R  # noqa: E402

EXAMPLES = collections.Counter()  # op -> examples run, checked at module teardown
SEEDS = st.integers(0, 2**32 - 1)
DIM = st.sampled_from([1, 2, 3, 5, 7, 8, 13])        # 1, primes, a power of two
SMALL = st.sampled_from([1, 2, 3, 5])
BATCH = st.sampled_from([0, 1, 2, 3])                # empty batch included


def _count(op):
    EXAMPLES[op] += 1


@pytest.fixture(scope="module", autouse=True)
def _examples_per_op():
    yield
    wanted = settings().max_examples
    report = ", ".join(f"{op}={n}" for op, n in sorted(EXAMPLES.items()))
    print(f"\nhypothesis examples per op (profile max_examples={wanted}): {report}")
    # Hypothesis stops early only when it has exhausted the search space.
    short = {op: n for op, n in EXAMPLES.items() if n < min(wanted, 100)}
    assert not short, f"ops ran too few examples: {short}"


def _arr(rng, shape, scale=1.0):
    """float32 values in [-scale, scale) with no exact zeros."""
    x = rng.uniform(-scale, scale, size=shape).astype(np.float32)
    x[x == 0] = 0.25 * scale
    return x


def _f64(*arrays):
    return [None if a is None else np.asarray(a, np.float64) for a in arrays]


def _close(actual, expected, terms=1, name=""):
    """float32 result vs float64 reference: error grows with the summed terms."""
    expected = np.asarray(expected)
    assert np.shape(actual) == expected.shape, f"{name}: shape {np.shape(actual)} != " \
                                               f"{expected.shape}"
    tol = 2e-6 * max(1, terms) + 1e-5
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=1e-4, atol=tol,
                               err_msg=name)


# ---- elementwise --------------------------------------------------------------

SHAPES = st.lists(st.sampled_from([0, 1, 2, 3, 7, 16, 17]), min_size=0, max_size=4).map(tuple)


@given(shape=SHAPES, seed=SEEDS, special=st.booleans())
def test_relu(shape, seed, special):
    _count("relu")
    rng = np.random.default_rng(seed)
    x = _arr(rng, shape)
    if special and x.size:
        x.flat[rng.integers(0, x.size, size=3)] = rng.choice([np.nan, np.inf, -np.inf, -0.0], 3)
    np.testing.assert_array_equal(F.relu(x), R.relu(x))


@given(shape=SHAPES, seed=SEEDS)
def test_relu_backward(shape, seed):
    _count("relu_backward")
    rng = np.random.default_rng(seed)
    dy, y = _arr(rng, shape), np.asarray(np.maximum(_arr(rng, shape), 0), np.float32)
    np.testing.assert_array_equal(F.relu_backward(dy, y), R.relu_backward(dy, y))


# ---- GEMM and linear --------------------------------------------------------------

GEMM_DIM = st.sampled_from([0, 1, 2, 3, 5, 7, 8, 16, 17, 31, 33, 64, 67])


@given(m=GEMM_DIM, n=GEMM_DIM, k=GEMM_DIM, trans_a=st.booleans(), trans_b=st.booleans(),
       algo=st.sampled_from(["auto", "naive", "blocked", "packed"]),
       alpha=st.sampled_from([1.0, -0.5, 2.0, 0.0]), beta=st.sampled_from([0.0, 1.0, -1.5]),
       seed=SEEDS)
def test_gemm(m, n, k, trans_a, trans_b, algo, alpha, beta, seed):
    _count("gemm")
    rng = np.random.default_rng(seed)
    a = _arr(rng, (k, m) if trans_a else (m, k))
    b = _arr(rng, (n, k) if trans_b else (k, n))
    c0 = _arr(rng, (m, n))
    c = c0.copy()
    out = F.gemm(a, b, c, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b, algo=algo)
    assert out is c
    a64, b64, c64 = _f64(a, b, c0)
    expected = R.gemm(a64, b64, c64, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b)
    _close(out, expected, k * 2, "gemm")


@given(lead=st.lists(st.sampled_from([0, 1, 2, 3, 5]), max_size=2).map(tuple), i=DIM,
       o=DIM, bias=st.booleans(), seed=SEEDS)
def test_linear(lead, i, o, bias, seed):
    _count("linear")
    rng = np.random.default_rng(seed)
    x, w = _arr(rng, (*lead, i)), _arr(rng, (o, i))
    b = _arr(rng, (o,)) if bias else None
    _close(F.linear(x, w, b), R.linear(*_f64(x, w, b)), i, "linear")


@given(lead=st.lists(st.sampled_from([0, 1, 2, 3, 5]), max_size=2).map(tuple), i=DIM,
       o=DIM, seed=SEEDS)
def test_linear_backward(lead, i, o, seed):
    _count("linear_backward")
    rng = np.random.default_rng(seed)
    x, w, dy = _arr(rng, (*lead, i)), _arr(rng, (o, i)), _arr(rng, (*lead, o))
    rows = int(np.prod(lead))
    for got, want, terms in zip(F.linear_backward(dy, x, w), R.linear_backward(*_f64(dy, x, w)),
                                (o, rows, rows)):
        _close(got, want, terms, "linear_backward")


# ---- convolution ------------------------------------------------------------------

@st.composite
def conv_cases(draw):
    """A valid conv2d call; about one case in five has the (dilated) kernel
    exactly as large as the padded input, and strides reach past the kernel."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c = groups * draw(st.sampled_from([1, 2, 3]))
    o = groups * draw(st.sampled_from([1, 2, 3]))
    kh, kw = draw(SMALL), draw(SMALL)
    sh, sw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if draw(st.integers(0, 4)) == 0:  # kernel equal to the padded input
        ph, pw = min(ph, (span_h - 1) // 2), min(pw, (span_w - 1) // 2)
        h, w = span_h - 2 * ph, span_w - 2 * pw
    else:
        h = draw(st.integers(max(1, span_h - 2 * ph), span_h - 2 * ph + 12))
        w = draw(st.integers(max(1, span_w - 2 * pw), span_w - 2 * pw + 12))
    n = draw(BATCH)
    return dict(n=n, c=c, o=o, h=h, w=w, k=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                dilation=(dh, dw), groups=groups)


def _out_hw(case):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (case["k"], case["stride"], case["padding"],
                                              case["dilation"])
    return ((case["h"] + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
            (case["w"] + 2 * pw - dw * (kw - 1) - 1) // sw + 1)


def _conv_args(case):
    return dict(stride=case["stride"], padding=case["padding"], dilation=case["dilation"],
                groups=case["groups"])


@given(case=conv_cases(), bias=st.booleans(), seed=SEEDS)
def test_conv2d(case, bias, seed):
    _count("conv2d")
    rng = np.random.default_rng(seed)
    x = _arr(rng, (case["n"], case["c"], case["h"], case["w"]))
    wt = _arr(rng, (case["o"], case["c"] // case["groups"], *case["k"]))
    b = _arr(rng, (case["o"],)) if bias else None
    terms = wt[0].size
    _close(F.conv2d(x, wt, b, **_conv_args(case)),
           R.conv2d(*_f64(x, wt, b), **_conv_args(case)), terms, "conv2d")


@given(case=conv_cases(), seed=SEEDS)
def test_conv2d_backward(case, seed):
    _count("conv2d_backward")
    rng = np.random.default_rng(seed)
    x = _arr(rng, (case["n"], case["c"], case["h"], case["w"]))
    wt = _arr(rng, (case["o"], case["c"] // case["groups"], *case["k"]))
    dy = _arr(rng, (case["n"], case["o"], *_out_hw(case)))
    got = F.conv2d_backward(dy, x, wt, **_conv_args(case))
    want = R.conv2d_backward(*_f64(dy, x, wt), **_conv_args(case))
    terms = (case["o"] * wt[0, 0].size, dy[:, 0].size, dy[:, 0].size)
    for g, e, t, name in zip(got, want, terms, ("dx", "dweight", "dbias")):
        _close(g, e, t, f"conv2d_backward {name}")


@given(case=conv_cases(), chw=st.booleans(), seed=SEEDS)
def test_im2col(case, chw, seed):
    _count("im2col")
    rng = np.random.default_rng(seed)
    x = _arr(rng, (max(case["n"], 1), case["c"], case["h"], case["w"]))
    args = (case["k"], case["stride"], case["padding"], case["dilation"])
    if chw:
        np.testing.assert_array_equal(F.im2col(x[0], *args), R.im2col(x, *args)[0])
    else:
        np.testing.assert_array_equal(F.im2col(x, *args), R.im2col(x, *args))


@given(case=conv_cases(), seed=SEEDS)
def test_col2im(case, seed):
    _count("col2im")
    rng = np.random.default_rng(seed)
    shape = (case["n"], case["c"], case["h"], case["w"])
    oh, ow = _out_hw(case)
    cols = _arr(rng, (case["n"], case["c"] * case["k"][0] * case["k"][1], oh * ow))
    args = (case["k"], case["stride"], case["padding"], case["dilation"])
    terms = case["k"][0] * case["k"][1]
    _close(F.col2im(cols, shape, *args), R.col2im(*_f64(cols), shape, *args), terms, "col2im")


# ---- pooling ------------------------------------------------------------------------

@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 7), st.integers(1, 7))))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    if draw(st.integers(0, 4)) == 0:  # kernel equal to the padded input
        h, w = kh - 2 * ph, kw - 2 * pw
        if h < 1 or w < 1:
            ph, pw, h, w = 0, 0, kh, kw
    else:
        h = draw(st.integers(max(1, kh - 2 * ph), kh + 11))
        w = draw(st.integers(max(1, kw - 2 * pw), kw + 11))
    shape = (draw(BATCH), draw(st.sampled_from([1, 2, 3, 5])), h, w)
    if draw(st.integers(0, 5)) == 0:
        shape = shape[1:]  # CHW input
    return dict(shape=shape, k=(kh, kw), stride=stride, padding=(ph, pw))


def _pool_out(case):
    k, p = case["k"], case["padding"]
    s = case["stride"] or k
    h, w = case["shape"][-2:]
    return (*case["shape"][:-2], (h + 2 * p[0] - k[0]) // s[0] + 1,
            (w + 2 * p[1] - k[1]) // s[1] + 1)


@given(case=pool_cases(), seed=SEEDS, nan=st.booleans())
def test_max_pool2d(case, seed, nan):
    _count("max_pool2d")
    rng = np.random.default_rng(seed)
    x = _arr(rng, case["shape"])
    if nan and x.size:
        x.flat[rng.integers(0, x.size)] = np.nan
    y, idx = F.max_pool2d(x, case["k"], case["stride"], case["padding"])
    y_ref, idx_ref = R.max_pool2d(x, case["k"], case["stride"], case["padding"])
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)


@given(case=pool_cases(), seed=SEEDS)
def test_max_pool2d_backward(case, seed):
    _count("max_pool2d_backward")
    rng = np.random.default_rng(seed)
    x = _arr(rng, case["shape"])
    _, idx = R.max_pool2d(x, case["k"], case["stride"], case["padding"])
    dy = _arr(rng, idx.shape)
    terms = int(np.prod(case["k"]))
    _close(F.max_pool2d_backward(dy, idx, case["shape"]),
           R.max_pool2d_backward(*_f64(dy), idx, case["shape"]), terms, "max_pool2d_backward")


@given(case=pool_cases(), seed=SEEDS)
def test_avg_pool2d(case, seed):
    _count("avg_pool2d")
    rng = np.random.default_rng(seed)
    x = _arr(rng, case["shape"])
    args = (case["k"], case["stride"], case["padding"])
    _close(F.avg_pool2d(x, *args), R.avg_pool2d(*_f64(x), *args), int(np.prod(case["k"])),
           "avg_pool2d")


@given(case=pool_cases(), seed=SEEDS)
def test_avg_pool2d_backward(case, seed):
    _count("avg_pool2d_backward")
    rng = np.random.default_rng(seed)
    dy = _arr(rng, _pool_out(case))
    args = (case["k"], case["stride"], case["padding"])
    _close(F.avg_pool2d_backward(dy, case["shape"], *args),
           R.avg_pool2d_backward(*_f64(dy), case["shape"], *args), int(np.prod(case["k"])),
           "avg_pool2d_backward")


@st.composite
def adaptive_cases(draw):
    h, w = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    out = draw(st.one_of(st.integers(1, 15),
                         st.tuples(st.one_of(st.none(), st.integers(1, 15)),
                                   st.one_of(st.none(), st.integers(1, 15)))))
    shape = (draw(BATCH), draw(st.sampled_from([1, 2, 3])), h, w)
    if draw(st.booleans()):
        shape = shape[1:]
    return shape, out


@given(case=adaptive_cases(), seed=SEEDS)
def test_adaptive_avg_pool2d(case, seed):
    _count("adaptive_avg_pool2d")
    shape, out = case
    x = _arr(np.random.default_rng(seed), shape)
    _close(F.adaptive_avg_pool2d(x, out), R.adaptive_avg_pool2d(*_f64(x), out), 13 * 13,
           "adaptive_avg_pool2d")


@given(case=adaptive_cases(), seed=SEEDS)
def test_adaptive_avg_pool2d_backward(case, seed):
    _count("adaptive_avg_pool2d_backward")
    shape, out = case
    rng = np.random.default_rng(seed)
    out_shape = R.adaptive_avg_pool2d(np.zeros(shape), out).shape
    dy = _arr(rng, out_shape)
    _close(F.adaptive_avg_pool2d_backward(dy, shape),
           R.adaptive_avg_pool2d_backward(*_f64(dy), shape), 15 * 15,
           "adaptive_avg_pool2d_backward")


# ---- batch norm, dropout, cross-entropy -----------------------------------------------

BN_SHAPES = st.one_of(
    st.tuples(st.sampled_from([2, 3, 5, 8]), DIM),                          # BatchNorm1d (N, C)
    st.tuples(st.sampled_from([1, 2, 3]), DIM, st.sampled_from([1, 2, 5])),  # (N, C, L)
    st.tuples(st.sampled_from([1, 2, 3]), DIM, SMALL, st.sampled_from([2, 3, 7])))


@given(shape=BN_SHAPES, training=st.booleans(), affine=st.booleans(), seed=SEEDS,
       momentum=st.sampled_from([0.0, 0.1, 0.5, 1.0]))
def test_batch_norm(shape, training, affine, seed, momentum):
    _count("batch_norm")
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = _arr(rng, shape, 3.0) + np.float32(rng.uniform(-2, 2))
    w, b = (_arr(rng, (c,)), _arr(rng, (c,))) if affine else (None, None)
    rm, rv = _arr(rng, (c,)), np.abs(_arr(rng, (c,))) + 0.5
    rm64, rv64 = _f64(rm, rv)
    if training and x.size == c:  # one value per channel: no variance, refused as by torch
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            F.batch_norm(x, rm, rv, w, b, training, momentum)
        return
    got = F.batch_norm(x, rm, rv, w, b, training, momentum)
    want = R.batch_norm(*_f64(x), rm64, rv64, *_f64(w, b), training, momentum)
    per = x.size // c
    for g, e, name in zip(got, want, ("y", "save_mean", "save_invstd")):
        _close(g, e, per, f"batch_norm {name}")
    _close(rm, rm64, per, "running_mean")
    _close(rv, rv64, per, "running_var")


@given(shape=BN_SHAPES, training=st.booleans(), affine=st.booleans(), seed=SEEDS)
def test_batch_norm_backward(shape, training, affine, seed):
    _count("batch_norm_backward")
    rng = np.random.default_rng(seed)
    c = shape[1]
    x, dy = _arr(rng, shape, 3.0), _arr(rng, shape)
    w = _arr(rng, (c,)) if affine else None
    mean = x.mean(axis=tuple(i for i in range(x.ndim) if i != 1)).astype(np.float32)
    invstd = (1.0 / np.sqrt(x.var(axis=tuple(i for i in range(x.ndim) if i != 1)) + 1e-5)
              ).astype(np.float32)
    got = F.batch_norm_backward(dy, x, w, mean, invstd, training=training)
    want = R.batch_norm_backward(*_f64(dy, x, w, mean, invstd), training=training)
    # a channel of (nearly) constant values has invstd up to 1/sqrt(eps) ~ 316,
    # which scales float32 rounding in dx by as much (found by the deep profile)
    terms = 4 * (x.size // c) * max(1.0, float(invstd.max()))
    for g, e, name in zip(got, want, ("dx", "dweight", "dbias")):
        _close(g, e, terms, f"batch_norm_backward {name}")


@given(shape=SHAPES, p=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), seed=SEEDS,
       training=st.booleans())
def test_dropout(shape, p, seed, training):
    _count("dropout")
    x = _arr(np.random.default_rng(seed), shape)
    y, mask = F.dropout(x, p, training, seed=seed)
    y_ref, mask_ref = R.dropout(x, p, training, seed=seed)
    np.testing.assert_array_equal(mask, mask_ref)
    np.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=0)


@given(shape=SHAPES, p=st.sampled_from([0.0, 0.1, 0.5, 0.9]), seed=SEEDS, eval_mode=st.booleans())
def test_dropout_backward(shape, p, seed, eval_mode):
    _count("dropout_backward")
    rng = np.random.default_rng(seed)
    dy = _arr(rng, shape)
    mask = None if eval_mode else np.asarray(rng.random(shape) > p, np.uint8)
    np.testing.assert_allclose(F.dropout_backward(dy, mask, p), R.dropout_backward(dy, mask, p),
                               rtol=1e-6, atol=0)


@given(n=BATCH.map(lambda b: b * 3), c=DIM, seed=SEEDS, scale=st.sampled_from([1.0, 30.0, 1e4]))
def test_cross_entropy(n, c, seed, scale):
    _count("cross_entropy")
    rng = np.random.default_rng(seed)
    logits = _arr(rng, (n, c), scale)
    labels = rng.integers(0, c, size=n)
    loss, probs = F.cross_entropy(logits, labels)
    loss_ref, probs_ref = R.cross_entropy(*_f64(logits), labels)
    if n == 0:
        assert np.isnan(loss)
    else:
        assert np.isfinite(loss)
        np.testing.assert_allclose(loss, loss_ref, rtol=1e-4, atol=1e-5 * scale)
    _close(probs, probs_ref, c, "probs")


@given(n=BATCH.map(lambda b: b * 3), c=DIM, seed=SEEDS)
def test_cross_entropy_backward(n, c, seed):
    _count("cross_entropy_backward")
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(c), size=n).astype(np.float32)
    labels = rng.integers(0, c, size=n)
    _close(F.cross_entropy_backward(probs, labels),
           R.cross_entropy_backward(*_f64(probs), labels), 1, "dlogits")


# ---- LSTM -----------------------------------------------------------------------------

def _lstm_weights(rng, inputs, hidden, biases):
    w_ih, w_hh = _arr(rng, (4 * hidden, inputs), 0.5), _arr(rng, (4 * hidden, hidden), 0.5)
    b_ih = _arr(rng, (4 * hidden,)) if biases else None
    b_hh = _arr(rng, (4 * hidden,)) if biases else None
    return w_ih, w_hh, b_ih, b_hh


@given(n=BATCH, i=DIM, hidden=st.sampled_from([1, 2, 3, 5, 8, 17]), biases=st.booleans(),
       algo=st.sampled_from(["fused", "naive"]), seed=SEEDS)
def test_lstm_cell(n, i, hidden, biases, algo, seed):
    _count("lstm_cell")
    rng = np.random.default_rng(seed)
    x, h, c = _arr(rng, (n, i)), _arr(rng, (n, hidden)), _arr(rng, (n, hidden))
    weights = _lstm_weights(rng, i, hidden, biases)
    got = F.lstm_cell(x, h, c, *weights, algo=algo)
    want = R.lstm_cell(*_f64(x, h, c, *weights))
    for g, e, name in zip(got, want, ("h1", "c1", "gates")):
        _close(g, e, i + hidden, f"lstm_cell {name}")


@given(n=BATCH, i=DIM, hidden=st.sampled_from([1, 2, 3, 5, 8, 17]), seed=SEEDS)
def test_lstm_cell_backward(n, i, hidden, seed):
    _count("lstm_cell_backward")
    rng = np.random.default_rng(seed)
    x, h, c = _arr(rng, (n, i)), _arr(rng, (n, hidden)), _arr(rng, (n, hidden))
    w_ih, w_hh, b_ih, b_hh = _lstm_weights(rng, i, hidden, True)
    _, _, gates = R.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)
    gates = gates.astype(np.float32)
    dh1, dc1 = _arr(rng, (n, hidden)), _arr(rng, (n, hidden))
    args = (dh1, dc1, x, h, c, w_ih, w_hh, gates)
    got = F.lstm_cell_backward(*args)
    want = R.lstm_cell_backward(*_f64(*args))
    for g, e, name in zip(got, want, ("dx", "dh", "dc", "dw_ih", "dw_hh", "db")):
        _close(g, e, 4 * hidden + n, f"lstm_cell_backward {name}")


@given(t=st.sampled_from([0, 1, 2, 3, 5]), n=st.sampled_from([1, 2, 3]), i=DIM,
       hidden=st.sampled_from([1, 2, 3, 5, 8]), biases=st.booleans(),
       algo=st.sampled_from(["fused", "naive"]), seed=SEEDS)
def test_lstm(t, n, i, hidden, biases, algo, seed):
    _count("lstm")
    rng = np.random.default_rng(seed)
    x, h0, c0 = _arr(rng, (t, n, i)), _arr(rng, (n, hidden)), _arr(rng, (n, hidden))
    weights = _lstm_weights(rng, i, hidden, biases)
    y, hn, cn, _ = F.lstm(x, h0, c0, *weights, algo=algo)
    y_ref, hn_ref, cn_ref, _ = R.lstm(*_f64(x, h0, c0, *weights))
    for g, e, name in ((y, y_ref, "y"), (hn, hn_ref, "hn"), (cn, cn_ref, "cn")):
        _close(g, e, (i + hidden) * max(t, 1), f"lstm {name}")


@given(t=st.sampled_from([0, 1, 2, 3, 5]), n=st.sampled_from([1, 2, 3]), i=DIM,
       hidden=st.sampled_from([1, 2, 3, 5, 8]), algo=st.sampled_from(["fused", "naive"]),
       seed=SEEDS)
def test_lstm_backward(t, n, i, hidden, algo, seed):
    _count("lstm_backward")
    rng = np.random.default_rng(seed)
    x, h0, c0 = _arr(rng, (t, n, i)), _arr(rng, (n, hidden)), _arr(rng, (n, hidden))
    weights = _lstm_weights(rng, i, hidden, True)
    _, _, _, cache = F.lstm(x, h0, c0, *weights, algo=algo)
    _, _, _, cache_ref = R.lstm(*_f64(x, h0, c0, *weights))
    dy, dhn, dcn = _arr(rng, (t, n, hidden)), _arr(rng, (n, hidden)), _arr(rng, (n, hidden))
    got = F.lstm_backward(dy, dhn, dcn, cache)
    want = R.lstm_backward(*_f64(dy, dhn, dcn), cache_ref)
    for g, e, name in zip(got, want, ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db")):
        _close(g, e, (4 * hidden + n) * max(t, 1), f"lstm_backward {name}")

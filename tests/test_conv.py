import numpy as np
import pytest

import pykernels
import pykernels.functional as F
import pykernels.reference as R
from helpers import random_f32
from pykernels import _cpu
from pykernels._functional import conv as conv_module
from pykernels._functional.conv import conv2d_workspace_bytes

# (x shape, weight shape, stride, padding, dilation, groups)
CASES = {
    "batch1-one-channel": ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0, 1, 1),
    "primes-padded": ((2, 3, 11, 13), (5, 3, 3, 3), 1, 1, 1, 1),
    "pairs": ((3, 2, 7, 5), (4, 2, 3, 2), (2, 1), (1, 0), (1, 2), 1),
    "kernel-as-large-as-padded-input": ((2, 3, 5, 6), (2, 3, 7, 8), 1, 1, 1, 1),
    "stride-larger-than-kernel": ((2, 2, 11, 9), (3, 2, 2, 2), 3, 0, 1, 1),
    "dilation-2": ((2, 3, 10, 9), (4, 3, 3, 3), 1, 2, 2, 1),
    "groups-2": ((2, 4, 8, 7), (6, 2, 3, 3), 1, 1, 1, 2),
    "depthwise": ((3, 5, 7, 6), (5, 1, 3, 3), 1, 1, 1, 5),
    "depthwise-multiplier": ((2, 3, 6, 6), (6, 1, 3, 3), 2, 1, 1, 3),
    "pointwise-1x1": ((3, 7, 6, 5), (4, 7, 1, 1), 1, 0, 1, 1),
    "1x1-stride-2": ((2, 4, 6, 7), (3, 4, 1, 1), 2, 0, 1, 1),
    "chunked-batch": ((9, 3, 8, 8), (4, 3, 3, 3), 1, 1, 1, 1),
    "alexnet-conv1-like": ((3, 3, 31, 31), (8, 3, 11, 11), 4, 2, 1, 1),
    # Stride 1 with as many output as input columns (whole-run copies), a dilation so large
    # that some taps see only padding (rows) or a single column.
    "big-dilation-same": ((2, 3, 3, 5), (4, 3, 3, 3), 1, 4, 4, 1),
    # Output at least 32 wide with a column stride: the stride-phase split path.
    "wide-strided-phases": ((2, 2, 40, 67), (3, 2, 5, 4), (3, 2), (2, 1), (1, 2), 1),
    # ResNet-20's small planes: chunks of several images side by side.
    "resnet-8x8": ((5, 6, 8, 8), (7, 6, 3, 3), 1, 1, 1, 1),
    "resnet-strided": ((5, 4, 16, 16), (6, 4, 3, 3), 2, 1, 1, 1),
    # Chunk capped by cache size (7 images of 576 x 64 columns), 33 = 4 * 7 + 5 images.
    "capped-chunk": ((33, 64, 8, 8), (8, 64, 3, 3), 1, 1, 1, 1),
    # Stride 1 with more padding than the kernel spans: dx stays on col2im.
    "padding-past-the-kernel": ((2, 3, 6, 5), (4, 3, 3, 2), 1, (3, 1), 1, 1),
    # 16+ input channels per group: stride-1 dx as a forward convolution of dy.
    "dx-as-forward-groups-dilated": ((2, 32, 7, 6), (6, 16, 3, 2), 1, (1, 0), (1, 2), 2),
    "dx-as-forward-padding-at-span": ((3, 17, 5, 6), (5, 17, 3, 3), 1, (2, 1), 1, 1),
    "dx-as-forward-big-kernel": ((2, 16, 5, 6), (4, 16, 5, 6), 1, (2, 3), 1, 1),
}
IDS = list(CASES)


def _case(rng, name, dtype=np.float32):
    x_shape, w_shape, stride, padding, dilation, groups = CASES[name]
    x = random_f32(rng, x_shape).astype(dtype)
    w = random_f32(rng, w_shape).astype(dtype)
    b = random_f32(rng, (w_shape[0],)).astype(dtype)
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _close(got, want, scale=1.0):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("name", IDS)
def test_conv2d_matches_torch_and_autograd(rng, torch, name):
    x, w, b, kw = _case(rng, name)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    tw = torch.from_numpy(w.copy()).requires_grad_()
    tb = torch.from_numpy(b.copy()).requires_grad_()
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    dy = random_f32(rng, tuple(ty.shape))
    ty.backward(torch.from_numpy(dy))

    y = F.conv2d(x, w, b, **kw)
    assert y.shape == tuple(ty.shape) and y.dtype == np.float32
    scale = np.sqrt(w[0].size)
    _close(y, ty.detach().numpy(), scale)
    dx, dw, db = F.conv2d_backward(dy, x, w, **kw)
    _close(dx, tx.grad.numpy(), scale)
    _close(dw, tw.grad.numpy(), np.sqrt(dy.size / dy.shape[1]) * 4)
    _close(db, tb.grad.numpy(), np.sqrt(dy.size / dy.shape[1]))


@pytest.mark.parametrize("name", IDS)
def test_conv2d_matches_reference(rng, name):
    x, w, b, kw = _case(rng, name)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    _close(F.conv2d(x, w, b, **kw), R.conv2d(x64, w64, b64, **kw), np.sqrt(w[0].size))
    _close(F.conv2d(x, w, None, **kw), R.conv2d(x64, w64, None, **kw), np.sqrt(w[0].size))
    dy = random_f32(rng, R.conv2d(x64, w64, **kw).shape)
    got = F.conv2d_backward(dy, x, w, **kw)
    want = R.conv2d_backward(dy.astype(np.float64), x64, w64, **kw)
    for g, r in zip(got, want):
        assert g.shape == r.shape and g.dtype == np.float32
        _close(g, r, np.sqrt(dy.size))


UNFOLD_CASES = [
    ((1, 1, 4, 4), 2, 1, 0, 1),
    ((2, 3, 7, 11), (3, 2), (2, 1), (1, 2), (1, 2)),
    ((2, 2, 5, 5), 5, 1, 0, 1),
    ((1, 3, 9, 8), 2, 3, 1, 1),
    ((3, 2, 6, 7), 3, 1, 2, 2),
    ((2, 3, 3, 5), 3, 1, 4, 4),
    ((1, 2, 9, 70), (3, 3), 2, 1, 1),  # 35 output columns, strided: phase split
]


@pytest.mark.parametrize("x_shape,kernel,stride,padding,dilation", UNFOLD_CASES)
def test_im2col_col2im_match_torch_unfold_fold(rng, torch, x_shape, kernel, stride, padding,
                                               dilation):
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    x = random_f32(rng, x_shape)
    cols = F.im2col(x, kernel, **kw)
    want = torch.nn.functional.unfold(torch.from_numpy(x), kernel, **kw).numpy()
    np.testing.assert_array_equal(cols, want)  # a pure copy: exact
    c = random_f32(rng, cols.shape)
    folded = F.col2im(c, x_shape, kernel, **kw)
    want = torch.nn.functional.fold(torch.from_numpy(c), x_shape[2:], kernel, **kw).numpy()
    np.testing.assert_allclose(folded, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(cols, R.im2col(x, kernel, **kw))
    np.testing.assert_allclose(folded, R.col2im(c.astype(np.float64), x_shape, kernel, **kw),
                               rtol=1e-6, atol=1e-6)


def test_im2col_unbatched_and_noncontiguous(rng):
    x = random_f32(rng, (2, 3, 8, 9))
    view = x[:, :, ::2, 1:]  # not contiguous
    np.testing.assert_array_equal(F.im2col(view, 3, padding=1),
                                  R.im2col(np.ascontiguousarray(view), 3, padding=1))
    np.testing.assert_array_equal(F.im2col(x[1], 2), F.im2col(x[1:2], 2)[0])
    c = random_f32(rng, (3 * 4, 7 * 8))
    np.testing.assert_array_equal(F.col2im(c, (3, 8, 9), 2), F.col2im(c[None], (1, 3, 8, 9), 2)[0])


def test_reference_col2im_is_adjoint_of_im2col(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1))
    cols = R.im2col(x, (3, 2), **kw)
    c = rng.standard_normal(cols.shape)
    assert np.isclose(np.sum(cols * c), np.sum(x * R.col2im(c, x.shape, (3, 2), **kw)))


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,dilation,groups", [
    ((2, 2, 5, 4), (3, 2, 3, 2), (2, 1), (1, 0), 1, 1),
    ((1, 4, 6, 5), (2, 2, 2, 3), 1, (0, 1), (2, 1), 2),
    ((2, 3, 4, 4), (3, 3, 1, 1), 1, 0, 1, 1),
])
def test_reference_conv2d_backward_by_finite_differences(rng, x_shape, w_shape, stride, padding,
                                                         dilation, groups):
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    dy = rng.standard_normal(R.conv2d(x, w, b, **kw).shape)
    loss = lambda x_, w_, b_: np.sum(R.conv2d(x_, w_, b_, **kw) * dy)  # noqa: E731
    analytic = R.conv2d_backward(dy, x, w, **kw)
    eps = 1e-6
    for grad, i in zip(analytic, range(3)):
        args = [x, w, b]
        numeric = np.zeros_like(args[i])
        for idx in np.ndindex(numeric.shape):
            plus, minus = [a.copy() for a in args], [a.copy() for a in args]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            numeric[idx] = (loss(*plus) - loss(*minus)) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["primes-padded", "chunked-batch", "groups-2", "pointwise-1x1",
                                  "alexnet-conv1-like", "batch1-one-channel",
                                  "big-dilation-same", "wide-strided-phases", "resnet-8x8",
                                  "resnet-strided", "capped-chunk"])
@pytest.mark.parametrize("dw_dot", [1, 0], ids=["dw-rule", "dw-gemm"])
def test_one_and_two_threads_and_both_strategies_bitwise_equal(rng, threads, name, dw_dot):
    x, w, b, kw = _case(rng, name)
    x = np.concatenate([x] * 3)  # enough images for the image-parallel path
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)
    run = lambda: (F.conv2d(x, w, b, **kw), *F.conv2d_backward(dy, x, w, **kw))  # noqa: E731
    results = []
    try:
        _cpu.conv_dw_shifted_rows(dw_dot)  # the dot tiles where the rule takes them, or GEMMs
        for mode in (0, 1, 2):  # auto, threads over images, parallel GEMM
            _cpu.conv_parallel_mode(mode)
            for n in (1, 2):
                results.append(threads(n, run))
    finally:
        _cpu.conv_parallel_mode(0)
        _cpu.conv_dw_shifted_rows(1)
    for other in results[1:]:
        for a, b_ in zip(results[0], other):
            np.testing.assert_array_equal(a, b_)


def test_thread_setting_survives_a_call(rng, threads):
    x, w, b, kw = _case(rng, "chunked-batch")
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)

    def call_and_report():
        F.conv2d(x, w, b, **kw)
        F.conv2d_backward(dy, x, w, **kw)
        return pykernels.get_num_threads()

    assert threads(2, call_and_report) == 2


def test_non_contiguous_inputs(rng):
    x, w, b, kw = _case(rng, "groups-2")
    xt = np.asfortranarray(x)
    wt = w[:, :, ::-1, :]
    bt = np.repeat(b, 2)[::2]
    y = F.conv2d(xt, wt, bt, **kw)
    np.testing.assert_array_equal(y, F.conv2d(x, np.ascontiguousarray(wt), b, **kw))
    dy = random_f32(rng, y.shape)
    for got, want in zip(F.conv2d_backward(dy.T.copy().T, xt, wt, **kw),
                         F.conv2d_backward(dy, x, np.ascontiguousarray(wt), **kw)):
        np.testing.assert_array_equal(got, want)


def test_empty_batch(rng):
    x = np.empty((0, 3, 8, 8), np.float32)
    w = random_f32(rng, (4, 3, 3, 3))
    y = F.conv2d(x, w, np.ones(4, np.float32), padding=1)
    assert y.shape == (0, 4, 8, 8)
    dx, dw, db = F.conv2d_backward(np.empty((0, 4, 8, 8), np.float32), x, w, padding=1)
    assert dx.shape == (0, 3, 8, 8)
    np.testing.assert_array_equal(dw, np.zeros_like(w))
    np.testing.assert_array_equal(db, np.zeros(4, np.float32))
    assert F.im2col(x, 3).shape == (0, 27, 36)


# Convolutions whose forward packs its GEMM panels itself (implicit im2col).
# From the image (stride 1, outputs as wide as the input, 256+ rows per
# column): planes smaller than a panel (3x3: one panel spans several images),
# a 1x7 kernel, dilation, groups, a 64-wide plane, outputs shorter and taller
# than the input, dh != dw.
IMPLICIT_CASES = [
    ((20, 29, 3, 3), (4, 29, 3, 3), 1, 1, 1, 1),
    ((3, 37, 9, 17), (6, 37, 1, 7), 1, (0, 3), 1, 1),
    ((4, 58, 12, 10), (6, 29, 3, 3), 1, 2, 2, 2),
    ((2, 11, 5, 64), (5, 11, 5, 5), 1, 2, 1, 1),
    ((17, 32, 13, 13), (24, 32, 3, 3), 1, 1, 1, 1),
    ((3, 29, 9, 11), (3, 29, 3, 3), 1, (0, 1), 1, 1),
    ((3, 86, 5, 11), (3, 86, 1, 3), 1, (1, 1), 1, 1),
    ((2, 29, 10, 12), (4, 29, 3, 3), 1, (2, 1), (2, 1), 1),
    # From the stride-phase planes (outputs 32 or more wide): AlexNet conv1-like,
    # ResNet-like stride 2, a "valid" 5x5, pairs with groups, a one-row output
    # plane (32 pixels, under a panel).
    ((2, 3, 40, 135), (8, 3, 11, 11), 4, 2, 1, 1),
    ((3, 4, 16, 70), (6, 4, 3, 3), 2, 1, 1, 1),
    ((2, 3, 20, 40), (6, 3, 5, 5), 1, 0, 1, 1),
    ((3, 2, 17, 110), (4, 1, 3, 3), (2, 3), (1, 0), (1, 2), 2),
    ((9, 2, 4, 66), (3, 2, 4, 3), 2, 0, 1, 1),
]


@pytest.mark.parametrize("case", IMPLICIT_CASES, ids=lambda c: "x".join(map(str, c[0])))
def test_implicit_im2col_is_bitwise_the_explicit_one(rng, threads, each_isa, case):
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w, b = random_f32(rng, x_shape), random_f32(rng, w_shape), random_f32(rng, (w_shape[0],))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    shifted_before = _cpu.conv_shifted_rows(0)  # packed panels here; shifted rows: below
    try:
        implicit = [threads(n, F.conv2d, x, w, b, **kw) for n in (1, 2)]
        implicit_ws = conv2d_workspace_bytes(x_shape, w_shape, **kw, threads=1)
        _cpu.conv_implicit_im2col(False)
        explicit = threads(1, F.conv2d, x, w, b, **kw)
        # the shared test of the path: without the column matrix the workspace shrinks
        assert conv2d_workspace_bytes(x_shape, w_shape, **kw, threads=1) > implicit_ws
    finally:
        _cpu.conv_implicit_im2col(True)
        _cpu.conv_shifted_rows(shifted_before)
    for got in implicit:
        np.testing.assert_array_equal(got, explicit)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    _close(implicit[0], R.conv2d(x64, w64, b64, **kw), np.sqrt(w[0].size))


@pytest.mark.parametrize("case", IMPLICIT_CASES[:8], ids=lambda c: "x".join(map(str, c[0])))
def test_weight_gradient_from_the_image_is_bitwise_im2cols(rng, threads, each_isa, case):
    """Where the forward packs from the image, so does the weight gradient
    (cols^T, pixel runs of one image, planes smaller and larger than a run):
    bitwise the im2col path's on 1 and 2 threads, near the float64 reference."""
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w = random_f32(rng, x_shape), random_f32(rng, w_shape)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    dy = random_f32(rng, F.conv2d(x, w, **kw).shape)
    dot_before = _cpu.conv_dw_shifted_rows(0)  # the GEMM paths here; the dot tiles: below
    try:
        from_image = [threads(n, F.conv2d_backward, dy, x, w, **kw) for n in (1, 2)]
        assert _cpu.conv_dw_from_image(False)
        im2col = threads(2, F.conv2d_backward, dy, x, w, **kw)
    finally:
        _cpu.conv_dw_from_image(True)
        _cpu.conv_dw_shifted_rows(dot_before)
    for got in from_image:
        for a, b in zip(got, im2col):
            np.testing.assert_array_equal(a, b)
    ref = R.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), w.astype(np.float64),
                            **kw)
    _close(from_image[0][1], ref[1], np.sqrt(dy[:, 0].size))


# Stride-1 same-width convolutions whose forward reads its GEMM's B rows in
# place from a padded image (shifted rows): ResNet-like 16 -> 16 (batch 1,
# whose tiles are split over the threads; 8x8 planes two side by side with
# AVX-512 and AVX2, batch 13 leaving the last pair one short, 7 work items),
# a 1x7 kernel, dilation with groups, outputs shorter and taller than the
# input (ph != (kh - 1) / 2), dh != dw, one input channel, a one-pixel-wide
# plane, output channels that are no multiple of any register tile, 32 -> 32
# with 288 column rows (16x16 planes: all 7 side by side with AVX-512, one
# per plane otherwise); then outputs narrower than the input: "valid"
# 5x5, padding on one axis only, dilation without padding, and padding wider
# than the kernel's reach (outputs wider than W + pw).
SHIFTED_CASES = [
    ((1, 16, 40, 40), (16, 16, 3, 3), 1, 1, 1, 1),
    ((13, 16, 8, 8), (16, 16, 3, 3), 1, 1, 1, 1),
    ((3, 7, 9, 17), (13, 7, 1, 7), 1, (0, 3), 1, 1),
    ((4, 12, 12, 10), (6, 6, 3, 3), 1, 2, 2, 2),
    ((3, 5, 9, 11), (3, 5, 3, 3), 1, (0, 1), 1, 1),
    ((2, 6, 10, 12), (4, 6, 3, 3), 1, (2, 1), (2, 1), 1),
    ((2, 3, 7, 1), (5, 3, 3, 1), 1, (1, 0), 1, 1),
    ((3, 1, 14, 14), (11, 1, 5, 5), 1, 2, 1, 1),
    ((7, 32, 16, 16), (32, 32, 3, 3), 1, 1, 1, 1),
    ((2, 3, 12, 11), (5, 3, 5, 5), 1, 0, 1, 1),
    ((3, 4, 9, 7), (6, 4, 3, 3), 1, (1, 0), 1, 1),
    ((2, 5, 13, 12), (4, 5, 3, 3), 1, 0, (2, 3), 1),
    ((2, 3, 5, 6), (4, 3, 3, 3), 1, 3, 1, 1),
]


@pytest.mark.parametrize("case", SHIFTED_CASES, ids=lambda c: "x".join(map(str, c[0])))
def test_shifted_rows_are_bitwise_the_packed_panels(rng, threads, each_isa, case):
    """The forward on shifted rows (forced on: its workspace is not the packed
    path's) against packed panels: bitwise on 1 and 2 threads, near the
    float64 reference; with and without a bias."""
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w, b = random_f32(rng, x_shape), random_f32(rng, w_shape), random_f32(rng, (w_shape[0],))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    try:
        assert _cpu.conv_shifted_rows(2) == 1
        shifted = [threads(n, F.conv2d, x, w, bias, **kw) for n in (1, 2) for bias in (b, None)]
        shifted_ws = conv2d_workspace_bytes(x_shape, w_shape, **kw, threads=2)
        _cpu.conv_shifted_rows(0)
        panels = [threads(2, F.conv2d, x, w, bias, **kw) for bias in (b, None)]
        assert conv2d_workspace_bytes(x_shape, w_shape, **kw, threads=2) != shifted_ws
    finally:
        _cpu.conv_shifted_rows(1)
    for i, got in enumerate(shifted):
        np.testing.assert_array_equal(got, panels[i % 2])
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    _close(shifted[0], R.conv2d(x64, w64, b64, **kw), np.sqrt(w[0].size))


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,shifted", [
    ((64, 16, 32, 32), (16, 16, 3, 3), 1, 1, True),     # ResNet-20's three stages
    ((64, 32, 16, 16), (32, 32, 3, 3), 1, 1, True),
    ((64, 64, 8, 8), (64, 64, 3, 3), 1, 1, True),
    ((32, 128, 8, 8), (128, 128, 3, 3), 1, 1, False),   # more outputs than 64 share the panels
    ((8, 64, 27, 27), (192, 64, 5, 5), 1, 2, False),    # AlexNet conv2
    ((64, 6, 14, 14), (16, 6, 5, 5), 1, 2, True),       # LeNet on the digits
    ((64, 1, 32, 32), (6, 1, 5, 5), 1, 0, True),        # LeNet at 32x32: "valid"
    ((8, 64, 27, 27), (192, 64, 5, 5), 1, 0, False),
    ((64, 16, 32, 32), (32, 16, 3, 3), 2, 1, None),     # strided: never
])
def test_which_forwards_take_the_shifted_rows(x_shape, w_shape, stride, padding, shifted):
    _assert_mode_hook_takes(_cpu.conv_shifted_rows, shifted, lambda: conv2d_workspace_bytes(
        x_shape, w_shape, stride=stride, padding=padding, threads=1))


def _assert_mode_hook_takes(hook, taken, workspace):
    """A path's rule seen through its own workspace: with `hook` at 1 (the
    rule) the workspace differs from mode 0 iff `taken`; at 2 (wherever the
    stride is 1) iff taken is not None (None: a strided conv). Bad mode ->
    ValueError."""
    with_rule = workspace()
    try:
        hook(0)
        off = workspace()
        assert (off != with_rule) == bool(taken)
        hook(2)
        assert (workspace() != off) == (taken is not None)
        with pytest.raises(ValueError, match="mode"):
            hook(3)
    finally:
        hook(1)


def test_shifted_rows_refuse_planes_far_larger_than_the_columns():
    """Padding and dilation far beyond a 1x1 image: the padded planes would be
    ~2^51 floats a channel (their size overflowing int64 over the channels),
    so even forced on, the forward keeps its panels; every tap lands in the
    padding and the output is the bias."""
    x = np.ones((1, 16384, 1, 1), np.float32)
    w = np.ones((1, 16384, 2, 2), np.float32)
    kw = dict(padding=33554431, dilation=67108862)
    try:
        _cpu.conv_shifted_rows(2)
        forced = conv2d_workspace_bytes(x.shape, w.shape, **kw, threads=1)
        y = F.conv2d(x, w, np.array([0.5], np.float32), **kw)
        _cpu.conv_shifted_rows(0)
        assert conv2d_workspace_bytes(x.shape, w.shape, **kw, threads=1) == forced
    finally:
        _cpu.conv_shifted_rows(1)
    np.testing.assert_array_equal(y, np.full((1, 1, 1, 1), 0.5, np.float32))


# The weight gradient as dot tiles on the shifted-rows grid: the forward's
# shapes (odd channel counts leave partial tiles of rows and taps; groups,
# dilation, "valid" convs, padding wider than the kernel's reach), then
# blocks of several stacked 8x8 images with a short last block, and planes
# larger than a block.
DOT_CASES = SHIFTED_CASES + [
    ((37, 8, 8, 8), (12, 8, 3, 3), 1, 1, 1, 1),
    ((2, 3, 70, 70), (5, 3, 3, 3), 1, 1, 1, 1),
]


@pytest.mark.parametrize("case", DOT_CASES, ids=lambda c: "x".join(map(str, c[0])))
def test_weight_gradient_dot_tiles_match_the_reference(rng, threads, each_isa, case):
    """dW as dot tiles (forced on) on 1 and 2 threads, with threads over
    blocks and over one block's tiles: bitwise alike, near the float64
    reference; dx and db bitwise the GEMM paths'."""
    x_shape, w_shape, stride, padding, dilation, groups = case
    x, w = random_f32(rng, x_shape), random_f32(rng, w_shape)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    dy = random_f32(rng, F.conv2d(x, w, **kw).shape)
    try:
        assert _cpu.conv_dw_shifted_rows(2) == 1
        dot = [threads(1, F.conv2d_backward, dy, x, w, **kw)]
        for mode in (1, 2):  # threads over blocks, then over one block's tiles
            _cpu.conv_parallel_mode(mode)
            dot.append(threads(2, F.conv2d_backward, dy, x, w, **kw))
        _cpu.conv_parallel_mode(0)
        _cpu.conv_dw_shifted_rows(0)
        gemm = threads(2, F.conv2d_backward, dy, x, w, **kw)
    finally:
        _cpu.conv_parallel_mode(0)
        _cpu.conv_dw_shifted_rows(1)
    for got in dot[1:]:
        np.testing.assert_array_equal(got[1], dot[0][1])
    for got in dot:
        np.testing.assert_array_equal(got[0], gemm[0])
        np.testing.assert_array_equal(got[2], gemm[2])
    ref = R.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), w.astype(np.float64),
                            **kw)
    scale = np.sqrt(dy[:, 0].size)
    _close(dot[0][1], ref[1], scale)
    _close(gemm[1], ref[1], scale)


@pytest.mark.parametrize("padding", [1, 0, (1, 0)])
def test_weight_gradient_dot_tiles_keep_nan_pixels_in_their_own_taps(each_isa, padding):
    """A NaN pixel makes NaN exactly the taps that read it, as PyTorch's (and
    the GEMM path's) weight gradient does: the grid's dropped columns and
    rows, which read neighbouring pixels for a zero dy, are masked out."""
    rng = np.random.default_rng(5)
    x = random_f32(rng, (3, 2, 7, 9))
    w = random_f32(rng, (4, 2, 3, 3))
    x[0, 1, 2, 8] = np.nan   # last column: dropped columns read it as tap (., 0)
    x[1, 0, 6, 0] = np.nan   # first column of the last row
    x[2, 1, 0, 4] = np.inf
    dy = random_f32(rng, F.conv2d(x, w, padding=padding).shape)
    try:
        _cpu.conv_dw_shifted_rows(2)
        dot = F.conv2d_backward(dy, x, w, padding=padding)[1]
        _cpu.conv_dw_shifted_rows(0)
        gemm = F.conv2d_backward(dy, x, w, padding=padding)[1]
    finally:
        _cpu.conv_dw_shifted_rows(1)
    finite = np.isfinite(gemm)
    assert 0 < finite.sum() < finite.size  # some taps NaN, not all
    np.testing.assert_array_equal(np.isfinite(dot), finite)
    _close(dot[finite], gemm[finite], np.sqrt(dy[:, 0].size))


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,dot", [
    ((64, 16, 32, 32), (16, 16, 3, 3), 1, 1, True),     # ResNet-20's three stages
    ((64, 32, 16, 16), (32, 32, 3, 3), 1, 1, True),
    ((64, 64, 8, 8), (64, 64, 3, 3), 1, 1, True),
    ((16, 128, 8, 8), (128, 128, 3, 3), 1, 1, True),   # 4 images a block
    ((64, 1, 32, 32), (6, 1, 5, 5), 1, 0, True),        # LeNet
    ((64, 6, 14, 14), (16, 6, 5, 5), 1, 0, True),
    ((2, 64, 8, 8), (64, 64, 3, 3), 1, 1, False),       # one 8x8 image a block
    ((8, 64, 27, 27), (192, 64, 5, 5), 1, 2, False),    # AlexNet conv2: many outputs
    ((16, 128, 8, 8), (256, 128, 3, 3), 1, 1, False),
    ((64, 32, 8, 8), (32, 32, 5, 5), 1, 0, False),      # 8x8 grid for 4x4 outputs
    ((64, 32, 16, 16), (32, 1, 3, 3), 1, 1, False),     # groups: not measured
    ((64, 16, 32, 32), (32, 16, 3, 3), 2, 1, None),     # strided: never
])
def test_which_weight_gradients_take_the_dot_tiles(x_shape, w_shape, stride, padding, dot):
    groups = x_shape[1] // w_shape[1]
    _assert_mode_hook_takes(_cpu.conv_dw_shifted_rows, dot, lambda: conv2d_workspace_bytes(
        x_shape, w_shape, stride=stride, padding=padding, groups=groups, backward=True,
        threads=2))


def _stride_one(name):
    _, w_shape, stride, *_ = CASES[name]
    return stride in (1, (1, 1)) and w_shape[2:] != (1, 1)


@pytest.mark.parametrize("name", [n for n in IDS if _stride_one(n)])
def test_backward_data_as_forward_matches_the_col2im_path(rng, threads, name):
    """Stride-1 dx as the forward convolution of dy with the flipped kernel
    (the default) against W^T @ dy and col2im: both near the float64
    reference, the new one bitwise the same on 1 and 2 threads, dW and db
    untouched."""
    x, w, b, kw = _case(rng, name)
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)
    as_forward = [threads(n, F.conv2d_backward, dy, x, w, **kw) for n in (1, 2)]
    args = (x.shape, w.shape, kw["stride"], kw["padding"], kw["dilation"], kw["groups"])
    workspace = conv2d_workspace_bytes(*args, backward=True, threads=2)
    try:
        _cpu.conv_dx_as_forward(False)
        col2im = threads(2, F.conv2d_backward, dy, x, w, **kw)
        col2im_workspace = conv2d_workspace_bytes(*args, backward=True, threads=2)
    finally:
        _cpu.conv_dx_as_forward(True)
    _, padding, dilation = conv_module._params(kw["stride"], kw["padding"], kw["dilation"])
    spans = [d * (k - 1) for d, k in zip(dilation, w.shape[2:])]
    # the shared test of the path: its workspace differs from col2im's
    taken = (all(p <= s for p, s in zip(padding, spans)) and w.shape[0] // kw["groups"] <= 64
             and w.shape[1] >= 16)
    assert (workspace != col2im_workspace) == taken
    np.testing.assert_array_equal(as_forward[0][0], as_forward[1][0])
    for got, want in zip(as_forward[0][1:], col2im[1:]):
        np.testing.assert_array_equal(got, want)
    ref = R.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), w.astype(np.float64),
                            **kw)
    scale = np.sqrt(w.shape[0] * w.shape[2] * w.shape[3])
    _close(as_forward[0][0], ref[0], scale)
    _close(col2im[0], ref[0], scale)


@pytest.mark.parametrize("groups", [1, 2])
def test_backward_data_as_forward_for_16_to_any_in_and_up_to_64_out_per_group(groups):
    def changes_workspace(in_per_group, out_per_group):
        args = ((2, in_per_group * groups, 6, 6), (out_per_group * groups, in_per_group, 3, 3),
                1, 1, 1, groups)
        with_it = conv2d_workspace_bytes(*args, backward=True, threads=1)
        try:
            _cpu.conv_dx_as_forward(False)
            return conv2d_workspace_bytes(*args, backward=True, threads=1) != with_it
        finally:
            _cpu.conv_dx_as_forward(True)

    assert changes_workspace(16, 64) and changes_workspace(300, 1)
    assert not changes_workspace(16, 65) and not changes_workspace(15, 64)


def _packed_weights(got, rest, rows, depth):
    """The part of a workspace beyond `rest`: the weights packed once per call,
    rows rounded up to the micro-kernel's register tile (at most 15 more)."""
    extra = got - rest
    assert rows * depth * 4 <= extra <= (rows + 15) * depth * 4, (got, rest)


def test_workspace_is_bounded_per_image():
    conv1 = dict(stride=4, padding=2)
    one_image = 3 * 11 * 11 * 55 * 55 * 4
    phases = 4 * 4 * 57 * 57 * 4  # one padded channel split into 4x4 stride phases
    sizes = {batch: conv2d_workspace_bytes((batch, 3, 224, 224), (64, 3, 11, 11), **conv1,
                                           threads=2) for batch in (16, 128, 1024)}
    assert sizes[16] == sizes[128] == sizes[1024]  # independent of the batch
    # the forward packs from the 3 channels' phase planes, one image per thread
    _packed_weights(sizes[16], 2 * 3 * phases, 64, 363)
    # one image: sequential, with the parallel GEMM
    _packed_weights(conv2d_workspace_bytes((1, 3, 224, 224), (64, 3, 11, 11), **conv1,
                                           threads=2), 3 * phases, 64, 363)
    try:
        _cpu.conv_implicit_im2col(False)  # the explicit column matrix instead
        _packed_weights(conv2d_workspace_bytes((16, 3, 224, 224), (64, 3, 11, 11), **conv1,
                                               threads=2), 2 * one_image + 2 * phases, 64, 363)
        assert conv2d_workspace_bytes((1, 3, 224, 224), (64, 3, 11, 11), **conv1,
                                      threads=2) == one_image + 2 * phases  # nothing packed
    finally:
        _cpu.conv_implicit_im2col(True)
    assert conv2d_workspace_bytes((1, 64, 13, 13), (32, 64, 1, 1), threads=2) == 0
    pointwise = conv2d_workspace_bytes((128, 64, 13, 13), (32, 64, 1, 1), threads=2)
    _packed_weights(pointwise, 0, 32, 64)  # no columns: only the packed weights
    bwd = conv2d_workspace_bytes((128, 192, 13, 13), (384, 192, 3, 3), padding=1,
                                 backward=True, threads=2)
    chunk = 7  # ceil(1024 / 169) images side by side
    # The weight gradient: columns, dy side by side and one gradient term per
    # thread (stride 1 reads rows in place: no phase scratch). dx is the forward
    # of dy (384 channels) with the flipped kernel: its workspace, and the
    # flipped weights.
    # With 384 output channels dx is W^T @ dy and col2im: W^T (1728 x 384) packed.
    _packed_weights(bwd, 2 * 4 * (1728 * chunk * 169 + 384 * chunk * 169 + 384 * 1728), 1728, 384)
    # With 64, dx is the forward of dy with the flipped kernel: that forward's
    # workspace and the flipped weights take the place of the packed W^T; and
    # as the weight gradient then packs its panels from the image, there are no
    # columns (7 images of 576 x 64 per thread) either.
    resnet = ((64, 64, 8, 8), (64, 64, 3, 3))
    dx_forward = conv2d_workspace_bytes(*resnet, padding=1, threads=2)  # its own transpose
    try:
        _cpu.conv_dw_shifted_rows(0)  # the weight gradient as a GEMM
        bwd = conv2d_workspace_bytes(*resnet, padding=1, backward=True, threads=2)
        _cpu.conv_dx_as_forward(False)
        col2im_bwd = conv2d_workspace_bytes(*resnet, padding=1, backward=True, threads=2)
    finally:
        _cpu.conv_dx_as_forward(True)
        _cpu.conv_dw_shifted_rows(1)
    columns = 2 * 4 * 576 * 7 * 64
    _packed_weights(col2im_bwd, bwd - dx_forward - 4 * 64 * 576 + columns, 576, 64)
    # The weight gradient as dot tiles (the default here): 64 images in 4
    # blocks of 16 stacked 9 x 9 grids (1296 positions), one block per thread:
    # its 64 padded channels of 1328 floats (the 1296 positions plus the
    # 2 * 9 + 2 the last tap reaches, to whole vectors), 64 + 2 dy rows (a
    # partial tile's 2 extra), one gradient term; and the live mask (a float
    # per position).
    dot = 2 * (64 * 1328 + 66 * 1296 + 64 * 576) + 1296
    bwd_dot = conv2d_workspace_bytes(*resnet, padding=1, backward=True, threads=2)
    assert bwd_dot == 4 * (dot + 64 * 576) + dx_forward  # with dx's flipped weights
    # a stride-1 "same" forward packs its columns straight from the image: no column matrix
    fwd = conv2d_workspace_bytes((128, 192, 13, 13), (384, 192, 3, 3), padding=1, threads=2)
    _packed_weights(fwd, 2 * 4 * 384 * chunk * 169, 384, 1728)
    try:
        _cpu.conv_implicit_im2col(False)
        explicit = conv2d_workspace_bytes((128, 192, 13, 13), (384, 192, 3, 3), padding=1,
                                          threads=2)
    finally:
        _cpu.conv_implicit_im2col(True)
    _packed_weights(explicit, 2 * 4 * (1728 * chunk * 169 + 384 * chunk * 169), 384, 1728)
    # strided and narrower than 32 output columns
    small = conv2d_workspace_bytes((64, 16, 32, 32), (32, 16, 3, 3), stride=2, padding=1,
                                   threads=1)
    # 4 images of 16x16 outputs per chunk (too narrow to pack from phase planes)
    _packed_weights(small, 4 * (144 * 4 * 256 + 32 * 4 * 256), 32, 144)
    # 8x8 planes want 16 images per chunk, but only 7 images' columns fit in 2**18 floats
    try:
        _cpu.conv_shifted_rows(0)
        eight = conv2d_workspace_bytes((64, 64, 8, 8), (64, 64, 3, 3), padding=1, threads=1)
    finally:
        _cpu.conv_shifted_rows(1)
    _packed_weights(eight, 4 * 64 * 7 * 64, 64, 576)  # implicit im2col: no columns
    # On shifted rows: the padded images side by side and one group's grid outputs
    tile_rows, tile_cols = {"avx512": (8, 48), "avx2": (6, 16)}.get(pykernels.get_isa(), (4, 8))
    # 72-column grids: two side by side fill three 48-wide tiles, nine 16-wide
    # ones (against five for one); 8-wide tiles fit one exactly
    side = {48: 2, 16: 2, 8: 1}[tile_cols]
    row, grid = side * 9, 8 * side * 9  # an 8-wide image row and its pad column, side times
    plane = 1 + 10 * row  # a lead pad float, then 10 padded rows
    ldc = -(-grid // tile_cols) * tile_cols
    images = 63 * plane + max(plane, 2 * row + 2 + ldc)  # the tail the last tiles read
    shifted = conv2d_workspace_bytes((64, 64, 8, 8), (64, 64, 3, 3), padding=1, threads=1)
    _packed_weights(shifted, 4 * (images + -(-64 // tile_rows) * tile_rows * ldc), 64, 576)


def _ones(*shape):
    return np.ones(shape, np.float32)


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda: F.conv2d(_ones(3, 8, 8), _ones(4, 3, 3, 3)), ValueError,
     r"x must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\)"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3)), ValueError, r"weight must be 4-D"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 2, 3, 3)), ValueError,
     r"x \(1, 3, 8, 8\) has 3 channels but weight \(4, 2, 3, 3\) expects 2"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 1, 3, 3), groups=2), ValueError,
     r"x \(1, 3, 8, 8\) has 3 channels, not divisible by groups=2"),
    (lambda: F.conv2d(_ones(1, 4, 8, 8), _ones(3, 2, 3, 3), groups=2), ValueError,
     r"weight \(3, 2, 3, 3\) has 3 output channels, not divisible by groups=2"),
    (lambda: F.conv2d(_ones(1, 4, 8, 8), _ones(4, 4, 3, 3), groups=0), ValueError,
     r"groups must be >= 1"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), stride=0), ValueError,
     r"stride must be >= 1, got \(0, 0\)"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), stride=(1, -1)), ValueError,
     r"stride must be >= 1"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), dilation=0), ValueError,
     r"dilation must be >= 1"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), padding=-1), ValueError,
     r"padding must be >= 0, got \(-1, -1\)"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), padding=(1, 2, 3)), ValueError,
     r"padding must be an int or a pair"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), stride=1.5), TypeError,
     r"stride must be an int or a pair"),
    (lambda: F.conv2d(_ones(1, 3, 4, 4), _ones(4, 3, 5, 5)), ValueError,
     r"output size \(0, 0\) is below 1: x \(1, 3, 4, 4\)"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), dilation=4), ValueError,
     r"output size \(0, 0\) is below 1"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), _ones(3)), ValueError,
     r"bias must have shape \(4,\) for weight \(4, 3, 3, 3\), got \(3,\)"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8).astype(np.float64), _ones(4, 3, 3, 3)), TypeError,
     r"x has dtype float64"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3).astype(np.int32)), TypeError,
     r"weight has dtype int32"),
    (lambda: F.conv2d(_ones(1, 3, 8, 8), _ones(4, 3, 3, 3), _ones(4).astype(np.float16)),
     TypeError, r"bias has dtype float16"),
    (lambda: F.conv2d([[1.0]], _ones(4, 3, 3, 3)), TypeError, r"x must be a numpy.ndarray"),
    (lambda: F.conv2d_backward(_ones(1, 4, 7, 6), _ones(1, 3, 8, 8), _ones(4, 3, 3, 3)),
     ValueError, r"dy has shape \(1, 4, 7, 6\), expected \(1, 4, 6, 6\)"),
    (lambda: F.conv2d_backward(_ones(1, 4, 6, 6).astype(np.float64), _ones(1, 3, 8, 8),
                               _ones(4, 3, 3, 3)), TypeError, r"dy has dtype float64"),
    (lambda: F.conv2d_backward(_ones(1, 4, 6, 6), _ones(1, 3, 8, 8), _ones(4, 3, 3, 3),
                               padding=-2), ValueError, r"padding must be >= 0"),
    (lambda: F.im2col(_ones(8, 8), 3), ValueError, r"x must be 3-D .* or 4-D"),
    (lambda: F.im2col(_ones(1, 1, 8, 8), 0), ValueError, r"kernel_size must be >= 1"),
    (lambda: F.im2col(_ones(1, 1, 2, 2), 3), ValueError, r"output size .* is below 1"),
    (lambda: F.col2im(_ones(1, 9, 35), (1, 1, 8, 8), 3), ValueError,
     r"cols has shape \(1, 9, 35\), expected \(1, 9, 36\)"),
    (lambda: F.col2im(_ones(1, 9, 36), (8, 8), 3), ValueError, r"input_shape must be"),
])
def test_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_binding_rechecks_shapes():
    """A direct _cpu call with inconsistent buffers is refused, never a crash."""
    x, w, y = _ones(1, 3, 8, 8), _ones(4, 3, 3, 3), np.empty((1, 4, 7, 6), np.float32)
    with pytest.raises(ValueError, match=r"y has shape \(1, 4, 7, 6\), expected \(1, 4, 6, 6\)"):
        _cpu.conv2d_forward(x, w, None, y, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match="groups=2 must divide"):
        _cpu.conv2d_forward(x, w, None, y, (1, 1), (0, 0), (1, 1), 2)
    with pytest.raises(ValueError, match=r"dweight has shape"):
        _cpu.conv2d_backward(_ones(1, 4, 6, 6), x, w, None, _ones(4, 3, 3), None, (1, 1),
                             (0, 0), (1, 1), 1)


# ---- GPU (CuPy; the CPU emulator without a GPU) ------------------------------


@pytest.fixture
def nan_empty(cp, monkeypatch):
    """cupy.empty hands out NaN-filled arrays for the test: an output element or
    workspace float read before it is written shows up as a NaN."""
    full = cp.full
    monkeypatch.setattr(cp, "empty",
                        lambda shape, dtype=np.float32: full(shape, np.nan, dtype=dtype))
    return cp


def _gpu_run(cp, x, w, b, dy, kw):
    xg, wg, dyg = cp.asarray(x), cp.asarray(w), cp.asarray(dy)
    bg = None if b is None else cp.asarray(b)
    return (cp.asnumpy(F.conv2d(xg, wg, bg, **kw)),
            *(cp.asnumpy(g) for g in F.conv2d_backward(dyg, xg, wg, **kw)))


@pytest.mark.gpu
@pytest.mark.parametrize("name", IDS)
def test_conv2d_gpu_matches_cpu_and_reference(rng, nan_empty, name):
    cp = nan_empty
    x, w, b, kw = _case(rng, name)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    dy = random_f32(rng, R.conv2d(x64, w64, **kw).shape)
    got = _gpu_run(cp, x, w, b, dy, kw)
    cpu_results = (F.conv2d(x, w, b, **kw), *F.conv2d_backward(dy, x, w, **kw))
    want = (R.conv2d(x64, w64, b64, **kw), *R.conv2d_backward(dy.astype(np.float64), x64, w64,
                                                              **kw))
    scales = (np.sqrt(w[0].size),) + (np.sqrt(dy.size),) * 3
    for g, c, r, scale in zip(got, cpu_results, want, scales):
        assert g.shape == r.shape and g.dtype == np.float32
        _close(g, c, scale)
        _close(g, r, scale)
    no_bias = cp.asnumpy(F.conv2d(cp.asarray(x), cp.asarray(w), None, **kw))
    _close(no_bias, R.conv2d(x64, w64, None, **kw), np.sqrt(w[0].size))


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["chunked-batch", "groups-2", "pointwise-1x1", "pairs",
                                  "resnet-strided", "batch1-one-channel"])
def test_conv2d_gpu_in_chunks_matches_one_chunk_and_repeats_bitwise(rng, nan_empty,
                                                                    monkeypatch, name):
    """A small workspace cap splits the batch into chunks of 2 images (the last
    one partial); every configuration repeats bitwise."""
    cp = nan_empty
    x, w, b, kw = _case(rng, name)
    x = np.concatenate([x] * 3 + [x[:1]])  # an odd batch: the last chunk has one image
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)
    whole = _gpu_run(cp, x, w, b, dy, kw)
    np.testing.assert_equal(whole, _gpu_run(cp, x, w, b, dy, kw))
    plane = dy.shape[2] * dy.shape[3]
    cap = 2 * (x.shape[1] * w.shape[2] * w.shape[3] + w.shape[0]) * plane  # two images
    monkeypatch.setattr(conv_module, "_gpu_workspace_cap", cap)
    chunk, _ = pykernels._backend.cuda_module().conv2d_workspace(
        list(x.shape), list(w.shape), *conv_module._params(kw["stride"], kw["padding"],
                                                           kw["dilation"]), kw["groups"], cap)
    assert chunk == (1 if name == "pointwise-1x1" else 2)
    chunked = _gpu_run(cp, x, w, b, dy, kw)
    np.testing.assert_equal(chunked, _gpu_run(cp, x, w, b, dy, kw))
    for a, c, scale in zip(whole, chunked, (np.sqrt(w[0].size),) + (np.sqrt(dy.size),) * 3):
        _close(a, c, scale)


@pytest.mark.gpu
@pytest.mark.parametrize("x_shape,kernel,stride,padding,dilation", UNFOLD_CASES)
def test_im2col_col2im_gpu_equal_cpu_bitwise(rng, nan_empty, x_shape, kernel, stride, padding,
                                             dilation):
    """im2col is a copy; col2im sums each pixel's entries in the CPU's (ki, kj)
    order: both bitwise the CPU ones."""
    cp = nan_empty
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    x = random_f32(rng, x_shape)
    cols = cp.asnumpy(F.im2col(cp.asarray(x), kernel, **kw))
    np.testing.assert_array_equal(cols, F.im2col(x, kernel, **kw))
    c = random_f32(rng, cols.shape)
    folded = cp.asnumpy(F.col2im(cp.asarray(c), x_shape, kernel, **kw))
    np.testing.assert_array_equal(folded, F.col2im(c, x_shape, kernel, **kw))
    np.testing.assert_allclose(folded, R.col2im(c.astype(np.float64), x_shape, kernel, **kw),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.gpu
def test_im2col_col2im_gpu_unbatched_and_noncontiguous(rng, cp):
    x = random_f32(rng, (2, 3, 8, 9))
    xg = cp.asarray(x)
    np.testing.assert_array_equal(cp.asnumpy(F.im2col(xg[:, :, ::2, 1:], 3, padding=1)),
                                  F.im2col(x[:, :, ::2, 1:], 3, padding=1))
    np.testing.assert_array_equal(cp.asnumpy(F.im2col(xg[1], 2)), F.im2col(x[1], 2))
    c = random_f32(rng, (3 * 4, 7 * 8))
    np.testing.assert_array_equal(cp.asnumpy(F.col2im(cp.asarray(c), (3, 8, 9), 2)),
                                  F.col2im(c, (3, 8, 9), 2))


@pytest.mark.gpu
def test_conv2d_gpu_non_contiguous_inputs(rng, cp):
    x, w, b, kw = _case(rng, "groups-2")
    xg, wg, bg = cp.asarray(x), cp.asarray(w), cp.asarray(np.repeat(b, 2))
    y = cp.asnumpy(F.conv2d(xg[:, :, :, ::-1], wg[:, :, ::-1, :], bg[::2], **kw))
    np.testing.assert_array_equal(
        y, cp.asnumpy(F.conv2d(cp.asarray(x[:, :, :, ::-1].copy()),
                               cp.asarray(w[:, :, ::-1, :].copy()), cp.asarray(b), **kw)))


@pytest.mark.gpu
@pytest.mark.parametrize("images, channels", [(5, 257), (7, 1), (3, 1100), (130, 8)])
def test_conv2d_gpu_bias_gradient_in_parts(rng, nan_empty, images, channels):
    """The bias gradient sums each channel in parts of whole images (about
    1024 blocks: 257 channels x 3 parts of 2, 2 and 1 images; one part when
    the channels alone give that many), then the parts in order: against the
    float64 sum, and bitwise on a repeat."""
    cp = nan_empty
    x = random_f32(rng, (images, 2, 5, 4))
    w = random_f32(rng, (channels, 2, 1, 3))
    dy = random_f32(rng, (images, channels, 5, 2)) + 3.0  # a mean, so terms don't cancel
    db = cp.asnumpy(F.conv2d_backward(cp.asarray(dy), cp.asarray(x), cp.asarray(w))[2])
    want = dy.astype(np.float64).sum(axis=(0, 2, 3))
    np.testing.assert_allclose(db, want, rtol=1e-5, atol=1e-5 * np.sqrt(images * 10))
    again = F.conv2d_backward(cp.asarray(dy), cp.asarray(x), cp.asarray(w))[2]
    np.testing.assert_array_equal(db, cp.asnumpy(again))


@pytest.mark.gpu
@pytest.mark.parametrize("gib, floats", [(141, 2**28), (16, 2**28), (8, 2**27), (4, 2**26),
                                         (1, 2**25), (None, 2**28)])
def test_default_gpu_workspace_cap_follows_device_memory(cp, monkeypatch, gib, floats):
    props = {"name": b"a GPU"} if gib is None else {"totalGlobalMem": gib << 30}
    monkeypatch.setattr(cp.cuda.runtime, "getDeviceProperties", lambda device: props)
    conv_module._default_gpu_cap.cache_clear()
    try:
        cuda = pykernels._backend.cuda_module()
        assert conv_module._default_gpu_cap(cuda, 0) == floats
    finally:
        conv_module._default_gpu_cap.cache_clear()


@pytest.mark.gpu
def test_conv2d_gpu_workspace_shrinks_when_memory_is_short(rng, cp, monkeypatch):
    """A workspace the GPU cannot hold is retried at a quarter of its size, down
    to one image's columns: the same results as one chunk, up to the weight
    gradient's summation order; one image's workspace too large still raises."""
    x, w, b, kw = _case(rng, "chunked-batch")
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)
    whole = _gpu_run(cp, x, w, b, dy, kw)
    per_image = (x.shape[1] * w.shape[2] * w.shape[3] + w.shape[0]) * dy.shape[2] * dy.shape[3]
    real_empty, asked = cp.empty, []

    def empty_with_room_for(floats):
        def empty(shape, dtype=np.float32):
            if np.ndim(shape) == 0 and dtype == np.float32:  # the workspace, 1-D
                asked.append(int(shape))
                if shape > floats:
                    raise cp.cuda.memory.OutOfMemoryError(4 * int(shape), 0)
            return real_empty(shape, dtype=dtype)
        return empty

    monkeypatch.setattr(cp, "empty", empty_with_room_for(2 * per_image))
    short = _gpu_run(cp, x, w, b, dy, kw)
    assert asked[0] > 2 * per_image and asked[-1] <= 2 * per_image
    cpu_results = (F.conv2d(x, w, b, **kw), *F.conv2d_backward(dy, x, w, **kw))
    scales = (np.sqrt(w[0].size),) + (np.sqrt(dy.size),) * 3
    for a, c, cpu_value, scale in zip(whole, short, cpu_results, scales):
        _close(a, c, scale)
        _close(c, cpu_value, scale)
    monkeypatch.setattr(cp, "empty", empty_with_room_for(per_image // 2))
    with pytest.raises(cp.cuda.memory.OutOfMemoryError):
        F.conv2d(cp.asarray(x), cp.asarray(w), cp.asarray(b), **kw)


@pytest.mark.gpu
def test_conv2d_gpu_empty_batch(rng, nan_empty):
    cp = nan_empty
    x = cp.asarray(np.empty((0, 3, 8, 8), np.float32))
    w = random_f32(rng, (4, 3, 3, 3))
    y = F.conv2d(x, cp.asarray(w), cp.asarray(np.ones(4, np.float32)), padding=1)
    assert y.shape == (0, 4, 8, 8)
    dx, dw, db = F.conv2d_backward(cp.asarray(np.empty((0, 4, 8, 8), np.float32)), x,
                                   cp.asarray(w), padding=1)
    assert dx.shape == (0, 3, 8, 8)
    np.testing.assert_array_equal(cp.asnumpy(dw), np.zeros_like(w))
    np.testing.assert_array_equal(cp.asnumpy(db), np.zeros(4, np.float32))
    assert F.im2col(x, 3).shape == (0, 27, 36)


@pytest.mark.gpu
def test_conv2d_gpu_bad_input(cp):
    x, w = cp.asarray(_ones(1, 3, 8, 8)), cp.asarray(_ones(4, 3, 3, 3))
    with pytest.raises(TypeError, match=r"must all be NumPy \(CPU\) or all CuPy"):
        F.conv2d(x, _ones(4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\)"):
        F.conv2d(x[0], w)
    with pytest.raises(ValueError, match=r"x \(1, 3, 8, 8\) has 3 channels, not divisible"):
        F.conv2d(x, cp.asarray(_ones(4, 1, 3, 3)), groups=2)
    with pytest.raises(ValueError, match=r"dy has shape \(1, 4, 7, 6\), expected \(1, 4, 6, 6\)"):
        F.conv2d_backward(cp.asarray(_ones(1, 4, 7, 6)), x, w)
    with pytest.raises(TypeError, match="x has dtype float64"):
        F.conv2d(cp.asarray(np.ones((1, 3, 8, 8))), w)
    with pytest.raises(ValueError, match=r"cols has shape \(1, 9, 35\), expected \(1, 9, 36\)"):
        F.col2im(cp.asarray(_ones(1, 9, 35)), (1, 1, 8, 8), 3)


@pytest.mark.gpu
def test_gpu_binding_rechecks_geometry_and_workspace(cp):
    """Direct _cuda calls with an inconsistent geometry or a short workspace
    are refused before any launch."""
    cuda = pykernels._backend.cuda_module()
    x, w, y = cp.asarray(_ones(2, 3, 8, 8)), cp.asarray(_ones(4, 3, 3, 3)), cp.empty(
        (2, 4, 6, 6), dtype=np.float32)
    args = ([2, 3, 8, 8], [4, 3, 3, 3], (1, 1), (0, 0), (1, 1))
    chunk, need = cuda.conv2d_workspace(*args, 1, 1 << 20)
    assert chunk == 2 and need == (27 + 4) * 2 * 36
    ws = cp.empty(need, dtype=np.float32)
    with pytest.raises(ValueError, match=f"workspace holds {need - 1} floats, this convolution "
                                         f"needs {need}"):
        cuda.conv2d_forward(x.data.ptr, w.data.ptr, 0, y.data.ptr, ws.data.ptr, need - 1, *args,
                            1, 1 << 20, 0, 0)
    # Winograd needs its own, larger workspace: the im2col one is refused.
    winograd_need = cuda.conv2d_workspace(*args, 1, 1 << 20, 2)[1]
    assert winograd_need > need
    with pytest.raises(ValueError, match=f"this convolution needs {winograd_need}"):
        cuda.conv2d_forward(x.data.ptr, w.data.ptr, 0, y.data.ptr, ws.data.ptr, need, *args,
                            1, 1 << 20, 2, 0)
    with pytest.raises(ValueError, match=r"algo must be 0 \(auto\), 1 \(im2col\) or 2"):
        cuda.conv2d_forward(x.data.ptr, w.data.ptr, 0, y.data.ptr, ws.data.ptr, need, *args,
                            1, 1 << 20, 3, 0)
    with pytest.raises(ValueError, match="groups=2 must divide"):
        cuda.conv2d_forward(x.data.ptr, w.data.ptr, 0, y.data.ptr, ws.data.ptr, need, *args, 2,
                            1 << 20, 0, 0)
    with pytest.raises(ValueError, match="output size would be below 1"):
        cuda.im2col(x.data.ptr, y.data.ptr, [2, 3, 8, 8], (9, 9), (1, 1), (0, 0), (1, 1), 0)
    with pytest.raises(ValueError, match="null device pointer"):
        cuda.conv2d_backward(0, x.data.ptr, w.data.ptr, 0, 0, 0, ws.data.ptr, need, *args, 1,
                             1 << 20, 0, 0)


@pytest.mark.gpu
@pytest.mark.real_gpu
@pytest.mark.parametrize("x_shape,w_shape,kw", [
    ((16, 3, 67, 67), (64, 3, 11, 11), dict(stride=4, padding=2)),
    ((32, 64, 27, 27), (192, 64, 5, 5), dict(padding=2)),
    ((64, 192, 13, 13), (384, 192, 3, 3), dict(padding=1)),
    ((64, 256, 13, 13), (256, 128, 3, 3), dict(padding=1, groups=2)),
    ((32, 64, 16, 16), (128, 64, 1, 1), {}),
])
def test_conv2d_gpu_alexnet_sized_matches_cpu(rng, cp, x_shape, w_shape, kw):
    x, w, b = random_f32(rng, x_shape), random_f32(rng, w_shape), random_f32(rng, w_shape[:1])
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)
    got = _gpu_run(cp, x, w, b, dy, kw)
    want = (F.conv2d(x, w, b, **kw), *F.conv2d_backward(dy, x, w, **kw))
    for g, c, scale in zip(got, want, (np.sqrt(w[0].size),) + (np.sqrt(dy.size),) * 3):
        _close(g, c, scale)
    np.testing.assert_equal(got, _gpu_run(cp, x, w, b, dy, kw))

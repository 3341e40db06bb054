"""Winograd convolution F(4x4, r x r): the NumPy reference
(pykernels.reference.winograd) against direct convolution and PyTorch, its
backward by finite differences, and the GPU path (algo="winograd", on the
emulator without a GPU) against the CPU and the reference."""

import numpy as np
import pytest

import pykernels
import pykernels.functional as F
import pykernels.reference as R
from helpers import random_f32
from pykernels._functional import conv as conv_module
from pykernels.reference import winograd as W

# (x shape, weight shape, padding, groups): odd planes (primes, 1, not tile
# multiples), one channel, the largest padding allowed, a padding per side.
CASES = {
    "5x5-alexnet-conv2-like": ((2, 5, 13, 13), (7, 5, 5, 5), 2, 1),
    "5x5-no-padding": ((3, 2, 11, 7), (3, 2, 5, 5), 0, 1),
    "5x5-padding-4": ((1, 3, 5, 6), (2, 3, 5, 5), 4, 1),
    "5x5-one-pixel-out": ((2, 1, 5, 5), (1, 1, 5, 5), 0, 1),
    "3x3-resnet-like": ((3, 6, 8, 8), (5, 6, 3, 3), 1, 1),
    "3x3-primes-pairs": ((2, 3, 17, 11), (4, 3, 3, 3), (2, 0), 1),
    "3x3-one-channel": ((1, 1, 7, 9), (1, 1, 3, 3), 1, 1),
    "3x3-groups-2": ((2, 4, 9, 10), (6, 2, 3, 3), 1, 2),
    "5x5-depthwise": ((2, 3, 9, 8), (3, 1, 5, 5), 2, 3),
}
IDS = list(CASES)


def _case(rng, name):
    x_shape, w_shape, padding, groups = CASES[name]
    x, w = random_f32(rng, x_shape), random_f32(rng, w_shape)
    return x, w, random_f32(rng, w_shape[:1]), dict(padding=padding, groups=groups)


def _reference(x, w, b, padding, groups, backward_dy=None):
    """The Winograd reference per group (it has no groups argument)."""
    og, cg = w.shape[0] // groups, w.shape[1]
    outs = []
    for g in range(groups):
        xs, ws = x[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og]
        if backward_dy is None:
            outs.append(W.conv2d(xs, ws, b[g * og:(g + 1) * og], padding))
        else:
            outs.append(W.conv2d_backward(backward_dy[:, g * og:(g + 1) * og], xs, ws, padding))
    if backward_dy is None:
        return np.concatenate(outs, axis=1)
    return tuple(np.concatenate(parts, axis=axis) for parts, axis in zip(zip(*outs), (1, 0, 0)))


# ---- the reference ------------------------------------------------------------

@pytest.mark.parametrize("m, r", [(2, 3), (4, 3), (6, 3), (2, 5), (4, 5)])
def test_matrices_compute_a_correlation_exactly(rng, m, r):
    """1-D: A^T [(G g) * (B^T d)] is the correlation y_i = sum_k d_(i+k) g_k."""
    at, g, bt = W.winograd_matrices(m, r)
    assert at.shape == (m, m + r - 1) and g.shape == (m + r - 1, r) and bt.shape == (m + r - 1,) * 2
    d, k = rng.standard_normal(m + r - 1), rng.standard_normal(r)
    want = np.correlate(d, k, mode="valid")
    np.testing.assert_allclose(at @ ((g @ k) * (bt @ d)), want, rtol=1e-12, atol=1e-12)


def test_matrices_refuse_an_unknown_tile():
    with pytest.raises(ValueError, match="tiles of 10"):
        W.winograd_matrices(4, 7)


@pytest.mark.parametrize("name", IDS)
def test_reference_matches_direct_convolution_in_float64(rng, name):
    x, w, b, kw = _case(rng, name)
    x, w, b = (a.astype(np.float64) for a in (x, w, b))
    want = R.conv2d(x, w, b, **kw)
    got = _reference(x, w, b, kw["padding"], kw["groups"])
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)
    dy = rng.standard_normal(want.shape)
    for g, r in zip(_reference(x, w, b, kw["padding"], kw["groups"], dy),
                    R.conv2d_backward(dy, x, w, **kw)):
        np.testing.assert_allclose(g, r, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("name", ["5x5-alexnet-conv2-like", "3x3-primes-pairs"])
def test_reference_float32_matches_torch(rng, torch, name):
    x, w, b, kw = _case(rng, name)
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    ty = torch.nn.functional.conv2d(tx, tw, torch.from_numpy(b), **kw)
    dy = random_f32(rng, tuple(ty.shape))
    ty.backward(torch.from_numpy(dy))
    scale = np.sqrt(w[0].size)
    np.testing.assert_allclose(_reference(x, w, b, kw["padding"], kw["groups"]),
                               ty.detach().numpy(), rtol=1e-4, atol=1e-4 * scale)
    dx, dw, _ = _reference(x, w, b, kw["padding"], kw["groups"], dy)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-4 * np.sqrt(dy.size))
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-4, atol=1e-4 * np.sqrt(dy.size))


@pytest.mark.parametrize("r, padding", [(5, 2), (3, (0, 1))])
def test_reference_backward_by_finite_differences(rng, r, padding):
    x = rng.standard_normal((2, 2, 6, 7))
    w = rng.standard_normal((3, 2, r, r))
    dy = rng.standard_normal(W.conv2d(x, w, None, padding).shape)
    dx, dw, db = W.conv2d_backward(dy, x, w, padding)
    loss = lambda xx, ww, bb: np.sum(W.conv2d(xx, ww, bb, padding) * dy)  # noqa: E731
    b = rng.standard_normal(3)
    for arr, grad in ((x, dx), (w, dw), (b, db)):
        for index in [tuple(rng.integers(0, s) for s in arr.shape) for _ in range(4)]:
            eps = 1e-6
            plus, minus = arr.copy(), arr.copy()
            plus[index] += eps
            minus[index] -= eps
            args_p = [plus if a is arr else a for a in (x, w, b)]
            args_m = [minus if a is arr else a for a in (x, w, b)]
            numeric = (loss(*args_p) - loss(*args_m)) / (2 * eps)
            np.testing.assert_allclose(grad[index], numeric, rtol=1e-6, atol=1e-7)


def test_reference_backward_refuses_padding_above_r_minus_1(rng):
    x, w = rng.standard_normal((1, 1, 6, 6)), rng.standard_normal((1, 1, 3, 3))
    with pytest.raises(ValueError, match="padding"):
        W.conv2d_backward(np.ones((1, 1, 10, 10)), x, w, 3)


def test_unknown_algo_is_refused(rng):
    x, w = random_f32(rng, (1, 2, 6, 6)), random_f32(rng, (3, 2, 3, 3))
    with pytest.raises(ValueError, match="algo must be one of"):
        F.conv2d_backward(np.ones((1, 3, 4, 4), np.float32), x, w, algo="fft")
    with pytest.raises(ValueError, match="algo must be one of"):
        F.conv2d(x, w, algo=None)
    np.testing.assert_array_equal(F.conv2d(x, w, algo="im2col"), F.conv2d(x, w))


# ---- the CPU kernels ----------------------------------------------------------------

def _cpu_run(x, w, b, dy, kw):
    return (F.conv2d(x, w, b, **kw, algo="winograd"),
            *F.conv2d_backward(dy, x, w, **kw, algo="winograd"))


def _check_against_im2col_and_reference(got, x, w, b, dy, kw):
    im2col = (F.conv2d(x, w, b, **kw, algo="im2col"),
              *F.conv2d_backward(dy, x, w, **kw, algo="im2col"))
    x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, w, b, dy))
    want = (_reference(x64, w64, b64, kw["padding"], kw["groups"]),
            *_reference(x64, w64, b64, kw["padding"], kw["groups"], dy64))
    scales = (np.sqrt(w[0].size),) + (np.sqrt(dy.size),) * 3
    for g, c, r, scale in zip(got, im2col, want, scales):
        assert g.shape == r.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-4 * scale)
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4 * scale)


def test_compiled_matrices_are_the_references():
    for r in (3, 5):
        compiled = pykernels._cpu.winograd_matrices(r)
        for got, want in zip(compiled, W.winograd_matrices(4, r)):
            np.testing.assert_allclose(got, want.astype(np.float32).ravel(), rtol=1e-7, atol=0)


@pytest.mark.parametrize("name", IDS)
def test_cpu_winograd_matches_im2col_and_reference(rng, each_isa, name):
    """Every ISA's lanes (4, 8, 16 tiles), with batches whose tile counts leave
    partial lanes."""
    x, w, b, kw = _case(rng, name)
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)
    _check_against_im2col_and_reference(_cpu_run(x, w, b, dy, kw), x, w, b, dy, kw)


@pytest.fixture
def small_cpu_cap():
    """Sets the CPU Winograd scratch cap (floats) for the test, so small
    batches run in chunks (the weight gradient then sums chunks with beta = 1)."""
    def set_cap(floats):
        return pykernels._cpu.conv_winograd_workspace_cap(floats)

    default = set_cap(1)
    set_cap(default)
    yield set_cap
    set_cap(default)


@pytest.mark.parametrize("name", ["5x5-alexnet-conv2-like", "3x3-groups-2"])
def test_cpu_winograd_in_chunks_and_one_or_two_threads(rng, small_cpu_cap, name):
    x, w, b, kw = _case(rng, name)
    x = np.concatenate([x] * 3)[:5]  # 5 images: chunks of 1, or of 2, 2 and 1
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)
    whole = _cpu_run(x, w, b, dy, kw)
    _check_against_im2col_and_reference(whole, x, w, b, dy, kw)
    from pykernels._functional.conv import conv2d_winograd_workspace_bytes

    small_cpu_cap(1)
    one_image = conv2d_winograd_workspace_bytes(x.shape, w.shape, **kw) // 4
    fixed = 2 * (w.shape[2] + 3) ** 2 * w.shape[1] * (w.shape[0] // kw["groups"])  # U and dU
    two_images_cap = 2 * (one_image - fixed)  # the cap bounds the chunk, not U and dU
    small_cpu_cap(two_images_cap)
    assert conv2d_winograd_workspace_bytes(x.shape, w.shape, **kw) == 4 * (fixed +
                                                                           two_images_cap)
    before = pykernels.get_num_threads()
    try:
        for cap in (1, two_images_cap):
            small_cpu_cap(cap)
            pykernels.set_num_threads(1)
            one = _cpu_run(x, w, b, dy, kw)
            pykernels.set_num_threads(2)
            for mode in (0, 1, 2):  # products by the rule, whole per thread, split
                previous = pykernels._cpu.conv_winograd_points_mode(mode)
                try:
                    np.testing.assert_equal(one, _cpu_run(x, w, b, dy, kw))
                finally:
                    pykernels._cpu.conv_winograd_points_mode(previous)
            for a, c, scale in zip(whole, one, (np.sqrt(w[0].size),) + (np.sqrt(dy.size),) * 3):
                np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5 * scale)
        with pytest.raises(ValueError, match="mode must be 0, 1 or 2"):
            pykernels._cpu.conv_winograd_points_mode(3)
    finally:
        pykernels.set_num_threads(before)


def test_cpu_winograd_workspace_is_bounded():
    """AlexNet conv2 at batch 16 runs in chunks of 10 images, whose buffers
    stay under the 32 MiB cap; the transformed weights and their gradient
    (64 points x 64 x 192, twice) come on top."""
    from pykernels._functional.conv import conv2d_winograd_workspace_bytes

    nbytes = conv2d_winograd_workspace_bytes((16, 64, 27, 27), (192, 64, 5, 5), padding=2)
    weights = 2 * 64 * 64 * 192 * 4
    per_image = 64 * (64 + 192) * 49 * 4
    assert nbytes == weights + 10 * per_image and 10 * per_image <= 2**25 < 11 * per_image
    assert conv2d_winograd_workspace_bytes((0, 3, 9, 9), (4, 3, 3, 3), padding=1) == 0


def test_cpu_auto_takes_winograd_where_it_was_measured_faster(rng):
    """The measured rule: 5x5 with >= 32 channels per group in and out; 3x3
    with >= 128 on output planes of at least 12x12; 96 or more 4x4 output
    tiles in the batch (a 9x9 plane has 9 tiles, a 12x13 one 12)."""
    def run(x_shape, w_shape, padding, groups=1):
        x, w = random_f32(rng, x_shape), random_f32(rng, w_shape)
        return [F.conv2d(x, w, padding=padding, groups=groups, algo=a)
                for a in ("auto", "winograd", "im2col")]

    for case in (((11, 32, 9, 9), (32, 32, 5, 5), 2), ((8, 128, 12, 13), (128, 128, 3, 3), 1)):
        auto, winograd, im2col = run(*case)
        np.testing.assert_array_equal(auto, winograd)
        assert not np.array_equal(auto, im2col)  # the two algorithms round differently
        assert _algorithm(*case) == "winograd"
    for case in (((6, 16, 9, 9), (32, 16, 5, 5), 2), ((6, 64, 9, 9), (64, 16, 5, 5), 2, 4),
                 ((6, 32, 9, 9), (32, 32, 3, 3), 1), ((8, 128, 11, 13), (128, 128, 3, 3), 1),
                 ((8, 96, 13, 13), (128, 96, 3, 3), 1), ((10, 32, 9, 9), (32, 32, 5, 5), 2)):
        auto, _, im2col = run(*case)
        np.testing.assert_array_equal(auto, im2col)
        assert _algorithm(*case) == "im2col"


def _algorithm(x_shape, w_shape, padding, groups=1, device="cpu", algo="auto"):
    return F.conv2d_algorithm(x_shape, w_shape, padding=padding, groups=groups, algo=algo,
                              device=device)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_conv2d_algorithm_names_the_requested_one_and_refuses_the_impossible(request, device):
    if device == "cuda":
        request.getfixturevalue("cp")
    shapes = ((2, 3, 9, 9), (4, 3, 5, 5))
    assert _algorithm(*shapes, 2, device=device, algo="im2col") == "im2col"
    assert _algorithm(*shapes, 2, device=device, algo="winograd") == "winograd"
    assert _algorithm(*shapes, 2, device=device) == "im2col"  # too small to pay
    with pytest.raises(ValueError, match="padding <= 4"):
        _algorithm(*shapes, 5, device=device, algo="winograd")
    with pytest.raises(ValueError, match="algo must be one of"):
        _algorithm(*shapes, 2, device=device, algo="fft")
    with pytest.raises(ValueError, match="x_shape and w_shape|4 dimensions|4-D"):
        _algorithm((2, 3, 9), (4, 3, 5, 5), 2, device=device)
    with pytest.raises(ValueError, match="device must be"):
        _algorithm(*shapes, 2, device="tpu")


# (x shape, weight shape, padding, what algo="auto" runs on the GPU), from
# benchmarks/winograd_sweep.py on an H200: Winograd wherever it won there.
GPU_AUTO_CASES = [
    ((128, 96, 27, 27), (256, 96, 5, 5), 2, "winograd"),    # AlexNet conv2
    ((1, 96, 27, 27), (256, 96, 5, 5), 2, "winograd"),      # 49 tiles: 1.13x / 1.24x
    ((128, 256, 13, 13), (384, 256, 3, 3), 1, "winograd"),  # AlexNet conv3
    ((8, 384, 13, 13), (384, 384, 3, 3), 1, "winograd"),    # AlexNet conv4, 128 tiles
    ((1, 384, 13, 13), (384, 384, 3, 3), 1, "im2col"),      # 16 tiles: 0.75x / 0.60x
    ((2, 384, 13, 13), (384, 384, 3, 3), 1, "winograd"),    # 32 tiles
    ((4, 512, 7, 7), (512, 512, 3, 3), 1, "im2col"),        # 16 tiles: 0.54x / 0.63x
    ((128, 16, 32, 32), (16, 16, 3, 3), 1, "winograd"),     # ResNet-20: 1.94x / 1.52x
    ((128, 16, 27, 27), (32, 16, 5, 5), 2, "winograd"),     # 1.78x / 1.45x
    ((128, 6, 14, 14), (16, 6, 5, 5), 0, "im2col"),         # LeNet conv2: 1.03x / 0.84x
    ((128, 1, 28, 28), (6, 1, 5, 5), 2, "im2col"),          # LeNet conv1: 0.76x / 0.58x
    ((128, 32, 16, 16), (32, 16, 3, 3), 1, "winograd"),     # groups 2: 16 per group
    ((128, 30, 16, 16), (30, 10, 3, 3), 1, "im2col"),       # groups 3: 10 per group
    ((128, 96, 27, 27), (256, 96, 3, 3), 3, "im2col"),      # padding > r - 1
    ((128, 96, 27, 27), (256, 96, 3, 3), 1, "winograd"),
]


@pytest.mark.gpu
@pytest.mark.parametrize("x_shape, w_shape, padding, algo", GPU_AUTO_CASES)
def test_gpu_auto_takes_winograd_where_it_was_measured_faster(cp, x_shape, w_shape, padding,
                                                               algo):
    """The rule measured on an H200 (benchmarks/winograd_sweep.py)."""
    groups = x_shape[1] // w_shape[1]
    assert _algorithm(x_shape, w_shape, padding, groups, device="cuda") == algo


@pytest.mark.gpu
@pytest.mark.real_gpu
def test_gpu_auto_runs_what_conv2d_algorithm_names(rng, cp):
    x_shape, w_shape, padding, _ = GPU_AUTO_CASES[2]
    x, w = cp.asarray(random_f32(rng, x_shape)), cp.asarray(random_f32(rng, w_shape))
    runs = {algo: cp.asnumpy(F.conv2d(x, w, padding=padding, algo=algo))
            for algo in ("auto", "winograd", "im2col")}
    np.testing.assert_array_equal(runs["auto"], runs["winograd"])
    assert not np.array_equal(runs["auto"], runs["im2col"])


def _empty_cases(rng):
    """(x, w, b): no images, no input channels, no output channels."""
    return [(np.zeros((0, 3, 9, 9), np.float32), random_f32(rng, (4, 3, 5, 5)),
             random_f32(rng, (4,))),
            (np.zeros((2, 0, 9, 9), np.float32), np.zeros((4, 0, 5, 5), np.float32),
             random_f32(rng, (4,))),
            (random_f32(rng, (2, 3, 9, 9)), np.zeros((0, 3, 5, 5), np.float32),
             np.zeros((0,), np.float32))]


def _check_empty(x, w, b, y, dx, dw, db):
    """torch's answers: y is the bias, every gradient is zero."""
    assert y.shape == (x.shape[0], w.shape[0], 9, 9) and dx.shape == x.shape
    assert dw.shape == w.shape and db.shape == b.shape
    np.testing.assert_array_equal(y, np.broadcast_to(b.reshape(1, -1, 1, 1), y.shape))
    for grad in (dx, dw, db):
        np.testing.assert_array_equal(grad, 0)


def test_cpu_winograd_empty_batch_and_channels(rng):
    for x, w, b in _empty_cases(rng):
        y = F.conv2d(x, w, b, padding=2, algo="winograd")
        dy = np.zeros(y.shape, np.float32)
        _check_empty(x, w, b, y, *F.conv2d_backward(dy, x, w, padding=2, algo="winograd"))


@pytest.mark.parametrize("kw, pattern", [
    (dict(stride=2, padding=1), r"winograd needs stride 1, got \(2, 2\)"),
    (dict(dilation=2, padding=2), r"winograd needs dilation 1"),
    (dict(padding=3), r"winograd needs padding <= 2 for a 3x3 kernel, got \(3, 3\)"),
])
def test_cpu_winograd_refuses_what_it_cannot_run(rng, kw, pattern):
    x, w = random_f32(rng, (1, 2, 9, 9)), random_f32(rng, (3, 2, 3, 3))
    with pytest.raises(ValueError, match=pattern):
        F.conv2d(x, w, **kw, algo="winograd")
    dy = np.ones(F.conv2d(x, w, **kw).shape, np.float32)
    with pytest.raises(ValueError, match=pattern):
        F.conv2d_backward(dy, x, w, **kw, algo="winograd")
    with pytest.raises(ValueError, match="3x3 or 5x5 kernel, got"):
        F.conv2d(x, random_f32(rng, (3, 2, 7, 7)), padding=3, algo="winograd")


# ---- the GPU path ------------------------------------------------------------------

def _gpu_run(cp, x, w, b, dy, kw, algo="winograd"):
    xg, wg, dyg = cp.asarray(x), cp.asarray(w), cp.asarray(dy)
    return (cp.asnumpy(F.conv2d(xg, wg, cp.asarray(b), **kw, algo=algo)),
            *(cp.asnumpy(g) for g in F.conv2d_backward(dyg, xg, wg, **kw, algo=algo)))


@pytest.fixture
def nan_empty(cp, monkeypatch):
    """cupy.empty hands out NaN-filled arrays: an output or workspace float read
    before it is written shows up as a NaN."""
    full = cp.full
    monkeypatch.setattr(cp, "empty",
                        lambda shape, dtype=np.float32: full(shape, np.nan, dtype=dtype))
    return cp


@pytest.mark.gpu
@pytest.mark.parametrize("name", IDS)
def test_gpu_winograd_matches_cpu_and_reference(rng, nan_empty, name):
    cp = nan_empty
    x, w, b, kw = _case(rng, name)
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)
    got = _gpu_run(cp, x, w, b, dy, kw)
    _check_against_im2col_and_reference(got, x, w, b, dy, kw)
    np.testing.assert_equal(got, _gpu_run(cp, x, w, b, dy, kw))  # repeats bitwise


@pytest.mark.gpu
def test_gpu_winograd_in_chunks_matches_one_chunk(rng, nan_empty, monkeypatch):
    """A cap that fits two images per chunk (the last chunk one image) gives
    the one-chunk answers to rounding, and repeats bitwise."""
    cp = nan_empty
    x, w, b, kw = _case(rng, "5x5-alexnet-conv2-like")
    x = np.concatenate([x, x, x[:1]])
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)
    whole = _gpu_run(cp, x, w, b, dy, kw)
    cuda = pykernels._backend.cuda_module()
    args = (list(x.shape), list(w.shape), (1, 1), (2, 2), (1, 1), 1)
    assert cuda.conv2d_workspace(*args, 1 << 30, 2)[0] == x.shape[0]
    one_image = cuda.conv2d_workspace(*args, 1, 2)
    per_image = 64 * (5 + 7) * 16  # points x channels x 4x4 tiles of a 13x13 plane
    two_images = cuda.conv2d_workspace(*args, one_image[1] + per_image, 2)
    assert one_image[0] == 1 and two_images == (2, one_image[1] + per_image)
    for cap in (two_images[1], 1):
        monkeypatch.setattr(conv_module, "_gpu_workspace_cap", cap)
        chunked = _gpu_run(cp, x, w, b, dy, kw)
        np.testing.assert_equal(chunked, _gpu_run(cp, x, w, b, dy, kw))
        for a, c, scale in zip(whole, chunked, (np.sqrt(w[0].size),) + (np.sqrt(dy.size),) * 3):
            np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.gpu
def test_gpu_winograd_workspace_grows_per_chunk_and_stays_under_the_cap(cp):
    cuda = pykernels._backend.cuda_module()
    args = ([128, 64, 27, 27], [192, 64, 5, 5], (1, 1), (2, 2), (1, 1), 1)
    one = cuda.conv2d_workspace(*args, 1, 2)[1]
    two = cuda.conv2d_workspace(*args, 2 * one, 2)
    assert two[0] >= 2 and two[1] <= 2 * one
    # AlexNet's conv2 at batch 128 fits the default 1 GiB cap in one chunk:
    # 64 points x (64 + 192) channels x 128 images x 49 tiles, plus the
    # weights (64 x 192 x 64) and, backward, 16 slabs of the weight gradient.
    forward = cuda.conv2d_workspace(*args, 2**28, 2)
    backward = cuda.conv2d_workspace(*args, 2**28, 2, True)
    assert forward == (128, 64 * 256 * 128 * 49 + 64 * 192 * 64)
    assert backward == (128, forward[1] + 16 * 64 * 192 * 64)


@pytest.mark.gpu
def test_gpu_winograd_empty_batch_and_channels(rng, nan_empty):
    cp = nan_empty
    for x, w, b in _empty_cases(rng):
        xg, wg = cp.asarray(x), cp.asarray(w)
        y = F.conv2d(xg, wg, cp.asarray(b), padding=2, algo="winograd")
        grads = F.conv2d_backward(cp.zeros(y.shape, np.float32), xg, wg, padding=2,
                                  algo="winograd")
        _check_empty(x, w, b, cp.asnumpy(y), *(cp.asnumpy(g) for g in grads))


@pytest.mark.gpu
def test_gpu_winograd_weight_gradient_in_slabs_groups_and_chunks(rng, nan_empty, monkeypatch):
    """Enough tiles (33 images x 16) for the weight gradient's K to be cut in
    two slabs, two groups, then chunks of 8 images: the slabs summed over
    chunks with beta = 1, the last chunk (16 tiles, too few to cut) writing
    only the first slab while the second keeps its sum."""
    cp = nan_empty
    x, w, b = random_f32(rng, (33, 4, 16, 16)), random_f32(rng, (6, 2, 3, 3)), random_f32(rng, (6,))
    kw = dict(padding=1, groups=2)
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)
    whole = _gpu_run(cp, x, w, b, dy, kw)
    _check_against_im2col_and_reference(whole, x, w, b, dy, kw)
    cuda = pykernels._backend.cuda_module()
    args = (list(x.shape), list(w.shape), (1, 1), (1, 1), (1, 1), 2)
    one_image = cuda.conv2d_workspace(*args, 1, 2, True)[1]
    cap = one_image + 7 * 36 * (2 + 3) * 16
    assert cuda.conv2d_workspace(*args, cap, 2, True) == (8, cap)
    monkeypatch.setattr(conv_module, "_gpu_workspace_cap", cap)
    chunked = _gpu_run(cp, x, w, b, dy, kw)
    for a, c, scale in zip(whole, chunked, (np.sqrt(w[0].size),) + (np.sqrt(dy.size),) * 3):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.gpu
@pytest.mark.parametrize("kw, pattern", [
    (dict(stride=2, padding=1), r"winograd needs stride 1, got \(2, 2\)"),
    (dict(dilation=2, padding=2), r"winograd needs dilation 1"),
    (dict(padding=3), r"winograd needs padding <= 2 for a 3x3 kernel, got \(3, 3\)"),
])
def test_gpu_winograd_refuses_what_it_cannot_run(rng, cp, kw, pattern):
    x, w = cp.asarray(random_f32(rng, (1, 2, 9, 9))), cp.asarray(random_f32(rng, (3, 2, 3, 3)))
    with pytest.raises(ValueError, match=pattern):
        F.conv2d(x, w, **kw, algo="winograd")
    dy = cp.ones(F.conv2d(x, w, **kw).shape, np.float32)
    with pytest.raises(ValueError, match=pattern):
        F.conv2d_backward(dy, x, w, **kw, algo="winograd")
    w7 = cp.asarray(random_f32(rng, (3, 2, 7, 7)))
    with pytest.raises(ValueError, match="3x3 or 5x5 kernel, got"):
        F.conv2d(x, w7, padding=3, algo="winograd")
    with pytest.raises(ValueError, match="algo must be one of"):
        F.conv2d(x, w, algo="Winograd")


@pytest.mark.gpu
@pytest.mark.real_gpu
@pytest.mark.parametrize("x_shape, w_shape, padding", [
    ((32, 64, 27, 27), (192, 64, 5, 5), 2),     # AlexNet conv2
    ((32, 192, 13, 13), (384, 192, 3, 3), 1),   # AlexNet conv3
    ((64, 16, 32, 32), (16, 16, 3, 3), 1),      # ResNet-20's first stage
])
def test_gpu_winograd_alexnet_sized_matches_im2col(rng, cp, x_shape, w_shape, padding):
    x, w, b = random_f32(rng, x_shape), random_f32(rng, w_shape), random_f32(rng, w_shape[:1])
    kw = dict(padding=padding)
    dy = random_f32(rng, F.conv2d(x, w, b, **kw).shape)
    got = _gpu_run(cp, x, w, b, dy, kw)
    want = _gpu_run(cp, x, w, b, dy, kw, algo="im2col")
    for g, c, scale in zip(got, want, (np.sqrt(w[0].size),) + (np.sqrt(dy.size),) * 3):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_equal(got, _gpu_run(cp, x, w, b, dy, kw))

"""Large tensors: index arithmetic is 64-bit wherever a product of sizes can
pass 2^31, a convolution whose im2col work would pass 2^31 elements is
computed correctly in chunks, and a tensor over 2^31 elements is handled
correctly (or refused with a clear error), never corrupted.

The cheap tests use views with huge strides over a sparse memory-mapped file:
the leading dimension passes 2^31 floats while only a few pages are touched.
The memory-hungry ones are marked slow; they are sized for a 24 GiB machine
(peak about 11 GiB, about 90 s on two cores) and skip with a reason when less memory is available.
"""

from __future__ import annotations

import numpy as np
import pytest

from pykernels import _cpu
import pykernels.functional as F
import pykernels.reference as R
from pykernels._functional.conv import conv2d_workspace_bytes

BIG = 2**31
GiB = 2**30


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def _need(nbytes):
    available = _available_bytes()
    if available is not None and available < nbytes + GiB:
        pytest.skip(f"needs {nbytes / GiB:.1f} GiB free, {available / GiB:.1f} GiB available")


# ---- cheap: 64-bit leading dimensions through a sparse file ------------------------

@pytest.fixture
def sparse(tmp_path):
    """A (3, 2^31 + 64) float32 array backed by a sparse file: 24 GiB of
    address space, only the pages touched are ever materialized."""
    path = tmp_path / "sparse.f32"
    shape = (3, BIG + 64)
    with open(path, "wb") as f:
        f.truncate(shape[0] * shape[1] * 4)
    mm = np.memmap(path, dtype=np.float32, mode="r+", shape=shape)
    yield mm
    del mm


def test_gemm_leading_dimension_past_2_31(sparse, rng):
    """Rows 2^31 + 64 floats apart: lda, ldb and ldc and every row offset
    i * ld pass 2^31 and must not wrap."""
    a_src, b_src = rng.standard_normal((3, 5)), rng.standard_normal((3, 4))
    sparse[:, :5] = a_src
    sparse[:, 8:12] = b_src
    a = sparse[:, :5]                      # (3, 5), lda = 2^31 + 64
    b = sparse[:, 8:12]                    # (3, 4), ldb = 2^31 + 64
    c = sparse[:, 16:21]                   # (3, 5) output rows, ldc = 2^31 + 64
    assert a.strides[0] // 4 > BIG
    out = F.gemm(b, a, trans_a=True)       # (4, 5) = b.T @ a, reading strided rows
    np.testing.assert_allclose(out, b_src.T @ a_src, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="C-contiguous"):  # outputs must be contiguous
        F.gemm(a.T, b[:, :3], c.T)
    for algo in ("naive", "blocked", "packed"):
        out = F.gemm(a, a, trans_a=True, algo=algo)       # (5, 5) through both layouts
        np.testing.assert_allclose(out, a_src.T @ a_src, rtol=1e-5, atol=1e-5, err_msg=algo)
    sparse.flush()


def test_workspace_figures_are_64_bit():
    """The scratch of a huge convolution is reported exactly, past 2^31."""
    shape_x, shape_w = (1, 64, 2048, 2048), (128, 64, 3, 3)
    floats = conv2d_workspace_bytes(shape_x, shape_w, padding=1, threads=1, backward=True) // 4
    # one image's columns, C*kh*kw x OH*OW (for col2im's dx: 128 output
    # channels are too many for dx as a forward), and more
    assert floats >= 64 * 9 * 2048 * 2048 > BIG


def test_products_past_int64_are_refused():
    x = np.ones((1, 1, 5, 5), np.float32)
    with pytest.raises(ValueError, match="too large"):
        F.conv2d(x, np.ones((1, 1, 2, 2), np.float32), dilation=2**62, padding=2**61)
    with pytest.raises(ValueError, match="2\\*\\*31"):
        F.avg_pool2d(x, 2**32, stride=1, padding=2**31)


# ---- slow: real tensors past 2^31 elements -----------------------------------------------

PLANES = (2049, 4)       # N, C: 8196 planes of 512 x 512 = 2^31 + 2^20 elements
PLANE = (512, 512)


def _plane_values():
    n, c = PLANES
    return ((np.arange(n * c) % 61) - 30).astype(np.float32).reshape(n, c)


@pytest.fixture(scope="class")
def huge_x():
    """x of shape (2049, 4, 512, 512) float32 (8 GiB), every plane a constant
    small integer (sums stay exact) and a marker in the very last plane."""
    _need(PLANES[0] * PLANES[1] * PLANE[0] * PLANE[1] * 4 * 1.15)
    x = np.empty((*PLANES, *PLANE), np.float32)
    assert x.size > BIG
    x[...] = _plane_values()[:, :, None, None]
    x[-1, -1, 500, 7] = 1000.0
    yield x
    del x


@pytest.mark.slow
class TestTensorPast2_31:
    def test_avg_pool2d(self, huge_x):
        y = F.avg_pool2d(huge_x, 16)
        expected = np.broadcast_to(_plane_values()[:, :, None, None], y.shape).copy()
        expected[-1, -1, 31, 0] += (1000.0 - expected[-1, -1, 31, 0]) / 256
        np.testing.assert_array_equal(y, expected)

    def test_max_pool2d(self, huge_x):
        y, idx = F.max_pool2d(huge_x, 32)
        vals = _plane_values()
        np.testing.assert_array_equal(y[:, :, 0, 0], np.maximum(vals, -np.inf))
        assert y[-1, -1, 15, 0] == 1000.0 and idx[-1, -1, 15, 0] == 500 * 512 + 7
        np.testing.assert_array_equal(idx[:-1, :, 1, 1], 32 * 512 + 32)  # first of a flat window

    def test_adaptive_avg_pool2d(self, huge_x):
        y = F.adaptive_avg_pool2d(huge_x, 1)
        expected = _plane_values().copy()
        expected[-1, -1] += (1000.0 - expected[-1, -1]) / (512 * 512)
        np.testing.assert_allclose(y[:, :, 0, 0], expected, rtol=1e-6)

    def test_relu_in_place_last(self, huge_x):
        out = F.relu(huge_x, out=huge_x)
        assert out is huge_x
        vals = np.maximum(_plane_values(), 0)
        np.testing.assert_array_equal(huge_x[:, :, 0, 0], vals)
        np.testing.assert_array_equal(huge_x[:, :, -1, -1], vals)
        assert huge_x[-1, -1, 500, 7] == 1000.0
        assert not (huge_x[-64:] < 0).any()


@pytest.mark.slow
def test_gemm_output_past_2_31(rng):
    """C of (2^16 + 3) x (2^15 + 5) > 2^31 elements: row offsets i * ldc pass
    2^31 in every micro-kernel."""
    m, n, k = 2**16 + 3, 2**15 + 5, 3
    _need(m * n * 4 * 1.1)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = F.gemm(a, b)
    assert c.size > BIG
    rows = [0, 1, m // 2, m - 2, m - 1]
    np.testing.assert_allclose(c[rows], a[rows].astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    cols = [0, n // 3, n - 1]
    np.testing.assert_allclose(c[:, cols], a.astype(np.float64) @ b[:, cols], rtol=1e-5,
                               atol=1e-5)


@pytest.mark.slow
def test_conv2d_with_im2col_work_past_2_31(rng):
    """N * C*kh*kw * OH*OW = 4400 * 121 * 4096 > 2^31: the column matrix of the
    batch would not fit in a 32-bit index; computed in chunks of images (the
    forward both with the explicit im2col and with the implicit one)."""
    n, size, k = 4400, 64, 11
    x = rng.standard_normal((n, 1, size, size)).astype(np.float32)
    w = rng.standard_normal((2, 1, k, k)).astype(np.float32)
    assert n * k * k * size * size > BIG
    y = F.conv2d(x, w, padding=k // 2)
    previous = _cpu.conv_implicit_im2col(False)
    try:
        np.testing.assert_array_equal(F.conv2d(x, w, padding=k // 2), y)
    finally:
        _cpu.conv_implicit_im2col(previous)
    picks = [0, 1, n // 2, n - 1]
    want = R.conv2d(x[picks].astype(np.float64), w.astype(np.float64), padding=k // 2)
    np.testing.assert_allclose(y[picks], want, rtol=1e-4, atol=1e-4)
    # backward: with x and dy all ones the weight gradient counts, per tap, the
    # output pixels whose window tap lands inside the image, times the batch
    ones_x, dy = np.ones_like(x), np.ones_like(y)
    dx, dw, db = F.conv2d_backward(dy, ones_x, w, padding=k // 2)
    inside = np.array([size - abs(i - k // 2) for i in range(k)], np.float64)
    np.testing.assert_allclose(dw[0, 0], n * np.outer(inside, inside), rtol=1e-5)
    np.testing.assert_allclose(db, [n * size * size] * 2, rtol=1e-6)
    want_dx = R.conv2d_backward(dy[:1].astype(np.float64), ones_x[:1].astype(np.float64),
                                w.astype(np.float64), padding=k // 2)[0]
    np.testing.assert_allclose(dx[[0, n - 1]], np.concatenate([want_dx, want_dx]), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.slow
def test_im2col_output_past_2_31(rng):
    """The public im2col of 4400 images: a (4400, 121, 4096) result, 2.2e9 floats."""
    n, size, k = 4400, 64, 11
    _need(n * k * k * size * size * 4 * 1.1)
    x = rng.standard_normal((n, 1, size, size)).astype(np.float32)
    cols = F.im2col(x, k, padding=k // 2)
    assert cols.size > BIG
    for i in (0, n // 2, n - 1):
        np.testing.assert_array_equal(cols[i], R.im2col(x[i:i + 1], k, padding=k // 2)[0])
    del cols


@pytest.mark.slow
def test_conv2d_one_image_with_columns_past_2_31(rng):
    """One image whose own column matrix (C*kh*kw, OH*OW) = (72, 30.25e6) has
    more than 2^31 entries: offsets row * P pass 2^31 inside im2col and the GEMM
    (explicit im2col), and GEMM panel columns run to 30.25e6 (implicit)."""
    c, size = 8, 5500
    x_shape, w_shape = (1, c, size, size), (1, c, 3, 3)
    previous = _cpu.conv_implicit_im2col(False)
    try:
        work = conv2d_workspace_bytes(x_shape, w_shape, padding=1)
        assert work // 4 > BIG
        _need(work + 2 * c * size * size * 4)
        x = np.empty(x_shape, np.float32)
        x[...] = (np.arange(c, dtype=np.float32) + 1)[None, :, None, None]
        x[0, :, -1, -1] = -100.0
        w = np.ones(w_shape, np.float32)
        explicit = F.conv2d(x, w, padding=1)
    finally:
        _cpu.conv_implicit_im2col(previous)
    total = float(c * (c + 1) // 2)
    for y in (explicit, F.conv2d(x, w, padding=1)):
        assert y[0, 0, size // 2, size // 2] == 9 * total            # interior
        assert y[0, 0, 0, 0] == 4 * total                            # corner: 4 taps
        assert y[0, 0, -1, -1] == 3 * total + c * -100.0             # last pixel, past 2^31 cols
        assert y[0, 0, -1, -3] == 6 * total                          # bottom edge row


# ---- memory: no growth over repeated calls ------------------------------------------------

def test_rss_does_not_grow_over_repeated_calls():
    """56 000 calls (every op forward and backward, and binding error paths,
    2000 times each) in a child: its resident set must not grow. The precise
    leak check is LeakSanitizer in tools/sanitize.sh."""
    import json
    import os
    import subprocess
    import sys

    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("under ASan freed memory sits in quarantine; LeakSanitizer checks leaks")

    script = os.path.join(os.path.dirname(__file__), "..", "tools", "leak_calls.py")
    proc = subprocess.run([sys.executable, script, "2000", "--rss"], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["ops"] * info["rounds"] >= 50_000
    growth = info["rss_after_kib"] - info["rss_before_kib"]
    assert growth < 2048, f"RSS grew by {growth} KiB over {info['ops'] * info['rounds']} calls"

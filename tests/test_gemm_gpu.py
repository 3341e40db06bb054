"""The GPU SGEMM ladder and linear on CuPy arrays, against float64 NumPy on
host copies. Without a GPU these run on the CPU emulator (see conftest.py), so
shapes stay small: a 128x128 tile is 256 OS threads there."""

import functools
import itertools

import numpy as np
import pytest

import pykernels
import pykernels.functional as F
import pykernels.reference as R
from helpers import gemm_error_bound, random_f32

pytestmark = pytest.mark.gpu

RUNGS = ["naive", "coalesced", "smem", "regblock", "vectorized", "warptile", "splitk", "auto"]
# The tensor-core extra: checked against the product of its TF32-rounded
# inputs (R.gemm(..., algo="tf32")), where only FP32 summation error is left.
WITH_TF32 = RUNGS + ["tf32"]
TRANS = list(itertools.product([False, True], repeat=2))
# 1, primes, and sizes either side of the 16/32/128-wide tiles and the 8/16-deep slices.
ODD_SHAPES = [(1, 1, 1), (1, 7, 13), (13, 1, 7), (7, 13, 1), (17, 31, 97), (33, 65, 17),
              (129, 127, 9), (131, 5, 130)]


def stored(rng, rows, cols, trans):
    return random_f32(rng, (cols, rows) if trans else (rows, cols))


def check_gpu_gemm(cp, a, b, c=None, *, to_device=None, **kw):
    """F.gemm on device copies (made by to_device, cp.asarray by default),
    checked element-wise against a float64 bound."""
    to_device = to_device or cp.asarray
    expected = R.gemm(a.astype(np.float64), b.astype(np.float64),
                      None if c is None else c.astype(np.float64), **kw)
    c_dev = None if c is None else cp.asarray(c)
    out = F.gemm(to_device(a), to_device(b), c_dev, **kw)
    assert isinstance(out, cp.ndarray)
    if c_dev is not None:
        assert out is c_dev
    got = cp.asnumpy(out)
    bound = gemm_error_bound(a, b, kw.get("trans_a", False), kw.get("trans_b", False),
                             kw.get("alpha", 1.0), c, kw.get("beta", 0.0))
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.all(np.abs(got - expected) <= bound), np.max(np.abs(got - expected) - bound)
    return got


@pytest.mark.parametrize("algo", WITH_TF32)
@pytest.mark.parametrize("m,n,k", ODD_SHAPES)
def test_every_rung_odd_shapes(rng, cp, algo, m, n, k):
    check_gpu_gemm(cp, random_f32(rng, (m, k)), random_f32(rng, (k, n)), algo=algo)


@pytest.mark.parametrize("algo", WITH_TF32)
@pytest.mark.parametrize("trans_a,trans_b", TRANS)
def test_every_rung_transposes_alpha_beta(rng, cp, algo, trans_a, trans_b):
    m, n, k = 37, 133, 21
    a, b = stored(rng, m, k, trans_a), stored(rng, k, n, trans_b)
    c = random_f32(rng, (m, n))
    check_gpu_gemm(cp, a, b, c, alpha=-1.5, beta=0.75, trans_a=trans_a, trans_b=trans_b,
                   algo=algo)


def misaligned(cp, x):
    """A device copy of x 4 bytes past a 16-byte boundary: float4 loads are off."""
    flat = cp.empty(x.size + 1, np.float32)
    flat[1:] = cp.asarray(x.ravel())
    view = flat[1:].reshape(x.shape)
    assert view.data.ptr % 16 == 4
    return view


# Blocks wholly inside C load their whole K slices without bounds checks
# (TileLoader::aim/fetch_whole); edge blocks and a partial last slice are
# checked. Both shapes have interior and edge blocks, several whole slices and
# a partial last one: 128-row tiles (warptile, splitk's slabs, tf32) and
# auto's 64-row ones.
@pytest.mark.parametrize("algo", ["warptile", "splitk", "auto", "tf32"])
@pytest.mark.parametrize("m,n,k", [(131, 133, 200), (64, 257, 77)])
@pytest.mark.parametrize("trans_a,trans_b", TRANS)
@pytest.mark.parametrize("layout", ["aligned", "misaligned"])
def test_interior_blocks_read_whole_slices(rng, cp, algo, m, n, k, trans_a, trans_b, layout):
    a, b = stored(rng, m, k, trans_a), stored(rng, k, n, trans_b)
    to_device = cp.asarray if layout == "aligned" else functools.partial(misaligned, cp)
    check_gpu_gemm(cp, a, b, random_f32(rng, (m, n)), alpha=0.5, beta=-1.5, trans_a=trans_a,
                   trans_b=trans_b, algo=algo, to_device=to_device)


@pytest.mark.parametrize("algo", RUNGS)
def test_beta_zero_ignores_nan_in_c(rng, cp, algo):
    a, b = random_f32(rng, (19, 23)), random_f32(rng, (23, 130))
    c = cp.asarray(np.full((19, 130), np.nan, np.float32))
    F.gemm(cp.asarray(a), cp.asarray(b), c, beta=0.0, algo=algo)
    bound = gemm_error_bound(a, b, False, False)
    assert np.all(np.abs(cp.asnumpy(c) - a.astype(np.float64) @ b) <= bound)


@pytest.mark.parametrize("algo", WITH_TF32)
def test_every_output_element_is_written(rng, cp, algo):
    # C poisoned with NaN and beta = 0: an element the kernel skipped stays NaN.
    a, b = random_f32(rng, (131, 9)), random_f32(rng, (9, 133))
    c = cp.asarray(np.full((131, 133), np.nan, np.float32))
    F.gemm(cp.asarray(a), cp.asarray(b), c, algo=algo)
    assert np.isfinite(cp.asnumpy(c)).all()


@pytest.mark.parametrize("algo", ["smem", "vectorized", "warptile"])
def test_unaligned_and_strided_views(rng, cp, algo):
    # Offset views defeat float4 loads (the kernels fall back to scalar ones);
    # a transposed view flips the transpose flag instead of being copied.
    a_full, b_full = random_f32(rng, (41, 30)), random_f32(rng, (29, 67))
    a_dev, b_dev = cp.asarray(a_full), cp.asarray(b_full)
    got = F.gemm(a_dev[1:, 1:], b_dev[:, 1:], algo=algo)
    expected = a_full[1:, 1:].astype(np.float64) @ b_full[:, 1:]
    np.testing.assert_allclose(cp.asnumpy(got), expected, rtol=1e-4, atol=1e-4)
    a2, b2 = random_f32(rng, (41, 29)), random_f32(rng, (29, 67))
    a2_colmajor, b2_colmajor = cp.asarray(a2.T.copy()).T, cp.asarray(b2.T.copy()).T
    got_t = F.gemm(a2_colmajor, b2_colmajor, algo=algo)
    np.testing.assert_allclose(cp.asnumpy(got_t), a2.astype(np.float64) @ b2,
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("m,n,k", [(0, 5, 3), (5, 0, 3), (4, 6, 0)])
def test_zero_sizes(cp, m, n, k):
    out = F.gemm(cp.zeros((m, k), np.float32) + 1, cp.zeros((k, n), np.float32) + 1)
    assert out.shape == (m, n)
    np.testing.assert_array_equal(cp.asnumpy(out), np.zeros((m, n), np.float32))


def test_repeated_runs_are_bitwise_equal(rng, cp):
    a, b = cp.asarray(random_f32(rng, (130, 70))), cp.asarray(random_f32(rng, (70, 129)))
    np.testing.assert_array_equal(cp.asnumpy(F.gemm(a, b)), cp.asnumpy(F.gemm(a, b)))


def test_c_aliasing_an_input_is_safe(rng, cp):
    a = random_f32(rng, (20, 20))
    a_dev = cp.asarray(a)
    F.gemm(a_dev, a_dev, a_dev)
    np.testing.assert_allclose(cp.asnumpy(a_dev), a.astype(np.float64) @ a, rtol=1e-4,
                               atol=1e-4)


def test_cpu_only_algo_names_are_refused_on_gpu(cp):
    x = cp.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match="algo must be one of .*warptile"):
        F.gemm(x, x, algo="packed")


def test_mixed_host_and_device_arrays_raise_type_error(cp):
    with pytest.raises(TypeError, match=r"all be NumPy \(CPU\) or all CuPy"):
        F.gemm(np.ones((2, 2), np.float32), cp.ones((2, 2), np.float32))


class ForeignDeviceArray:
    """Another library's GPU array: only the CUDA Array Interface, no CuPy type."""

    def __init__(self, array, stream=None):
        self._array = array
        self._stream = stream

    @property
    def __cuda_array_interface__(self):
        interface = dict(self._array.__cuda_array_interface__)
        interface["stream"] = self._stream
        return interface


def test_cuda_array_interface_objects_are_accepted_without_copies(rng, cp):
    a, b = random_f32(rng, (9, 11)), random_f32(rng, (11, 5))
    a_dev, b_dev = cp.asarray(a), cp.asarray(b)
    out = cp.asarray(np.full((9, 5), np.nan, np.float32))
    result = F.gemm(ForeignDeviceArray(a_dev), ForeignDeviceArray(b_dev), ForeignDeviceArray(out))
    assert isinstance(result, cp.ndarray)
    # Written through to the caller's memory: the output was not copied.
    np.testing.assert_allclose(cp.asnumpy(out), a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    y = F.relu(ForeignDeviceArray(a_dev))
    np.testing.assert_array_equal(cp.asnumpy(y), np.maximum(a, 0))


def test_linear_forward_and_backward_match_cpu(rng, cp):
    x, w, bias = random_f32(rng, (3, 5, 17)), random_f32(rng, (13, 17)), random_f32(rng, (13,))
    dy = random_f32(rng, (3, 5, 13))
    y_dev = F.linear(cp.asarray(x), cp.asarray(w), cp.asarray(bias))
    np.testing.assert_allclose(cp.asnumpy(y_dev), F.linear(x, w, bias), rtol=1e-5, atol=1e-5)
    grads_dev = F.linear_backward(cp.asarray(dy), cp.asarray(x), cp.asarray(w))
    for got, want in zip(grads_dev, F.linear_backward(dy, x, w)):
        assert isinstance(got, cp.ndarray)
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.real_gpu
def test_results_on_a_non_default_stream(rng, cp):
    a, b = random_f32(rng, (1024, 512)), random_f32(rng, (512, 768))
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        a_dev, b_dev = cp.asarray(a), cp.asarray(b)
        out = F.gemm(a_dev, b_dev)
        got = cp.asnumpy(out, stream=stream)
        stream.synchronize()
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-3)


@pytest.mark.real_gpu
@pytest.mark.parametrize("algo", RUNGS)
def test_large_partial_tiles(rng, cp, algo):
    m, n, k = 1000, 1030, 517
    a, b = random_f32(rng, (m, k)), random_f32(rng, (k, n))
    check_gpu_gemm(cp, a, b, algo=algo)


def split_count(algo, m, n, k):
    from pykernels import _backend

    return _backend.require_cuda().sgemm_split_count(F.GPU_GEMM_ALGOS.index(algo), m, n, k)


# (m, n, k, SMs the emulator reports): skinny products whose K is cut into
# several slabs, the last one shorter, on a GPU of 16 or 132 multiprocessors.
SPLIT_CASES = [(70, 129, 999, 16), (1, 300, 517, 16), (129, 3, 1000, 132), (64, 256, 4099, 132)]


@pytest.mark.parametrize("trans_a,trans_b", TRANS)
@pytest.mark.parametrize("m,n,k,sms", SPLIT_CASES)
def test_split_k_slabs_sum_to_the_product(rng, cp, monkeypatch, m, n, k, sms, trans_a, trans_b):
    monkeypatch.setenv("PYKERNELS_EMU_SMS", str(sms))  # read by the emulator only
    assert split_count("splitk", m, n, k) >= 3
    a, b = stored(rng, m, k, trans_a), stored(rng, k, n, trans_b)
    c = random_f32(rng, (m, n))
    check_gpu_gemm(cp, a, b, c, alpha=0.5, beta=-1.25, trans_a=trans_a, trans_b=trans_b,
                   algo="splitk")
    nan_c = cp.asarray(np.full((m, n), np.nan, np.float32))
    F.gemm(cp.asarray(a), cp.asarray(b), nan_c, trans_a=trans_a, trans_b=trans_b, algo="splitk")
    assert np.isfinite(cp.asnumpy(nan_c)).all()


def test_split_k_on_unaligned_views(rng, cp, monkeypatch):
    monkeypatch.setenv("PYKERNELS_EMU_SMS", "8")
    a_full, b_full = random_f32(rng, (41, 301)), random_f32(rng, (300, 67))
    got = F.gemm(cp.asarray(a_full)[1:, 1:], cp.asarray(b_full)[:, 1:], algo="splitk")
    expected = a_full[1:, 1:].astype(np.float64) @ b_full[:, 1:]
    np.testing.assert_allclose(cp.asnumpy(got), expected, rtol=1e-4, atol=1e-4)


def test_auto_split_counts_on_a_132_sm_gpu(cp, monkeypatch):
    from pykernels import _backend

    monkeypatch.setenv("PYKERNELS_EMU_SMS", "132")
    if _backend.require_cuda().multiprocessor_count() != 132:
        pytest.skip("the counts below are an H100/H200's (132 SMs)")
    # An LSTM step (N = 64, 4H = 2048, H = 512): 16 tiles of 64 rows for 264
    # resident blocks; the sum's traffic stops the split at 6 slabs, not 8.
    assert split_count("auto", 64, 2048, 512) == 6
    # AlexNet conv1's weight gradient over a chunk of 25 images: 3 tiles.
    assert split_count("auto", 64, 363, 25 * 3025) == 64
    # AlexNet fc6's dx at batch 128: 72 tiles, one wave with 60 SMs idle.
    assert split_count("auto", 128, 9216, 4096) == 11
    assert split_count("auto", 1024, 1024, 1024) == 2  # 64 tiles: half the GPU
    assert split_count("auto", 2048, 1024, 1024) == 1  # 128 tiles: one full wave
    assert split_count("auto", 4096, 4096, 4096) == 1  # 1024 tiles: many waves
    assert split_count("auto", 64, 2048, 100) == 1  # too shallow to pay for the sum
    assert split_count("warptile", 64, 2048, 512) == 1
    assert split_count("splitk", 4, 4, 20) == 1  # one 16-deep slice: nothing to split


@pytest.mark.parametrize("algo", ["splitk", "auto"])
def test_split_k_without_memory_runs_unsplit(rng, cp, monkeypatch, algo):
    # The emulator's cudaMallocAsync fails on request, as a full GPU's would:
    # the product must still be right, and leave no error behind for the next call.
    monkeypatch.setenv("PYKERNELS_EMU_SMS", "16")
    monkeypatch.setenv("PYKERNELS_EMU_MALLOC_FAIL", "1")
    assert split_count(algo, 33, 40, 700) > 1
    a, b = random_f32(rng, (33, 700)), random_f32(rng, (700, 40))
    check_gpu_gemm(cp, a, b, algo=algo)
    check_gpu_gemm(cp, b[:40, :33], a[:, :40], algo="warptile")


def test_split_k_is_bitwise_repeatable(rng, cp, monkeypatch):
    monkeypatch.setenv("PYKERNELS_EMU_SMS", "16")
    a, b = cp.asarray(random_f32(rng, (33, 700))), cp.asarray(random_f32(rng, (700, 40)))
    assert split_count("auto", 33, 40, 700) > 1
    np.testing.assert_array_equal(cp.asnumpy(F.gemm(a, b)), cp.asnumpy(F.gemm(a, b)))


@pytest.mark.parametrize("m,n,k", [(1, 4, 4), (17, 36, 97), (129, 132, 40), (200, 4, 300)])
def test_tuning_candidates(rng, cp, m, n, k):
    from pykernels import _backend

    gpu = _backend.require_cuda()
    variants = gpu.sgemm_tuning_variants()
    assert variants
    a, b, c = random_f32(rng, (m, k)), random_f32(rng, (k, n)), random_f32(rng, (m, n))
    expected = 0.5 * (a.astype(np.float64) @ b) - 2.0 * c
    bound = gemm_error_bound(a, b, False, False, 0.5, c, -2.0)
    for variant in variants:
        a_dev, b_dev, c_dev = cp.asarray(a), cp.asarray(b), cp.asarray(c)
        gpu.sgemm_tuning(variant, m, n, k, 0.5, a_dev.data.ptr, k, b_dev.data.ptr, n, -2.0,
                         c_dev.data.ptr, n, _backend.current_stream_ptr())
        assert np.all(np.abs(cp.asnumpy(c_dev) - expected) <= bound), variant
    with pytest.raises(ValueError, match="unknown variant"):
        gpu.sgemm_tuning("nope", m, n, k, 1.0, a_dev.data.ptr, k, b_dev.data.ptr, n, 0.0,
                         c_dev.data.ptr, n, 0)


def test_fma_peak_kernel_writes_every_sink_element(cp):
    from pykernels import _backend

    sink = cp.asarray(np.full(2 * 256, np.nan, np.float32))
    _backend.require_cuda().fma_peak(sink.data.ptr, 2, 10, _backend.current_stream_ptr())
    assert np.isfinite(cp.asnumpy(sink)).all()
    assert pykernels.cuda.is_available()


# ---- the TF32 tensor-core rung (explicit only) ------------------------------

def test_tf32_rounds_inputs_to_nearest_ties_away(cp):
    # 1 + 2^-12 is below half a TF32 ulp (2^-10) and rounds to 1; 1 + 2^-11
    # is a tie and rounds away, to 1 + 2^-10. FP32 arithmetic would keep both.
    a = np.array([[1 + 2.0**-12, 1 + 2.0**-11]], np.float32)
    b = np.array([[1.0], [0.0]], np.float32)
    got = cp.asnumpy(F.gemm(cp.asarray(a), cp.asarray(b), algo="tf32"))
    assert got[0, 0] == 1.0
    got = cp.asnumpy(F.gemm(cp.asarray(a), cp.asarray(b[::-1].copy()), algo="tf32"))
    assert got[0, 0] == np.float32(1 + 2.0**-10)


def test_tf32_unaligned_views_and_repeat_bitwise(rng, cp):
    a_full, b_full = random_f32(rng, (41, 30)), random_f32(rng, (29, 67))
    a_view, b_view = cp.asarray(a_full)[1:, 1:], cp.asarray(b_full)[:, 1:]
    first = cp.asnumpy(F.gemm(a_view, b_view, algo="tf32"))
    np.testing.assert_array_equal(first, cp.asnumpy(F.gemm(a_view, b_view, algo="tf32")))
    expected = R.gemm(a_full[1:, 1:].astype(np.float64), b_full[:, 1:].astype(np.float64),
                      algo="tf32")
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-5)


def test_tf32_is_never_chosen_by_auto(rng, cp):
    # 1 + 2^-12 survives FP32 but not TF32: auto must give the FP32 answer.
    a = cp.asarray(np.full((130, 1), 1 + 2.0**-12, np.float32))
    b = cp.asarray(np.ones((1, 129), np.float32))
    assert (cp.asnumpy(F.gemm(a, b)) == np.float32(1 + 2.0**-12)).all()


def test_tf32_refused_before_compute_capability_8(cp, monkeypatch):
    if cp.__name__ == "cupy":
        pytest.skip("sets the emulator's compute capability; a real GPU has its own")
    monkeypatch.setenv("PYKERNELS_EMU_CC_MAJOR", "7")
    x = cp.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="compute capability 8.0"):
        F.gemm(x, x, algo="tf32")

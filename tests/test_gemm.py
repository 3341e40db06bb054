import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pykernels
import pykernels.functional as F
import pykernels.reference as R
from helpers import gemm_error_bound as error_bound, random_f32

ALGOS = ["naive", "blocked", "packed", "auto"]
TRANS = list(itertools.product([False, True], repeat=2))
# Primes, 1, and sizes on either side of the register tiles and cache blocks.
ODD_SHAPES = [(1, 1, 1), (1, 7, 13), (13, 1, 7), (7, 13, 1), (2, 3, 5), (17, 31, 97),
              (33, 65, 129), (97, 127, 257), (129, 48, 300), (255, 257, 511), (67, 1031, 29)]


def stored(rng, rows, cols, trans):
    """An operand whose op() is rows x cols, stored transposed when asked."""
    m = random_f32(rng, (cols, rows) if trans else (rows, cols))
    return m


def check_gemm(a, b, c=None, **kw):
    expected = R.gemm(a.astype(np.float64), b.astype(np.float64),
                      None if c is None else c.astype(np.float64), **kw)
    out = F.gemm(a, b, None if c is None else c.copy(), **kw)
    bound = error_bound(a, b, kw.get("trans_a", False), kw.get("trans_b", False),
                        kw.get("alpha", 1.0), c, kw.get("beta", 0.0))
    assert out.shape == expected.shape and out.dtype == np.float32
    assert np.all(np.abs(out - expected) <= bound), np.max(np.abs(out - expected) - bound)
    return out


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("m,n,k", ODD_SHAPES)
def test_gemm_odd_shapes_against_float64(rng, algo, m, n, k):
    check_gemm(random_f32(rng, (m, k)), random_f32(rng, (k, n)), algo=algo)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("trans_a,trans_b", TRANS)
def test_gemm_transposes_alpha_beta(rng, algo, trans_a, trans_b):
    m, n, k = 37, 53, 71
    a, b = stored(rng, m, k, trans_a), stored(rng, k, n, trans_b)
    c = random_f32(rng, (m, n))
    check_gemm(a, b, c, alpha=-1.5, beta=0.75, trans_a=trans_a, trans_b=trans_b, algo=algo)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("m,n,k", [(64, 64, 64), (97, 200, 1000), (300, 17, 513)])
def test_gemm_integer_inputs_are_exact(rng, algo, m, n, k):
    a = rng.integers(-4, 5, size=(m, k)).astype(np.float32)
    b = rng.integers(-4, 5, size=(k, n)).astype(np.float32)
    expected = (a.astype(np.int64) @ b.astype(np.int64)).astype(np.float32)
    np.testing.assert_array_equal(F.gemm(a, b, algo=algo), expected)


@pytest.mark.parametrize("algo", ALGOS)
def test_beta_zero_ignores_nan_in_c(rng, algo):
    a, b = random_f32(rng, (19, 23)), random_f32(rng, (23, 29))
    c = np.full((19, 29), np.nan, np.float32)
    out = F.gemm(a, b, c, beta=0.0, algo=algo)
    assert out is c and np.isfinite(c).all()
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("m,n,k", [(0, 5, 3), (5, 0, 3), (0, 0, 0), (4, 6, 0)])
def test_zero_sizes(algo, m, n, k):
    a, b = np.ones((m, k), np.float32), np.ones((k, n), np.float32)
    assert F.gemm(a, b, algo=algo).shape == (m, n)
    c = np.full((m, n), 2.0, np.float32)
    F.gemm(a, b, c, beta=3.0, algo=algo)  # K = 0: C = beta * C
    np.testing.assert_array_equal(c, np.full((m, n), 6.0 if k == 0 else 2.0 * 3 + k))
    if k == 0:
        np.testing.assert_array_equal(F.gemm(a, b, algo=algo), np.zeros((m, n), np.float32))


def test_alpha_zero_scales_c_only(rng):
    a, b = random_f32(rng, (5, 6)), random_f32(rng, (6, 7))
    c = random_f32(rng, (5, 7))
    np.testing.assert_allclose(F.gemm(a, b, c.copy(), alpha=0.0, beta=2.0), 2 * c, rtol=1e-6)


@pytest.mark.parametrize("algo", ALGOS)
def test_strided_and_transposed_views_are_used_in_place(rng, algo):
    big_a, big_b = random_f32(rng, (90, 120)), random_f32(rng, (150, 110))
    a = big_a[5:70, 3:100]        # row stride 120 > width 97
    b = big_b[:97, 10:]           # row stride 110 > width 100
    check_gemm(a, b, algo=algo)
    check_gemm(a, b.T.copy().T, algo=algo)  # a column-major b: read as trans_b
    view, flipped = F._as_gemm_operand(a, False, "a")
    assert np.shares_memory(view, big_a) and flipped is False
    view, flipped = F._as_gemm_operand(b.T, False, "b")
    assert np.shares_memory(view, big_b) and flipped is True
    odd = big_a[::2, ::3]         # neither layout: copied
    view, _ = F._as_gemm_operand(odd, False, "a")
    assert not np.shares_memory(view, big_a)
    check_gemm(odd, random_f32(rng, (odd.shape[1], 9)), algo=algo)


def test_c_aliasing_an_input_is_safe(rng):
    a = random_f32(rng, (40, 40))
    expected = a.astype(np.float64) @ a
    F.gemm(a, a, a)
    np.testing.assert_allclose(a, expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("algo", ["blocked", "packed", "auto"])
@pytest.mark.parametrize("m,n,k", [(257, 263, 269), (64, 3025, 363), (1000, 37, 700)])
def test_one_and_two_threads_bitwise_equal(rng, threads, algo, m, n, k):
    a, b = random_f32(rng, (m, k)), random_f32(rng, (k, n))
    c1 = threads(1, F.gemm, a, b, algo=algo)
    c2 = threads(2, F.gemm, a, b, algo=algo)
    np.testing.assert_array_equal(c1, c2)


@pytest.mark.parametrize("trans_a,trans_b", TRANS)
def test_every_isa(rng, each_isa, trans_a, trans_b):
    for m, n, k in [(1, 1, 1), (31, 47, 61), (130, 260, 300), (64, 64, 64)]:
        a, b = stored(rng, m, k, trans_a), stored(rng, k, n, trans_b)
        c = random_f32(rng, (m, n))
        check_gemm(a, b, c, alpha=0.5, beta=-2.0, trans_a=trans_a, trans_b=trans_b,
                   algo="packed")
        ints_a = np.round(a * 2)
        ints_b = np.round(b * 2)
        op = lambda x, t: x.T if t else x  # noqa: E731
        exact = (op(ints_a, trans_a).astype(np.int64) @ op(ints_b, trans_b).astype(np.int64))
        np.testing.assert_array_equal(
            F.gemm(ints_a, ints_b, trans_a=trans_a, trans_b=trans_b), exact.astype(np.float32))


@pytest.mark.parametrize("threads_", [1, 2])
def test_every_isa_bitwise_across_threads(rng, each_isa, threads, threads_):
    a, b = random_f32(rng, (211, 307)), random_f32(rng, (307, 199))
    np.testing.assert_array_equal(threads(threads_, F.gemm, a, b), threads(1, F.gemm, a, b))


@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 80), n=st.integers(0, 80), k=st.integers(0, 80),
       trans_a=st.booleans(), trans_b=st.booleans(), algo=st.sampled_from(ALGOS),
       alpha=st.sampled_from([1.0, -0.5, 2.0]), beta=st.sampled_from([0.0, 1.0, -0.25]),
       seed=st.integers(0, 2**32 - 1))
def test_gemm_property(m, n, k, trans_a, trans_b, algo, alpha, beta, seed):
    rng = np.random.default_rng(seed)
    a, b = stored(rng, m, k, trans_a), stored(rng, k, n, trans_b)
    c = random_f32(rng, (m, n))
    check_gemm(a, b, c, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b, algo=algo)


def test_gemm_matches_torch(rng, torch):
    for m, n, k in [(33, 17, 65), (128, 96, 200)]:
        a, b = random_f32(rng, (m, k)), random_f32(rng, (k, n))
        expected = (torch.from_numpy(a).double() @ torch.from_numpy(b).double()).numpy()
        np.testing.assert_allclose(F.gemm(a, b), expected, rtol=1e-4, atol=1e-4)


# ---- bad input ----------------------------------------------------------------

def test_inner_dimension_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"a \(3, 4\) and b \(5, 6\)"):
        F.gemm(np.ones((3, 4), np.float32), np.ones((5, 6), np.float32))
    with pytest.raises(ValueError, match="inner dimensions"):
        F.gemm(np.ones((3, 4), np.float32), np.ones((3, 6), np.float32), trans_a=False)


def test_bad_dtypes_and_ranks():
    with pytest.raises(TypeError, match=r"a has dtype float64"):
        F.gemm(np.ones((3, 4)), np.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match=r"b has dtype int64"):
        F.gemm(np.ones((3, 4), np.float32), np.ones((4, 2), np.int64))
    with pytest.raises(ValueError, match="2-D"):
        F.gemm(np.ones(4, np.float32), np.ones((4, 2), np.float32))
    with pytest.raises(TypeError):
        F.gemm([[1.0]], np.ones((1, 1), np.float32))
    with pytest.raises(ValueError, match="algo"):
        F.gemm(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32), algo="fast")


def test_bad_output_is_an_error_not_a_silent_copy():
    a, b = np.ones((3, 4), np.float32), np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match=r"c has shape \(5, 3\), expected \(3, 5\)"):
        F.gemm(a, b, np.zeros((5, 3), np.float32))
    with pytest.raises(TypeError, match="c has dtype float64"):
        F.gemm(a, b, np.zeros((3, 5)))
    with pytest.raises(ValueError, match="C-contiguous"):
        F.gemm(a, b, np.zeros((5, 3), np.float32).T)
    with pytest.raises(ValueError, match="beta"):
        F.gemm(a, b, beta=1.0)


def test_raw_binding_checks_shapes():
    from pykernels import _cpu

    with pytest.raises(ValueError, match="inner dimensions"):
        _cpu.gemm(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32),
                  np.zeros((3, 2), np.float32), 1.0, 0.0, False, False, "auto")
    with pytest.raises(ValueError, match="c has shape"):
        _cpu.gemm(np.ones((3, 4), np.float32), np.ones((4, 2), np.float32),
                  np.zeros((2, 3), np.float32), 1.0, 0.0, False, False, "auto")
    with pytest.raises(ValueError, match="contiguous rows"):
        _cpu.gemm(np.ones((4, 3), np.float32).T, np.ones((4, 2), np.float32),
                  np.zeros((3, 2), np.float32), 1.0, 0.0, False, False, "auto")


# ---- pre-packed operands (gemm_pack) ----------------------------------------

PACK_SHAPES = [(1, 1, 1), (7, 13, 1), (13, 1, 7), (33, 49, 97), (64, 676, 800), (97, 47, 1000),
               (32, 2048, 512)]


@pytest.mark.parametrize("m,n,k", PACK_SHAPES)
@pytest.mark.parametrize("trans_a,trans_b", TRANS)
def test_packed_operand_is_bitwise_the_plain_product(rng, each_isa, m, n, k, trans_a, trans_b):
    """Either operand packed once gives exactly gemm(algo='packed'): same blocks,
    kernel and summation order (k up to 1000 spans several K blocks)."""
    a, b = stored(rng, m, k, trans_a), stored(rng, k, n, trans_b)
    c = random_f32(rng, (m, n))
    kw = dict(alpha=0.5, beta=-2.0)
    plain = F.gemm(a, b, c.copy(), trans_a=trans_a, trans_b=trans_b, algo="packed", **kw)
    packed_a = F.gemm_pack(a, side="a", trans=trans_a)
    packed_b = F.gemm_pack(b, side="b", trans=trans_b)
    assert packed_a.shape == (m, k) and packed_b.shape == (k, n)
    np.testing.assert_array_equal(F.gemm(packed_a, b, c.copy(), trans_b=trans_b, **kw), plain)
    np.testing.assert_array_equal(F.gemm(a, packed_b, c.copy(), trans_a=trans_a, **kw), plain)
    check_gemm(a, b, c, trans_a=trans_a, trans_b=trans_b, **kw)  # and plain is right


@pytest.mark.parametrize("threads_", [1, 2])
def test_packed_operand_threads_and_reuse(rng, threads, threads_):
    w = random_f32(rng, (2048, 512))
    packed = threads(threads_, F.gemm_pack, w, side="b", trans=True)
    for rows in (1, 32, 65):
        h = random_f32(rng, (rows, 512))
        want = threads(1, F.gemm, h, w, trans_b=True, algo="packed")
        np.testing.assert_array_equal(threads(threads_, F.gemm, h, packed), want)


def test_packed_operand_is_a_copy_and_keeps_its_isa(rng):
    a, b = random_f32(rng, (40, 70)), random_f32(rng, (70, 50))
    want = F.gemm(a, b, algo="packed")
    packed = F.gemm_pack(b)
    b[...] = 0.0  # the packed copy does not see later writes
    before = pykernels.get_isa()
    try:
        pykernels.set_isa("generic")  # the kernel the layout was packed for still runs it
        assert packed.isa == before
        np.testing.assert_array_equal(F.gemm(a, packed), want)
    finally:
        pykernels.set_isa(before)
    np.testing.assert_array_equal(F.gemm(a, packed), want)


def test_packed_operand_zero_sizes_and_aliasing(rng):
    for m, n, k in [(0, 5, 3), (5, 0, 3), (4, 6, 0)]:
        a, b = random_f32(rng, (m, k)), random_f32(rng, (k, n))
        c = np.full((m, n), 3.0, np.float32)
        np.testing.assert_array_equal(F.gemm(F.gemm_pack(a, side="a"), b, c.copy(), beta=0.5),
                                      np.full((m, n), 1.5, np.float32))
        np.testing.assert_array_equal(F.gemm(a, F.gemm_pack(b), c.copy()), np.zeros((m, n)))
    # the unpacked operand may be the output itself: it is read from a copy
    x = random_f32(rng, (8, 8))
    packed = F.gemm_pack(random_f32(rng, (8, 8)))
    want = F.gemm(x.copy(), packed)
    np.testing.assert_array_equal(F.gemm(x, packed, x), want)


def test_packed_operand_bad_input(rng):
    a, b = random_f32(rng, (4, 6)), random_f32(rng, (6, 5))
    pa, pb = F.gemm_pack(a, side="a"), F.gemm_pack(b, side="b")
    with pytest.raises(ValueError, match="other side"):
        F.gemm(pb, b)
    with pytest.raises(ValueError, match=r"inner dimensions.*packed b \(6, 5\).*\(5, 6\)"):
        F.gemm(random_f32(rng, (5, 6)), pb, trans_a=True)
    with pytest.raises(ValueError, match="already op"):
        F.gemm(pa, b, trans_a=True)
    with pytest.raises(ValueError, match="at most one"):
        F.gemm(pa, pb)
    with pytest.raises(ValueError, match="algo"):
        F.gemm(pa, b, algo="naive")
    with pytest.raises(ValueError, match=r"c has shape \(3, 3\), expected \(4, 5\)"):
        F.gemm(pa, b, np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        F.gemm_pack(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="side"):
        F.gemm_pack(a, side="c")
    with pytest.raises(TypeError, match="float32"):
        F.gemm_pack(a.astype(np.float64))

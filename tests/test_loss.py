import numpy as np
import pytest

import pykernels.functional as F
import pykernels.reference as R
from pykernels._backend import cpu
from helpers import random_f32

SHAPES = [(1, 1), (7, 10), (64, 1000), (3, 2), (128, 5), (13, 257)]


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_reference_and_torch(rng, torch, shape):
    n, c = shape
    z = random_f32(rng, shape, -5, 5)
    labels = rng.integers(0, c, n)
    loss, probs = F.cross_entropy(z, labels)
    assert isinstance(loss, np.float32) and probs.shape == shape and probs.dtype == np.float32
    rloss, rprobs = R.cross_entropy(z.astype(np.float64), labels)
    np.testing.assert_allclose(loss, rloss, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(probs, rprobs, rtol=1e-5, atol=1e-7)
    tz = torch.from_numpy(z.copy()).requires_grad_()
    tl = torch.nn.functional.cross_entropy(tz, torch.from_numpy(labels))
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-5, atol=1e-6)
    dz = F.cross_entropy_backward(probs, labels)
    np.testing.assert_allclose(dz, tz.grad.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dz, R.cross_entropy_backward(rprobs, labels), rtol=1e-5, atol=1e-7)


def test_huge_logits_stay_finite(rng, torch):
    z = (rng.standard_normal((9, 11)) * 1e4).astype(np.float32)
    z[0, 3] = 3e38
    z[1, :] = -1e4
    labels = rng.integers(0, 11, 9)
    loss, probs = F.cross_entropy(z, labels)
    assert np.isfinite(loss) and np.isfinite(probs).all()
    tz = torch.from_numpy(z.copy()).requires_grad_()
    tl = torch.nn.functional.cross_entropy(tz, torch.from_numpy(labels))
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-6)
    np.testing.assert_allclose(loss, R.cross_entropy(z.astype(np.float64), labels)[0], rtol=1e-6)
    tl.backward()
    np.testing.assert_allclose(F.cross_entropy_backward(probs, labels), tz.grad.numpy(),
                               rtol=1e-5, atol=1e-7)


def test_other_integer_label_dtypes(rng):
    z = random_f32(rng, (6, 4))
    labels = rng.integers(0, 4, 6)
    expected = F.cross_entropy(z, labels)[0]
    for dt in (np.int32, np.uint8, np.int16):
        assert F.cross_entropy(z, labels.astype(dt))[0] == expected


def test_one_and_two_threads_give_the_same_result(rng, threads):
    z = random_f32(rng, (4099, 100), -8, 8)
    labels = rng.integers(0, 100, 4099)
    l1, p1 = threads(1, F.cross_entropy, z, labels)
    l2, p2 = threads(2, F.cross_entropy, z, labels)
    assert l1 == l2
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(threads(1, F.cross_entropy_backward, p1, labels),
                                  threads(2, F.cross_entropy_backward, p1, labels))


def test_non_contiguous_logits(rng):
    z = random_f32(rng, (20, 30))[::2, ::3]
    labels = rng.integers(0, 10, 10)[::-1]
    loss, probs = F.cross_entropy(z, labels)
    rloss, rprobs = R.cross_entropy(z.astype(np.float64), labels)
    np.testing.assert_allclose(loss, rloss, rtol=1e-6)
    np.testing.assert_allclose(probs, rprobs, rtol=1e-5, atol=1e-7)


def test_empty_batch(torch):
    loss, probs = F.cross_entropy(np.zeros((0, 5), np.float32), np.zeros(0, np.int64))
    assert np.isnan(loss) and probs.shape == (0, 5)  # torch gives NaN too
    assert F.cross_entropy_backward(probs, np.zeros(0, np.int64)).shape == (0, 5)


def test_reference_backward_by_finite_differences(rng):
    z = rng.standard_normal((5, 7)) * 2
    labels = rng.integers(0, 7, 5)
    _, probs = R.cross_entropy(z, labels)
    eps = 1e-6
    numeric = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        v = z.copy()
        v[i] += eps
        up = R.cross_entropy(v, labels)[0]
        v[i] -= 2 * eps
        down = R.cross_entropy(v, labels)[0]
        numeric[i] = (up - down) / (2 * eps)
    np.testing.assert_allclose(R.cross_entropy_backward(probs, labels), numeric, rtol=1e-6,
                               atol=1e-9)


def test_bad_input(rng):
    z = random_f32(rng, (4, 3))
    for bad in ([0, 1, 3, 0], [0, -1, 2, 0], [-100, 0, 0, 0]):
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            F.cross_entropy(z, np.array(bad))
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            F.cross_entropy_backward(z, np.array(bad))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(z, np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(z, np.zeros(4, bool))
    with pytest.raises(ValueError, match="labels must have shape"):
        F.cross_entropy(z, np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="2-D"):
        F.cross_entropy(z[0], np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="class"):
        F.cross_entropy(np.zeros((4, 0), np.float32), np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="float32"):
        F.cross_entropy(z.astype(np.float64), np.zeros(4, np.int64))
    with pytest.raises(TypeError):
        F.cross_entropy(z.tolist(), np.zeros(4, np.int64))
    # The kernel never indexes with a bad label even when called directly.
    with pytest.raises(ValueError, match="outside"):
        cpu().cross_entropy_forward(z, np.array([0, 1, 7, 0], np.int64), np.empty_like(z))
    with pytest.raises(ValueError, match="outside"):
        cpu().cross_entropy_backward(z, np.array([0, 1, 2, -5], np.int64), np.empty_like(z))
    with pytest.raises(TypeError):
        cpu().cross_entropy_forward(z, np.zeros(4, np.int32), np.empty_like(z))

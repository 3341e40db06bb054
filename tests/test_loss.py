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


# ---- GPU (real CuPy on a GPU machine, the CPU emulator elsewhere) -------------

@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES + [(37, 33), (9, 64)])
def test_gpu_matches_cpu_and_reference(rng, poisoned, shape):
    cp = poisoned
    n, c = shape
    z = random_f32(rng, shape, -5, 5)
    labels = rng.integers(0, c, n)
    loss, probs = F.cross_entropy(cp.asarray(z), cp.asarray(labels))
    assert isinstance(loss, np.float32)  # a host scalar, as on the CPU
    cpu_loss, cpu_probs = F.cross_entropy(z, labels)
    rloss, rprobs = R.cross_entropy(z.astype(np.float64), labels)
    np.testing.assert_allclose(loss, cpu_loss, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(loss, rloss, rtol=1e-6, atol=1e-7)
    hp = cp.asnumpy(probs)
    np.testing.assert_allclose(hp, cpu_probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hp, rprobs, rtol=1e-5, atol=1e-7)
    dz = cp.asnumpy(F.cross_entropy_backward(probs, cp.asarray(labels)))
    # same float formula on both devices: bitwise equal for the same probs
    np.testing.assert_array_equal(dz, F.cross_entropy_backward(hp, labels))
    np.testing.assert_allclose(dz, R.cross_entropy_backward(rprobs, labels), rtol=1e-5,
                               atol=1e-7)


@pytest.mark.gpu
def test_gpu_huge_logits_stay_finite(rng, cp):
    z = (rng.standard_normal((9, 11)) * 1e4).astype(np.float32)
    z[0, 3] = 3e38
    z[1, :] = -1e4
    labels = rng.integers(0, 11, 9)
    loss, probs = F.cross_entropy(cp.asarray(z), cp.asarray(labels))
    hp = cp.asnumpy(probs)
    assert np.isfinite(loss) and np.isfinite(hp).all()
    rloss, rprobs = R.cross_entropy(z.astype(np.float64), labels)
    np.testing.assert_allclose(loss, rloss, rtol=1e-6)
    np.testing.assert_allclose(loss, F.cross_entropy(z, labels)[0], rtol=1e-6)
    np.testing.assert_allclose(hp, rprobs, rtol=1e-5, atol=1e-7)
    dz = cp.asnumpy(F.cross_entropy_backward(probs, cp.asarray(labels)))
    np.testing.assert_allclose(dz, R.cross_entropy_backward(rprobs, labels), rtol=1e-5,
                               atol=1e-7)


@pytest.mark.gpu
def test_gpu_runs_are_bitwise_equal_and_label_dtypes(rng, cp):
    z = cp.asarray(random_f32(rng, (300, 7), -8, 8))  # several blocks of rows
    labels = rng.integers(0, 7, 300)
    l1, p1 = F.cross_entropy(z, cp.asarray(labels))
    l2, p2 = F.cross_entropy(z, cp.asarray(labels))
    assert l1 == l2
    np.testing.assert_array_equal(cp.asnumpy(p1), cp.asnumpy(p2))
    for dt in (np.int32, np.uint8, np.int16):
        assert F.cross_entropy(z, cp.asarray(labels.astype(dt)))[0] == l1


@pytest.mark.gpu
def test_gpu_non_contiguous_empty_and_bad_input(rng, cp):
    z = random_f32(rng, (20, 30))
    all_labels = rng.integers(0, 10, 20)
    labels = all_labels[::2]
    loss, probs = F.cross_entropy(cp.asarray(z)[::2, ::3], cp.asarray(all_labels)[::2])
    rloss, rprobs = R.cross_entropy(z[::2, ::3].astype(np.float64), labels)
    np.testing.assert_allclose(loss, rloss, rtol=1e-6)
    np.testing.assert_allclose(cp.asnumpy(probs), rprobs, rtol=1e-5, atol=1e-7)

    loss, probs = F.cross_entropy(cp.zeros((0, 5), dtype=np.float32),
                                  cp.zeros(0, dtype=np.int64))
    assert np.isnan(loss) and probs.shape == (0, 5)
    assert F.cross_entropy_backward(probs, cp.zeros(0, dtype=np.int64)).shape == (0, 5)

    zg = cp.asarray(random_f32(rng, (4, 3)))
    for bad in ([0, 1, 3, 0], [0, -1, 2, 0], [-100, 0, 0, 0]):
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            F.cross_entropy(zg, cp.asarray(np.array(bad)))
        with pytest.raises(ValueError, match=r"\[0, 3\)"):
            F.cross_entropy_backward(zg, cp.asarray(np.array(bad)))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(zg, cp.zeros(4, dtype=np.float32))
    with pytest.raises(TypeError, match="NumPy"):
        F.cross_entropy(zg, np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="labels must have shape"):
        F.cross_entropy(zg, cp.zeros(5, dtype=np.int64))


@pytest.mark.gpu
def test_gpu_loss_module_is_device_agnostic(rng, cp):
    from pykernels import nn

    z = random_f32(rng, (6, 4))
    labels = rng.integers(0, 4, 6)
    cpu_loss = nn.CrossEntropyLoss()
    gpu_loss = nn.CrossEntropyLoss()
    value = gpu_loss.forward(cp.asarray(z), cp.asarray(labels))
    assert isinstance(value, float)
    np.testing.assert_allclose(value, cpu_loss.forward(z, labels), rtol=1e-6)
    np.testing.assert_allclose(cp.asnumpy(gpu_loss.backward()), cpu_loss.backward(), rtol=1e-5,
                               atol=1e-7)

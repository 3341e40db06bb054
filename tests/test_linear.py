import numpy as np
import pytest

import pykernels.functional as F
import pykernels.reference as R
from helpers import random_f32

SHAPES = [((1, 1), 1), ((7, 13), 5), ((32, 300), 97), ((2, 3, 17), 11), ((4, 64), 1)]


@pytest.mark.parametrize("x_shape,out_features", SHAPES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_matches_torch(rng, torch, x_shape, out_features, with_bias):
    x = random_f32(rng, x_shape)
    w = random_f32(rng, (out_features, x_shape[-1]))
    b = random_f32(rng, (out_features,)) if with_bias else None
    tx = torch.from_numpy(x.copy()).requires_grad_()
    tw = torch.from_numpy(w.copy()).requires_grad_()
    tb = torch.from_numpy(b.copy()).requires_grad_() if with_bias else None
    ty = torch.nn.functional.linear(tx, tw, tb)
    dy = random_f32(rng, ty.shape)
    ty.backward(torch.from_numpy(dy))

    y = F.linear(x, w, b)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    dx, dw, db = F.linear_backward(dy, x, w)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-4, atol=1e-4)
    if with_bias:
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("x_shape,out_features", SHAPES)
def test_linear_matches_reference(rng, x_shape, out_features):
    x = random_f32(rng, x_shape)
    w = random_f32(rng, (out_features, x_shape[-1]))
    b = random_f32(rng, (out_features,))
    # float32 sums of K terms of size ~1 round off by ~1e-7 * sqrt(K) each
    # way, whatever order a micro-kernel adds them in (K = 300: up to 3e-5)
    atol = 1e-5 * np.sqrt(x_shape[-1])
    np.testing.assert_allclose(F.linear(x, w, b), R.linear(x.astype(np.float64), w, b),
                               rtol=1e-5, atol=atol)
    dy = random_f32(rng, (*x_shape[:-1], out_features))
    for got, want in zip(F.linear_backward(dy, x, w),
                         R.linear_backward(dy.astype(np.float64), x.astype(np.float64), w)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_reference_linear_backward_by_finite_differences(rng):
    x = rng.standard_normal((4, 6))
    w = rng.standard_normal((3, 6))
    b = rng.standard_normal(3)
    dy = rng.standard_normal((4, 3))
    loss = lambda x_, w_, b_: np.sum(R.linear(x_, w_, b_) * dy)  # noqa: E731
    dx, dw, db = R.linear_backward(dy, x, w)
    eps = 1e-6
    for analytic, param, i in [(dx, x, 0), (dw, w, 1), (db, b, 2)]:
        numeric = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            args = [x, w, b]
            plus, minus = [a.copy() for a in args], [a.copy() for a in args]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            numeric[idx] = (loss(*plus) - loss(*minus)) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_linear_bad_input():
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"x \(2, 5\) does not match weight \(4, 3\)"):
        F.linear(np.ones((2, 5), np.float32), w)
    with pytest.raises(ValueError, match="bias must have shape"):
        F.linear(x, w, np.ones(3, np.float32))
    with pytest.raises(TypeError, match="weight has dtype float64"):
        F.linear(x, np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"dy has shape \(2, 5\), expected \(2, 4\)"):
        F.linear_backward(np.ones((2, 5), np.float32), x, w)


@pytest.mark.parametrize("x_shape", [(5, 7), (2, 3, 7), (0, 7)])
def test_linear_backward_adds_dw_into_a_given_array(rng, x_shape):
    x, weight = random_f32(rng, x_shape), random_f32(rng, (4, 7))
    dy = random_f32(rng, (*x_shape[:-1], 4))
    strided_dy = np.empty((*dy.shape, 2), np.float32)
    strided_dy[..., 0] = dy
    start = random_f32(rng, weight.shape)
    grad = start.copy()
    dx, dw, db = F.linear_backward(strided_dy[..., 0], x, weight, add_dw_to=grad)
    want = F.linear_backward(dy, x, weight)
    assert dw is grad
    np.testing.assert_array_equal(dx, want[0])
    np.testing.assert_array_equal(db, want[2])
    np.testing.assert_allclose(grad, start + want[1], rtol=1e-6, atol=1e-6)
    for bad, exc, match in [(np.zeros((7, 4), np.float32), ValueError, "shape"),
                            (np.zeros((4, 7)), TypeError, "dtype"),
                            (np.zeros((7, 4), np.float32).T, ValueError, "C-contiguous")]:
        with pytest.raises(exc, match=match):
            F.linear_backward(dy, x, weight, add_dw_to=bad)


def test_linear_module_backward_names_bad_dy(rng):
    from pykernels import nn

    layer = nn.Linear(7, 4)
    layer(random_f32(rng, (3, 7)))
    with pytest.raises(TypeError, match="dy"):
        layer.backward(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="dy"):
        layer.backward(np.zeros((3, 5), np.float32))
    assert not layer.weight.grad.any()  # nothing was added by the refused calls

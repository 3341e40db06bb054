"""SGD step (functional.sgd_step, optim.SGD): the NumPy reference against
torch.optim.SGD, the CPU kernel bit for bit against the reference (every
operation rounded alone on both), threads, special values, bad input, and the
GPU kernel bit for bit against the CPU."""

import numpy as np
import pytest

import pykernels.functional as F
import pykernels.reference as R
from helpers import random_f32
from pykernels import nn, optim

SETTINGS = [
    dict(),
    dict(weight_decay=0.01),
    dict(momentum=0.9),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.9, nesterov=True, weight_decay=5e-4),
    dict(momentum=0.8, dampening=0.1, weight_decay=0.01),
    dict(momentum=0.5, dampening=-0.25),
]
SHAPES = [(1,), (7,), (13, 17), (3, 5, 11), (1031,), (100003,)]


def run_steps(step, param, grads, settings, velocity=None, lr=0.05):
    """Apply `step` (F.sgd_step or R.sgd_step) for each gradient, as optim.SGD
    does: the first step with momentum starts the velocity."""
    for index, grad in enumerate(grads):
        step(param, grad, velocity, lr=lr, first_step=index == 0, **settings)
    return param, velocity


def start(rng, shape, settings, steps=4):
    param = random_f32(rng, shape)
    grads = [random_f32(rng, shape) for _ in range(steps)]
    velocity = np.full(shape, np.nan, np.float32) if settings.get("momentum") else None
    return param, grads, velocity


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_matches_torch(rng, torch, settings, dtype):
    param, grads, velocity = start(rng, (5, 7), settings)
    param, grads = param.astype(dtype), [g.astype(dtype) for g in grads]
    velocity = None if velocity is None else velocity.astype(dtype)
    theirs = torch.nn.Parameter(torch.from_numpy(param.copy()))
    t_opt = torch.optim.SGD([theirs], lr=0.05, foreach=False, **settings)
    for grad in grads:
        theirs.grad = torch.from_numpy(grad.copy())
        t_opt.step()
    run_steps(R.sgd_step, param, grads, settings, velocity)
    # torch's CPU kernels may fuse a multiply-add: a few ulps over four steps.
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(param, theirs.detach().numpy(), **tol)


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("shape", SHAPES)
def test_cpu_equals_reference_bitwise(rng, settings, shape):
    param, grads, velocity = start(rng, shape, settings)
    ours = run_steps(F.sgd_step, param.copy(), grads, settings,
                     None if velocity is None else velocity.copy())
    expected = run_steps(R.sgd_step, param.copy(), grads, settings,
                         None if velocity is None else velocity.copy())
    np.testing.assert_array_equal(ours[0], expected[0])
    if velocity is not None:
        np.testing.assert_array_equal(ours[1], expected[1])
    assert not np.array_equal(ours[0], param)  # the step moved the parameters


def test_threads_give_identical_results(rng, threads):
    settings = dict(momentum=0.9, nesterov=True, weight_decay=5e-4)
    param, grads, velocity = start(rng, (200003,), settings)
    results = [threads(n, run_steps, F.sgd_step, param.copy(), grads, settings, velocity.copy())
               for n in (1, 2)]
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_special_values_and_untouched_velocity(rng):
    param = random_f32(rng, (9,))
    param[:3] = [np.inf, -np.inf, np.nan]
    grad = random_f32(rng, (9,))
    grad[3:6] = [np.nan, np.inf, -0.0]
    for settings in [dict(), dict(weight_decay=0.1), dict(momentum=0.9, weight_decay=0.1)]:
        velocity = random_f32(rng, (9,))
        ours, expected = param.copy(), param.copy()
        v_ours, v_expected = velocity.copy(), velocity.copy()
        F.sgd_step(ours, grad, v_ours, lr=0.1, **settings)
        with np.errstate(invalid="ignore"):  # inf - inf
            R.sgd_step(expected, grad, v_expected if settings.get("momentum") else None,
                       lr=0.1, **settings)
        np.testing.assert_array_equal(ours, expected)  # NaN where NaN, inf where inf
        np.testing.assert_array_equal(v_ours, v_expected)  # untouched without momentum
    # Without weight decay an infinite parameter stays infinite: no 0 * inf.
    ours = param.copy()
    F.sgd_step(ours, np.ones_like(grad), lr=0.0)
    np.testing.assert_array_equal(ours, param)


def test_empty_and_noncontiguous_grad(rng):
    F.sgd_step(np.empty((0, 3), np.float32), np.empty((0, 3), np.float32), lr=0.1)
    param = random_f32(rng, (6, 4))
    grad = random_f32(rng, (4, 6)).T  # a strided view: read through a copy
    expected = param.copy()
    R.sgd_step(expected, grad, lr=0.1)
    F.sgd_step(param, grad, lr=0.1)
    np.testing.assert_array_equal(param, expected)


def test_bad_input(rng):
    param, grad = random_f32(rng, (4, 3)), random_f32(rng, (4, 3))
    velocity = np.zeros_like(param)
    with pytest.raises(TypeError, match="param"):
        F.sgd_step(param.astype(np.float64), grad, lr=0.1)
    with pytest.raises(TypeError, match="grad"):
        F.sgd_step(param, grad.astype(np.float64), lr=0.1)
    with pytest.raises(TypeError, match="param"):
        F.sgd_step(param.tolist(), grad, lr=0.1)
    with pytest.raises(ValueError, match="same shape"):
        F.sgd_step(param, grad[:3], lr=0.1)
    with pytest.raises(ValueError, match="velocity"):
        F.sgd_step(param, grad, velocity[:3], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="C-contiguous"):
        F.sgd_step(random_f32(rng, (3, 4)).T, grad, lr=0.1)
    read_only = param.copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        F.sgd_step(read_only, grad, lr=0.1)
    with pytest.raises(ValueError, match="needs a velocity"):
        F.sgd_step(param, grad, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="share memory"):
        F.sgd_step(param, param, lr=0.1)
    buffer = random_f32(rng, (13,))
    with pytest.raises(ValueError, match="share memory"):
        F.sgd_step(buffer[:12].reshape(4, 3), grad, buffer[1:].reshape(4, 3), lr=0.1,
                   momentum=0.9)
    for name, value in [("lr", -0.1), ("lr", np.nan), ("momentum", -0.5),
                        ("weight_decay", -1e-4), ("dampening", np.inf)]:
        with pytest.raises(ValueError, match=name):
            F.sgd_step(param, grad, velocity, **{"lr": 0.1, "momentum": 0.9, name: value})
    with pytest.raises(TypeError, match="lr"):
        F.sgd_step(param, grad, lr=True)
    with pytest.raises(TypeError, match="momentum"):
        F.sgd_step(param, grad, velocity, lr=0.1, momentum="0.9")
    with pytest.raises(ValueError, match="Nesterov"):
        F.sgd_step(param, grad, velocity, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        F.sgd_step(param, grad, lr=0.1, nesterov=True)


def test_numpy_scalars_and_float32_rounding_of_the_hyperparameters(rng):
    """The kernel computes with float32 hyperparameters: NumPy float64 scalars
    give the same numbers as Python floats, a momentum that rounds to 0 is no
    momentum on both sides, and one past float32's range is refused."""
    param, grad = random_f32(rng, (257,)), random_f32(rng, (257,))
    for settings in [dict(lr=np.float64(0.1), momentum=np.float64(0.9),
                          weight_decay=np.float64(1e-3), dampening=np.float64(0.1)),
                     dict(lr=0.1, momentum=1e-46, dampening=0.5)]:
        ours, expected = param.copy(), param.copy()
        v_ours, v_expected = (np.full_like(param, 7.0) for _ in range(2))
        F.sgd_step(ours, grad, v_ours, **settings)
        R.sgd_step(expected, grad, v_expected, **settings)
        np.testing.assert_array_equal(ours, expected)
        np.testing.assert_array_equal(v_ours, v_expected)
    with pytest.raises(ValueError, match="lr"):
        F.sgd_step(param, grad, lr=1e39)
    with pytest.raises(ValueError, match="dampening"):
        F.sgd_step(param, grad, np.zeros_like(param), lr=0.1, momentum=0.9, dampening=-1e39)


def test_optimizer_restarts_the_velocity_after_a_refused_first_step(rng):
    start_value = random_f32(rng, (3,))
    ours = nn.Parameter(start_value.copy())
    opt = optim.SGD([ours], lr=0.1, momentum=0.9)
    ours.grad = np.ones(3)  # float64: refused
    with pytest.raises(TypeError, match="grad"):
        opt.step()
    ours.grad = np.ones(3, np.float32)
    opt.step()
    expected, velocity = start_value.copy(), np.empty_like(start_value)
    R.sgd_step(expected, ours.grad, velocity, lr=0.1, momentum=0.9, first_step=True)
    np.testing.assert_array_equal(ours.data, expected)
    np.testing.assert_array_equal(opt._velocity[0], velocity)


def test_binding_checks_sizes_and_velocity():
    from pykernels._backend import cpu

    param, grad = np.zeros(4, np.float32), np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="elements"):
        cpu().sgd_step(param, grad, None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="velocity"):
        cpu().sgd_step(param, param.copy(), None, 0.1, 0.9, 0.0, 0.0, False, False)
    buffer = np.zeros(9, np.float32)
    with pytest.raises(ValueError, match="share memory"):
        cpu().sgd_step(buffer[:4], buffer[3:7], None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="share memory"):
        cpu().sgd_step(buffer[:4], param, buffer[2:6], 0.1, 0.9, 0.0, 0.0, False, False)


def test_optimizer_uses_the_kernel_and_matches_torch(rng, torch):
    settings = dict(momentum=0.9, nesterov=True, weight_decay=5e-4)
    start_value = random_f32(rng, (33, 7))
    ours = nn.Parameter(start_value.copy())
    theirs = torch.nn.Parameter(torch.from_numpy(start_value.copy()))
    opt = optim.SGD([ours], lr=0.05, **settings)
    t_opt = torch.optim.SGD([theirs], lr=0.05, **settings)
    expected, velocity = start_value.copy(), np.empty_like(start_value)
    for index in range(5):
        grad = random_f32(rng, start_value.shape)
        ours.grad[...] = grad
        theirs.grad = torch.from_numpy(grad.copy())
        opt.step()
        t_opt.step()
        R.sgd_step(expected, grad, velocity, lr=0.05, first_step=index == 0, **settings)
        np.testing.assert_array_equal(ours.data, expected)
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-6, atol=1e-7)


# ---- GPU (real CuPy, or the CPU emulator through the `cp` fixture) -------------

@pytest.mark.gpu
@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("shape", [(1,), (7,), (13, 17), (4099,)])
def test_gpu_equals_cpu_bitwise(rng, cp, settings, shape):
    param, grads, velocity = start(rng, shape, settings)
    expected = run_steps(F.sgd_step, param.copy(), grads, settings,
                         None if velocity is None else velocity.copy())
    ours = run_steps(F.sgd_step, cp.asarray(param), [cp.asarray(g) for g in grads], settings,
                     None if velocity is None else cp.asarray(velocity))
    np.testing.assert_array_equal(cp.asnumpy(ours[0]), expected[0])
    if velocity is not None:
        np.testing.assert_array_equal(cp.asnumpy(ours[1]), expected[1])


@pytest.mark.gpu
def test_gpu_special_values_views_and_bad_input(rng, cp):
    param = random_f32(rng, (2, 9))
    param[0, :3] = [np.inf, -np.inf, np.nan]
    grad = random_f32(rng, (2, 9))
    grad[1, :3] = [np.nan, np.inf, -0.0]
    expected, v_expected = param.copy(), np.zeros_like(param)
    with np.errstate(invalid="ignore"):  # inf - inf
        R.sgd_step(expected, grad, v_expected, lr=0.1, momentum=0.9, weight_decay=0.1)
    ours, v_ours = cp.asarray(param), cp.zeros(param.shape, dtype=cp.float32)
    F.sgd_step(ours, cp.asarray(grad.T.copy()).T, v_ours, lr=0.1, momentum=0.9,
               weight_decay=0.1)
    np.testing.assert_array_equal(cp.asnumpy(ours), expected)
    np.testing.assert_array_equal(cp.asnumpy(v_ours), v_expected)
    F.sgd_step(cp.zeros((0,), dtype=cp.float32), cp.zeros((0,), dtype=cp.float32), lr=0.1)
    with pytest.raises(TypeError, match="NumPy"):
        F.sgd_step(ours, grad, lr=0.1)
    with pytest.raises(TypeError, match="float32"):
        F.sgd_step(ours, cp.asarray(grad.astype(np.float64)), lr=0.1)
    with pytest.raises(ValueError, match="share memory"):
        F.sgd_step(ours, ours, lr=0.1)
    with pytest.raises(ValueError, match="needs a velocity"):
        F.sgd_step(ours, cp.asarray(grad), lr=0.1, momentum=0.9)


def test_zero_grad_zeroes_every_kind_of_gradient(rng, threads):
    from pykernels._functional.sgd import zero_fill

    big = random_f32(rng, (300007,))
    threads(2, zero_fill, big)
    assert not big.any() and not np.signbit(big).any()  # +0.0 everywhere
    strided = random_f32(rng, (6, 8))[:, ::2]  # not contiguous: NumPy's fill
    zero_fill(strided)
    assert not strided.any()
    params = [nn.Parameter(random_f32(rng, shape)) for shape in [(3, 5), (0,), (7,)]]
    for p in params:
        p.grad[...] = 1.5
    optim.SGD(params, lr=0.1).zero_grad()
    assert not any(p.grad.any() for p in params)
    with pytest.raises(ValueError, match="read-only"):
        from pykernels._backend import cpu

        read_only = np.ones(4, np.float32)
        read_only.flags.writeable = False
        cpu().zero_fill(read_only)


@pytest.mark.gpu
def test_gpu_zero_grad(rng, cp):
    params = [nn.Parameter(random_f32(rng, (4, 3))).to("cuda") for _ in range(2)]
    for p in params:
        p.grad[...] = 2.0
    optim.SGD(params, lr=0.1).zero_grad()
    assert not any(cp.asnumpy(p.grad).any() for p in params)

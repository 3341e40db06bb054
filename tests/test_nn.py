"""The network API: layers, containers, optimiser, weights, and whole models
equal to PyTorch (same weights, same batch -> same loss and gradients)."""

import numpy as np
import pytest

import pykernels
from pykernels import models, nn, optim
from pykernels.bench import torch_twin
from helpers import random_f32


def copy_weights(ours, theirs, torch):
    torch_twin.copy_weights(ours, theirs, torch)


def to_torch(module, torch):
    return torch_twin.to_torch(module, torch)


def relative_error(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def assert_same_loss_and_grads(model, x, labels, torch):
    twin = to_torch(model, torch)
    copy_weights(model, twin, torch)
    model.train()
    twin.train()
    loss_fn = nn.CrossEntropyLoss()
    model.zero_grad()
    loss = loss_fn(model(x), labels)
    model.backward(loss_fn.backward())

    t_loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(labels))
    t_loss.backward()
    assert abs(loss - t_loss.item()) <= 1e-4 * abs(t_loss.item())
    t_params = dict(twin.named_parameters())
    names = [name for name, _ in model.named_parameters()]
    assert sorted(names) == sorted(t_params)
    for name, param in model.named_parameters():
        err = relative_error(param.grad, t_params[name].grad.numpy())
        assert err <= 1e-4, f"{name}: relative error {err:.2e}"


def test_lenet_equals_torch(rng, torch):
    nn.manual_seed(1)
    model = models.LeNet5(10, 1, input_size=8)
    assert_same_loss_and_grads(model, random_f32(rng, (16, 1, 8, 8)),
                               rng.integers(0, 10, 16), torch)


def test_lenet_32_equals_torch(rng, torch):
    nn.manual_seed(2)
    model = models.LeNet5(7, 3, input_size=32)
    assert_same_loss_and_grads(model, random_f32(rng, (3, 3, 32, 32)),
                               rng.integers(0, 7, 3), torch)


def test_small_alexnet_equals_torch(rng, torch):
    nn.manual_seed(3)
    model = models.AlexNet(num_classes=5, in_channels=3, width=0.125, dropout=0.0)
    assert_same_loss_and_grads(model, random_f32(rng, (2, 3, 67, 67)),
                               rng.integers(0, 5, 2), torch)


def test_resnet_block_with_batch_norm_equals_torch(rng, torch):
    nn.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        models.basic_block(8, 16, stride=2), models.basic_block(16, 16, stride=1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
    assert_same_loss_and_grads(model, random_f32(rng, (5, 3, 9, 9)), rng.integers(0, 4, 5),
                               torch)


def test_resnet20_forward_runs_and_matches_torch(rng, torch):
    nn.manual_seed(5)
    model = models.ResNet20(10, in_channels=1)
    assert len([p for p in model.parameters()]) == 65
    assert_same_loss_and_grads(model, random_f32(rng, (4, 1, 8, 8)), rng.integers(0, 10, 4),
                               torch)


def test_lstm_classifier_equals_torch(rng, torch):
    nn.manual_seed(6)
    model = models.LSTMClassifier(8, 20, 10)
    assert_same_loss_and_grads(model, random_f32(rng, (7, 8, 8)), rng.integers(0, 10, 7), torch)


def test_stacked_lstm_module_equals_torch(rng, torch):
    nn.manual_seed(7)
    lstm = nn.LSTM(5, 6, num_layers=2)
    twin = torch.nn.LSTM(5, 6, num_layers=2)
    copy_weights(lstm, twin, torch)
    x = random_f32(rng, (4, 3, 5))
    y, (hn, cn) = lstm(x)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    ty, (thn, tcn) = twin(tx)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cn, tcn.detach().numpy(), rtol=1e-5, atol=1e-6)
    dy = random_f32(rng, y.shape)
    dhn = random_f32(rng, hn.shape)
    lstm.zero_grad()
    dx = lstm.backward(dy, dhn=dhn)
    ((ty * torch.from_numpy(dy)).sum() + (thn * torch.from_numpy(dhn)).sum()).backward()
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    t_params = dict(twin.named_parameters())
    for name, p in lstm.named_parameters():
        assert relative_error(p.grad, t_params[name].grad.numpy()) < 1e-4, name


# ---- optimiser ----------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
                                dict(momentum=0.8, weight_decay=0.01, dampening=0.1)])
def test_sgd_matches_torch(rng, torch, kw):
    start = random_f32(rng, (4, 3))
    ours = nn.Parameter(start.copy())
    theirs = torch.nn.Parameter(torch.from_numpy(start.copy()))
    opt = optim.SGD([ours], lr=0.1, **kw)
    t_opt = torch.optim.SGD([theirs], lr=0.1, **kw)
    for step in range(4):
        grad = random_f32(rng, (4, 3))
        ours.grad[...] = grad
        theirs.grad = torch.from_numpy(grad.copy())
        opt.step()
        t_opt.step()
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_step_lr():
    opt = optim.SGD([nn.Parameter(np.zeros(2))], lr=1.0)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(opt.lr)
        sched.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25]


# ---- module behaviour --------------------------------------------------------

def test_backward_adds_into_grad_and_zero_grad_clears(rng):
    layer = nn.Linear(4, 3)
    x, dy = random_f32(rng, (2, 4)), random_f32(rng, (2, 3))
    layer(x)
    layer.backward(dy)
    once = layer.weight.grad.copy()
    layer(x)
    layer.backward(dy)
    np.testing.assert_allclose(layer.weight.grad, 2 * once, rtol=1e-6)
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


def test_backward_before_forward_is_clear_error():
    for layer in (nn.Linear(3, 2), nn.Conv2d(1, 1, 3), nn.ReLU(), nn.MaxPool2d(2),
                  nn.BatchNorm2d(3), nn.LSTM(2, 3), nn.CrossEntropyLoss()):
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(np.ones((1, 2), np.float32))


def test_wrong_input_shape_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Linear\(3 -> 2.*\(\*, 3\), got \(4, 5\)"):
        nn.Linear(3, 2)(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*\(N, 3, H, W\), got \(2, 4, 9, 9\)"):
        nn.Conv2d(3, 8, 3)(np.ones((2, 4, 9, 9), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(5.*\(N, 5\), got \(2, 4\)"):
        nn.BatchNorm1d(5)(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"LSTM\(8, 4.*got \(3, 2, 7\)"):
        nn.LSTM(8, 4)(np.ones((3, 2, 7), np.float32))


def test_train_eval_and_dropout(rng):
    model = nn.Sequential(nn.Linear(50, 50), nn.Dropout(0.5))
    x = random_f32(rng, (64, 50))
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))
    model.train()
    assert not np.array_equal(model(x), model(x))
    assert all(not m.training for m in model.eval())


def test_state_dict_round_trip_npz(tmp_path, rng):
    nn.manual_seed(8)
    model = models.ResNet20(10, in_channels=1, blocks_per_stage=1)
    model(random_f32(rng, (2, 1, 8, 8)))  # moves running stats away from their init
    path = tmp_path / "w.npz"
    model.save(path)
    nn.manual_seed(9)
    other = models.ResNet20(10, in_channels=1, blocks_per_stage=1)
    other.load(path)
    for (k, a), (k2, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a, b)
    assert any(k.endswith("running_var") for k in model.state_dict())


def test_load_errors_name_the_keys(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    state = model.state_dict()
    bad = dict(state)
    del bad["0.bias"]
    bad["9.weight"] = np.zeros(1, np.float32)
    bad["2.weight"] = np.zeros((5, 5), np.float32)
    with pytest.raises(ValueError) as err:
        model.load_state_dict(bad)
    msg = str(err.value)
    assert "missing keys ['0.bias']" in msg and "unexpected keys ['9.weight']" in msg
    assert "2.weight: expected (1, 2), got (5, 5)" in msg
    hostile = tmp_path / "hostile.npz"
    np.savez(hostile, **{"0.weight": np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="not a valid weight file.*dtype object"):
        model.load(hostile)
    truncated = tmp_path / "truncated.npz"
    model.save(tmp_path / "good.npz")
    truncated.write_bytes((tmp_path / "good.npz").read_bytes()[:100])
    with pytest.raises(Exception):
        model.load(truncated)


def test_default_initialisation_bounds():
    nn.manual_seed(0)
    conv = nn.Conv2d(4, 8, 3)
    bound = 1 / np.sqrt(4 * 9)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.weight.data).max() > 0.8 * bound
    lin = nn.Linear(100, 10)
    assert np.abs(lin.bias.data).max() <= 0.1
    bn = nn.BatchNorm2d(3)
    assert (bn.weight.data == 1).all() and (bn.bias.data == 0).all()


def test_to_cuda_without_gpu_is_clear_error():
    if pykernels.cuda.is_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(RuntimeError, match="needs a usable CUDA GPU"):
        nn.Linear(2, 2).to("cuda")
    with pytest.raises(ValueError, match="device must be"):
        nn.Linear(2, 2).to("tpu")

"""Networks moved to the GPU with Module.to('cuda') train like their CPU
copies: same weights and batch give the same loss and gradients. On the CPU
emulator (no GPU) the networks stay tiny; the digits runs need a real GPU."""

import numpy as np
import pytest

from pykernels import models, nn, optim
from pykernels.train import fit, train_step

pytestmark = pytest.mark.gpu


def _twin_models(build, winograd=False):
    """The CPU and GPU copies; with `winograd`, the GPU copy's stride-1 3x3 and
    5x5 convolutions take algo="winograd" (the CPU copy's stay im2col)."""
    nn.manual_seed(0)
    cpu_model = build()
    nn.manual_seed(0)
    gpu_model = build().to("cuda")
    for layer in gpu_model.modules():
        if (winograd and isinstance(layer, nn.Conv2d) and layer.stride == (1, 1)
                and layer.kernel_size in ((3, 3), (5, 5))):
            layer.algo = "winograd"
    return cpu_model, gpu_model


def _step(model, x, y):
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    return train_step(model, loss_fn, opt, x, y)


@pytest.mark.parametrize("name,build,shape", [
    ("lenet", lambda: models.LeNet5(10, 1, 8), (1, 8, 8)),
    ("lstm", lambda: models.LSTMClassifier(5, 7, 10), (4, 5)),
    # The real layer structure (11x11 stride-4 conv, pools, dropout, the 6x6
    # adaptive pool), a sixteenth of the channels, the smallest input.
    ("alexnet", lambda: models.AlexNet(10, width=1 / 16), (3, 63, 63)),
    ("resnet20", lambda: models.ResNet20(10, width=4, blocks_per_stage=1), (3, 8, 8)),
    ("alexnet-winograd", lambda: models.AlexNet(10, width=1 / 16), (3, 63, 63)),
    ("resnet20-winograd", lambda: models.ResNet20(10, width=4, blocks_per_stage=1), (3, 8, 8)),
])
def test_gpu_training_step_matches_cpu(rng, cp, name, build, shape):
    cpu_model, gpu_model = _twin_models(build, winograd=name.endswith("winograd"))
    if name.endswith("winograd"):
        assert sum(getattr(m, "algo", None) == "winograd" for m in gpu_model.modules()) >= 3
    x = rng.standard_normal((3, *shape)).astype(np.float32)
    y = np.array([1, 7, 3])
    for step in range(2):  # the second step also checks the momentum buffers moved
        nn.manual_seed(100 + step)  # the same dropout masks in both: one seed, one generator
        cpu_loss, _ = _step(cpu_model, x, y)
        nn.manual_seed(100 + step)
        gpu_loss, _ = _step(gpu_model, cp.asarray(x), cp.asarray(y))
        assert float(gpu_loss) == pytest.approx(float(cpu_loss), rel=1e-4, abs=1e-6)
    for (name_c, p_cpu), (_, p_gpu) in zip(cpu_model.named_parameters(),
                                          gpu_model.named_parameters()):
        assert isinstance(p_gpu.data, cp.ndarray), name_c
        np.testing.assert_allclose(cp.asnumpy(p_gpu.data), p_cpu.data, rtol=1e-4, atol=1e-5,
                                   err_msg=name_c)
    state = gpu_model.state_dict()
    assert all(isinstance(v, np.ndarray) and not isinstance(v, cp.ndarray)
               for v in state.values())


def test_batchnorm_network_running_stats_move(rng, cp):
    build = lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))  # noqa: E731
    cpu_model, gpu_model = _twin_models(build)
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    y = np.array([0, 3])
    _step(cpu_model, x, y)
    _step(gpu_model, cp.asarray(x), cp.asarray(y))
    for key, value in cpu_model.state_dict().items():
        np.testing.assert_allclose(gpu_model.state_dict()[key], value, rtol=1e-4, atol=1e-5,
                                   err_msg=key)


@pytest.mark.real_gpu
@pytest.mark.parametrize("model_name", ["lenet", "lstm", "resnet20"])
def test_digits_training_on_gpu_reaches_cpu_accuracy(model_name):
    _, cpu_accuracy, _ = fit(model_name, epochs=2, progress=False)
    _, gpu_accuracy, _ = fit(model_name, epochs=2, progress=False, device="cuda")
    assert gpu_accuracy >= cpu_accuracy - 0.02


@pytest.mark.real_gpu
def test_train_command_on_cuda(tmp_path, capsys):
    from pykernels.cli import main as cli_main

    weights = tmp_path / "lenet.npz"
    assert cli_main(["train", "lenet", "--data", "digits", "--epochs", "1", "--device", "cuda",
                     "--out", str(weights)]) == 0
    assert "(cuda): test accuracy" in capsys.readouterr().out
    assert weights.exists()

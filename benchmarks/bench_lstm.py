"""LSTM layer T=50, N=32, I=H=256, forward and forward+backward: pykernels'
fused layer and its naive variant, and PyTorch's nn.LSTM (skipped without
torch). One group per pass."""

import pytest

from pykernels.bench.lstm import _ours, _params

T, N, I, H = 50, 32, 256, 256


@pytest.fixture(scope="module")
def params():
    return _params(T, N, I, H)


@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
@pytest.mark.parametrize("algo", ["fused", "naive"])
def test_lstm_pykernels(benchmark, nthreads, params, algo, backward):
    benchmark.group = f"lstm {'fwd+bwd' if backward else 'fwd'} T{T} N{N} H{H}"
    benchmark.extra_info.update(op="lstm", algo=algo)
    benchmark(_ours, params, algo, backward)


@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwd+bwd"])
def test_lstm_torch(benchmark, nthreads, params, backward):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(nthreads)
    benchmark.group = f"lstm {'fwd+bwd' if backward else 'fwd'} T{T} N{N} H{H}"
    mod = torch.nn.LSTM(I, H)
    x, dy = torch.from_numpy(params["x"]), torch.from_numpy(params["dy"])

    def step():
        if backward:
            y, _ = mod(x.detach().requires_grad_())
            y.backward(dy)
        else:
            with torch.no_grad():
                mod(x)

    benchmark(step)

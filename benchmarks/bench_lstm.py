"""LSTM layer T=50, N=32, I=H=256, forward and forward+backward: pykernels'
fused layer and its naive variant, and PyTorch's nn.LSTM (skipped without
torch). One group per pass."""

import numpy as np
import pytest

import pykernels.functional as F

T, N, I, H = 50, 32, 256, 256


@pytest.fixture(scope="module")
def params():
    rng = np.random.default_rng(0)
    u = lambda *s: rng.uniform(-0.1, 0.1, s).astype(np.float32)  # noqa: E731
    return dict(x=u(T, N, I), h0=u(N, H), c0=u(N, H), w_ih=u(4 * H, I), w_hh=u(4 * H, H),
                b_ih=u(4 * H), b_hh=u(4 * H), dy=u(T, N, H))


def _ours(p, algo, backward):
    _, hn, cn, cache = F.lstm(p["x"], p["h0"], p["c0"], p["w_ih"], p["w_hh"], p["b_ih"],
                              p["b_hh"], algo=algo)
    if backward:
        F.lstm_backward(p["dy"], np.zeros_like(hn), np.zeros_like(cn), cache)


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

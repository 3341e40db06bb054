"""The GPU benchmark suites end to end at toy sizes, so that the code which
only a GPU machine runs in full (benchmarks/gpu_check.sh) has run before a
lease is spent on it: every suite returns its rows with the keys its table
prints, and the numbers are finite. Without a GPU this runs on the CPU
emulator, where the timings mean nothing; nothing here checks speed."""

import math

import pytest

from pykernels.bench import gemm_gpu, gpu, gpu_ops, relu_gpu
from pykernels.bench.report import format_table

from helpers import load_benchmark

pytestmark = pytest.mark.gpu


def assert_finite_rows(rows, keys):
    assert rows
    for row in rows:
        for key in keys:
            assert key in row, (key, row)
            value = row[key]
            assert not isinstance(value, float) or math.isfinite(value), (key, row)
    assert format_table(rows, "suite")  # as `pykernels bench` prints it


def test_peaks_are_positive(cp):
    assert gpu.fma_gflops(iterations=4, repeats=1) > 0
    assert gpu.copy_gbps(mib=1, repeats=1) > 0
    assert gpu.device_name()


def test_gemm_suite_rows(cp):
    rows = gemm_gpu.run(repeats=1, sizes=(70,), skinny=(("skinny", 3, 130, 300),),
                        peak_iterations=4)
    assert_finite_rows(rows, ("n", "variant", "TFLOP/s", "vs cuBLAS", "of FP32 peak",
                              "max rel err vs cuBLAS"))
    tuning = {"tuning: warptile-bk8-2blocks"}
    assert {r["variant"] for r in rows} == {*gemm_gpu.RUNGS, *gemm_gpu.SKINNY_RUNGS, *tuning,
                                            "auto", "cuBLAS"}
    assert max(r["max rel err vs cuBLAS"] for r in rows) < 1e-4


def test_tf32_suite_rows(cp):
    rows = gemm_gpu.run_tf32(repeats=1, sizes=(70,))
    assert_finite_rows(rows, ("n", "variant", "TFLOP/s", "vs cuBLAS TF32",
                              "max rel err vs FP32 cuBLAS"))
    errors = {r["variant"]: r["max rel err vs FP32 cuBLAS"] for r in rows}
    assert errors["warptile"] < 1e-5 < errors["tf32"] < 1e-2  # TF32 keeps 10 mantissa bits


def test_relu_suite_rows(cp):
    rows = relu_gpu.run(mib=1, repeats=1)
    assert_finite_rows(rows, ("pykernels GB/s", "vs copy"))
    assert rows[0]["matches"]


def test_conv_suite_rows(cp):
    layers = (("tiny", 3, 5, 3, 2, 1, 9), ("tiny2", 5, 4, 3, 1, 1, 5))
    rows = gpu_ops.run_conv(batch=2, repeats=1, layers=layers)
    assert_finite_rows(rows, ("layer", "pass", "auto takes", "pykernels TFLOP/s",
                              "im2col TFLOP/s"))
    assert len(rows) == 4
    # Winograd is timed where it applies: stride 1 (tiny2), not stride 2 (tiny).
    assert ["winograd TFLOP/s" in r for r in rows] == [False, False, True, True]
    assert all(math.isfinite(r["winograd TFLOP/s"]) for r in rows[2:])


def test_bandwidth_suite_rows(cp):
    rows = gpu_ops.run_bandwidth(repeats=1, shape=(2, 3, 8, 8), copy_mib=1)
    assert_finite_rows(rows, ("op", "GB/s", "of copy", "of copy, host-paced"))
    assert [r["op"] for r in rows][-1] == "sgd step" and len(rows) == 6


def test_lstm_suite_rows(cp):
    rows = gpu_ops.run_lstm(repeats=1, t=2, n=3, h=8)
    assert_finite_rows(rows, ("case", "pass", "pykernels ms"))
    assert [r["pass"] for r in rows] == ["fwd", "fwd+bwd"]


def test_alexnet_suite_rows(cp):
    rows = gpu_ops.run_alexnet(batch=2, repeats=1, width=1 / 16, image=63)
    assert_finite_rows(rows, ("network", "GPU img/s", "GPU im2col img/s", "CPU img/s",
                              "GPU / CPU"))


def test_profiled_cases_run(cp):
    import pykernels.functional as F

    module = load_benchmark("profile_kernels")
    assert len(module.cases(cp, F, **module.TOY_SIZES)) == 14
    assert module.main(["--toy"]) == 0


def test_conv_workspace_sweep_rows(cp):
    module = load_benchmark("conv_workspace_sweep")
    layers = (("tiny", 3, 5, 3, 2, 1, 9),)
    rows = module.run(batch=3, repeats=1, caps=(2**8, 2**20), layers=layers)
    assert_finite_rows(rows, ("ms, cap 2^8", "ms, cap 2^20", "speed-up, 2^20"))
    assert [r["pass"] for r in rows] == ["fwd", "fwd+bwd"]
    from pykernels._functional import conv as conv_module
    assert conv_module._gpu_workspace_cap is None  # restored


def test_winograd_sweep_rows(cp):
    module = load_benchmark("winograd_sweep")
    rows = module.run(repeats=1, shapes=(("tiny", 3, 5, 3, 1, 9, 2), ("tiny", 2, 3, 5, 2, 7, 1)))
    assert_finite_rows(rows, ("im2col ms", "winograd ms", "winograd speed-up", "auto takes",
                              "auto picks faster"))
    assert [r["pass"] for r in rows] == ["fwd", "fwd+bwd"] * 2
    assert {r["auto takes"] for r in rows} == {"im2col"}



@pytest.mark.real_gpu
def test_main_run_on_cuda_times_our_kernels(tmp_path):
    """`pykernels bench --device cuda`: our GEMM and conv (im2col and Winograd)
    beside cuBLAS and cuDNN, not the peers alone."""
    from pykernels.cli import main as cli_main

    assert cli_main(["bench", "--device", "cuda", "--quick", "--ops", "gemm,conv,relu",
                     "--no-progress", "--out", str(tmp_path / "report")]) == 0
    results = (tmp_path / "report" / "results.json").read_text()
    assert '"pykernels winograd"' in results and '"cuBLAS (CuPy)"' in results
    assert "no GPU" not in results and "not built/usable" not in results


def test_main_run_gpu_cases_time_their_own_arrays(cp, monkeypatch):
    """Each GPU case of `pykernels bench --device cuda` calls our op on the
    arrays built for it (once the conv case's closure read the ReLU case's
    1-D `x`, and only the GPU machine saw it)."""
    from pykernels.bench import main as bench_main

    calls = []

    def recorder(name):
        return lambda *args, **kwargs: calls.append((name, args[0].ndim))

    for op in ("gemm", "conv2d", "relu", "sgd_step"):
        monkeypatch.setattr(bench_main.F, op, recorder(op))
    monkeypatch.setattr(gpu, "pykernels_cuda", lambda: True)
    cfg = bench_main.Config(quick=True, device="cuda", ops=("gemm", "conv", "relu", "sgd"))
    for case in bench_main.gpu_cases(cfg):
        for fn in (case.ours, *case.variants.values()):
            fn()
    assert calls == [("gemm", 2), ("conv2d", 4), ("conv2d", 4), ("relu", 1), ("sgd_step", 1)]


def test_queue_ahead_holds_the_stream_before_each_sample(cp, monkeypatch):
    held = []
    monkeypatch.setattr(gpu, "_hold_stream", lambda kind, seconds: held.append((kind, seconds)))
    x = cp.ones(1000, dtype=cp.float32)
    gpu.event_medians({"x2": (lambda: x * 2, "cupy")}, repeats=3)
    assert held == []
    gpu.event_medians({"x2": (lambda: x * 2, "cupy")}, repeats=3, queue_ahead=True)
    assert len(held) == 3 and all(kind == "cupy" and 0 < s <= 0.25 for kind, s in held)


def test_hold_stream_runs_the_spin_kernel(cp):
    gpu._hold_stream("cupy", 1e-4)
    assert gpu._hold_iterations_per_s > 0

"""The benchmark machinery: the triad and FMA probes, the roofline arithmetic,
a tiny main run end to end (rows, JSON schema, report folder, plots), and the
`pykernels bench` command line. Small sizes; torch is not needed."""

import json
import os

import numpy as np
import pytest

import pykernels
from pykernels import _cpu
from pykernels.bench import alexnet, main as bench_main, peak, roofline
from pykernels.bench.report import main_table_rows, write_report
from pykernels.cli import _parse_ops, _parse_threads
from pykernels.cli import main as cli_main

from helpers import load_benchmark

# Generous physical bound per core: 6 GHz x 2 FMA ports x 2 flops x lanes.
LANES = {"generic": 4, "avx2": 8, "avx512": 16}


# ------------------------------------------------------------------ probes

def test_triad_matches_numpy_and_is_thread_count_independent(threads):
    rng = np.random.default_rng(0)
    n = 100_003  # not a multiple of any vector width
    b = rng.standard_normal(n, dtype=np.float32)
    c = rng.standard_normal(n, dtype=np.float32)
    expect = b + np.float32(2.5) * c
    out = {}
    for t in (1, 2):
        a = np.full(n, np.nan, np.float32)
        threads(t, _cpu.triad, a, b, c, 2.5)
        out[t] = a
    np.testing.assert_allclose(out[1], expect, rtol=1e-6, atol=1e-6)
    assert np.array_equal(out[1], out[2])


def test_triad_rejects_bad_arrays():
    a, b = np.zeros(4, np.float32), np.ones(4, np.float32)
    with pytest.raises(ValueError, match="elements"):
        _cpu.triad(a, b, np.ones(5, np.float32), 1.0)
    with pytest.raises(TypeError):
        _cpu.triad(a, b, np.ones(4, np.float64), 1.0)
    with pytest.raises(ValueError, match="read-only"):
        ro = np.zeros(4, np.float32)
        ro.flags.writeable = False
        _cpu.triad(ro, b, b, 1.0)


@pytest.mark.parametrize("isa", peak.available_isas())
def test_fma_peak_is_plausible(isa):
    gflops = peak._fma_gflops(isa, 1, repeats=2, sample_s=0.01)
    assert 0.5 < gflops < 6.0 * 2 * 2 * LANES[isa]


def test_triad_bandwidth_is_plausible():
    gbps = peak.triad_gbps(1, mib=8, repeats=2)
    assert 0.1 < gbps < 2000


# ------------------------------------------------------------------ roofline

def test_roofline_arithmetic():
    n = 1024  # SGEMM: 2n^3 flops over three n x n float32 matrices
    i = roofline.intensity(2.0 * n**3, 12.0 * n * n)
    assert i == pytest.approx(n / 6)
    assert roofline.ridge(100.0, 20.0) == 5.0
    assert roofline.attainable(1.0, 100.0, 20.0) == 20.0    # under the slope
    assert roofline.attainable(50.0, 100.0, 20.0) == 100.0  # under the flat roof
    assert roofline.bound(0.125, 100.0, 20.0) == "memory"   # ReLU: 1 flop / 8 bytes
    assert roofline.bound(i, 100.0, 20.0) == "compute"
    with pytest.raises(ValueError, match="bytes"):
        roofline.intensity(1.0, 0.0)


def test_alexnet_flop_count():
    from pykernels import models

    rows = alexnet.layer_flops(models.AlexNet())
    conv1 = rows[0]
    assert conv1[1] == (64, 55, 55)
    assert conv1[2] == 2.0 * 64 * 3 * 11 * 11 * 55 * 55 + 64 * 55 * 55
    f = alexnet.step_flops(models.AlexNet(), batch=2)
    assert 1.40e9 < f["forward_per_image"] < 1.45e9  # ~714M multiply-adds
    assert f["params"] == 61_100_840  # torchvision's AlexNet
    assert f["per_step"] == pytest.approx(3 * 2 * f["forward_per_image"] + 6 * f["params"])


def test_alexnet_summary_arithmetic():
    measured = {"images_per_s": 10.0, "step_seconds": 0.8, "flops": {
        "per_step": 8e9, "forward_per_image": 1e9}}
    s = alexnet.summarize(measured, cpu_peak_gflops=100.0)
    m = s["measured"]
    assert m["epoch_hours"] == pytest.approx(alexnet.ILSVRC_2012_IMAGES / 10 / 3600)
    assert m["ninety_epochs_days"] == pytest.approx(90 * alexnet.ILSVRC_2012_IMAGES / 10 / 86400)
    assert m["achieved_gflops"] == pytest.approx(10.0)
    assert m["of_peak"] == pytest.approx(0.1)
    lit = s["literature"]
    assert lit["peak_gflops"] == pytest.approx(3160.0)
    lo, hi = lit["derived_images_per_s"]
    assert lo == pytest.approx(alexnet.ILSVRC_2012_IMAGES * 90 / (6 * 86400))
    assert hi == pytest.approx(alexnet.ILSVRC_2012_IMAGES * 90 / (5 * 86400))


# ------------------------------------------------------------------ tiny run

def _tiny_gemm(cfg):
    m = 64
    a = np.random.default_rng(0).standard_normal((m, m), dtype=np.float32)
    c1, c2 = np.empty_like(a), np.empty_like(a)
    import pykernels.functional as F
    import pykernels.reference as R

    return [bench_main.Case("gemm", f"{m}x{m}x{m}", "cpu", 2.0 * m**3, 12.0 * m * m, "GFLOP/s",
                            lambda: F.gemm(a, a, c1),
                            peers={"NumPy/OpenBLAS": lambda: np.matmul(a, a, out=c2)},
                            ref=lambda: R.gemm(a, a))]


def _tiny_ladder(cfg):
    case = _tiny_gemm(cfg)[0]
    import pykernels.functional as F

    a = np.ones((32, 32), np.float32)
    outs = {v: np.empty_like(a) for v in ("naive", "blocked", "packed")}
    case.op, case.ours = "gemm-ladder", None
    case.variants = {v: (lambda v=v: F.gemm(a, a, outs[v], algo=v)) for v in outs}
    return [case]


def _tiny_relu(cfg):
    x = np.random.default_rng(1).standard_normal(1 << 16, dtype=np.float32)
    y = np.empty_like(x)
    import pykernels.functional as F
    import pykernels.reference as R

    return [bench_main.Case("relu fwd", "256 KiB", "cpu", float(x.size), 8.0 * x.size, "GB/s",
                            lambda: F.relu(x, out=y), ref=lambda: R.relu(x),
                            skipped={"PyTorch CPU": bench_main.TORCH_MISSING})]


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setattr(bench_main, "CPU_BUILDERS",
               {"gemm": _tiny_gemm, "gemm-ladder": _tiny_ladder, "relu": _tiny_relu})
    real_step = alexnet.measure_step
    mp.setattr(alexnet, "measure_step",
               lambda batch, steps, threads, **kw: real_step(2, 1, threads, width=0.0625, hw=63))
    real_ceilings = peak.cpu_ceilings
    mp.setattr(peak, "cpu_ceilings",
               lambda threads, mib=8, repeats=2: real_ceilings(threads, mib=8, repeats=2))
    mp.setattr(peak, "_fma_gflops",
               lambda isa, t, repeats=2, sample_s=0.01, f=peak._fma_gflops: f(isa, t, 2, 0.01))
    try:
        cfg = bench_main.Config(quick=True, threads=1, device="cpu",
                                ops=("gemm", "gemm-ladder", "relu", "alexnet"), repeats=1)
        results = bench_main.run(cfg, show_progress=False)
        out = tmp_path_factory.mktemp("report")
        plots = write_report(results, str(out))
    finally:
        mp.undo()
    return results, out, plots


def test_results_schema(tiny_results):
    results, out, _ = tiny_results
    data = json.loads((out / "results.json").read_text())
    assert set(bench_main.RESULT_KEYS) <= set(data)
    assert data["schema_version"] == bench_main.SCHEMA_VERSION
    assert data["machine"]["version"] == pykernels.__version__
    assert {"cpu_isa", "cpu_count", "cuda_available"} <= set(data["machine"])
    assert data["config"] == {"size": "quick", "threads": 1, "device": "cpu",
                              "ops": ["gemm", "gemm-ladder", "relu", "alexnet"], "repeats": 1}
    cpu = data["ceilings"]["cpu"]
    assert set(cpu["fma_gflops"]) == set(peak.available_isas())
    assert all(v > 0 for per_t in cpu["fma_gflops"].values() for v in per_t.values())
    assert cpu["triad_gbps"]["1"] > 0
    assert data["ceilings"]["gpu"] is None
    assert data["rows"]
    for row in data["rows"]:
        assert set(row) == set(bench_main.ROW_KEYS)
        assert row["seconds"] > 0 and row["rate"] > 0
        assert row["role"] in ("pykernels", "peer")
        assert row["metric"] in ("GFLOP/s", "GB/s")


def test_rows_arithmetic(tiny_results):
    results, _, _ = tiny_results
    rows = results["rows"]
    impls = {(r["op"], r["impl"]) for r in rows}
    assert {("gemm", "pykernels"), ("gemm", "NumPy/OpenBLAS"), ("gemm-ladder", "pykernels naive"),
            ("gemm-ladder", "pykernels packed"), ("relu fwd", "pykernels")} <= impls
    cpu = results["ceilings"]["cpu"]
    for r in rows:
        rate = r["flops"] / r["seconds"] / 1e9 if r["metric"] == "GFLOP/s" else \
            r["bytes"] / r["seconds"] / 1e9
        assert r["rate"] == pytest.approx(rate)
        peak_now = (cpu["fma_gflops"][cpu["isa"]][1] if r["metric"] == "GFLOP/s"
                    else cpu["triad_gbps"][1])
        assert r["of_peak"] == pytest.approx(rate / peak_now)
        assert r["intensity"] == pytest.approx(r["flops"] / r["bytes"])
    gemm = next(r for r in rows if r["op"] == "gemm" and r["impl"] == "pykernels")
    assert gemm["vs_peer"] == pytest.approx(gemm["peer_seconds"] / gemm["seconds"])
    assert gemm["vs_ref"] == pytest.approx(gemm["ref_seconds"] / gemm["seconds"])
    relu = next(r for r in rows if r["op"] == "relu fwd")
    assert relu["vs_peer"] is None and "PyTorch CPU" in relu["skipped_peers"]
    table = main_table_rows(results)
    assert [t["op"] for t in table] == [r["op"] for r in rows if r["role"] == "pykernels"]
    assert "skipped: not installed" in table[-1]["vs peer"]


def test_report_folder(tiny_results):
    results, out, plots = tiny_results
    names = set(os.listdir(out))
    assert {"report.md", "results.json", "roofline.png", "gemm_ladder.png", "speedups.png",
            "alexnet_2012.png"} <= names
    assert plots["cpu_vs_gpu"] == "" and "cpu_vs_gpu.png" not in names
    for png in (n for n in names if n.endswith(".png")):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    for text in ("## Ceilings (measured)", "![roofline](roofline.png)", "literature",
                 "Measured here", "CPU against GPU: omitted", "5-6 days"):
        assert text in md
    rep = results["alexnet"]
    assert rep["cpu"]["batch"] == 2 and rep["gpu"].startswith("not measured")
    assert rep["measured"]["images_per_s"] == pytest.approx(2 / rep["cpu"]["step_seconds"])


# ------------------------------------------------------------------ CLI

def test_cli_option_parsing(capsys):
    assert _parse_threads("1,2") == (1, 2)
    assert _parse_ops("gemm, conv") == ("gemm", "conv")
    for bad in (["bench", "--ops", "bogus"], ["bench", "--quick", "--full"],
                ["bench", "--device", "tpu"], ["bench", "--threads", "0"]):
        with pytest.raises(SystemExit) as exc:
            cli_main(bad)
        assert exc.value.code == 2
    assert cli_main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out
    for suite in ("peak", "gemm", "gemm-ladder", "conv", "conv-memory", "layers", "lstm", "relu",
                  "relu-gpu", "alexnet"):
        assert suite in listed
    assert cli_main(["bench", "no-such-suite"]) == 2


def test_cli_device_cuda_without_gpu_is_refused():
    from pykernels.bench import gpu

    if gpu.usable():
        pytest.skip("a GPU is usable here")
    assert cli_main(["bench", "--device", "cuda", "--no-progress"]) == 2


def test_cli_main_run_prints_table_and_writes_report(tiny_results, tmp_path, monkeypatch,
                                                     capsys):
    results, _, _ = tiny_results
    seen = {}

    def fake_run(cfg, show_progress=True):
        seen["cfg"] = cfg
        return json.loads(json.dumps(results))  # what a run returns, via JSON (str keys)

    monkeypatch.setattr(bench_main, "run", fake_run)
    code = cli_main(["bench", "--quick", "--ops", "gemm,relu", "--threads", "1",
                     "--device", "cpu", "--out", str(tmp_path / "rep"), "--no-progress"])
    assert code == 0
    cfg = seen["cfg"]
    assert (cfg.quick, cfg.full, cfg.threads, cfg.device, cfg.ops) == \
        (True, False, 1, "cpu", ("gemm", "relu"))
    out = capsys.readouterr().out
    assert "vs NumPy ref" in out and "AlexNet training step, measured here" in out
    assert {"report.md", "results.json", "roofline.png"} <= set(os.listdir(tmp_path / "rep"))


def test_alexnet_line_on_gpu_compares_with_the_cpu_step(monkeypatch):
    """The main run's 2012 line when a GPU is usable: GPU images/s at batch
    128 (the faster of auto and all-im2col for the ratio) against the CPU step."""
    from pykernels.bench import gpu_ops

    seen = {}

    def fake_seconds(x, y, width=1.0, repeats=3):
        seen["batch"] = len(x)
        return {"gpu": 0.064, "im2col": 0.128}

    monkeypatch.setattr(gpu_ops, "alexnet_batch", lambda batch, image: ([0] * batch, None))
    monkeypatch.setattr(gpu_ops, "alexnet_gpu_seconds", fake_seconds)
    line = bench_main._alexnet_on_gpu(bench_main.Config(), {"step_seconds": 8.0, "batch": 8})
    assert seen["batch"] == 128
    # 1000 and 2000 images/s; the CPU does 1 image/s, so the best GPU step is 2000x it.
    assert line == ("2000 images/s at batch 128 (1000 with im2col convolutions throughout), "
                    "2000x the CPU step measured here")


def test_training_suite_rows(monkeypatch):
    from pykernels import models
    from pykernels.bench import training

    monkeypatch.setattr(training, "NETWORKS",
                        (("lenet5 (1x32x32)", lambda: models.LeNet5(10, 1, 32), (1, 32, 32), 4),))
    rows = training.run(threads=(1,), repeats=1)
    assert [r["network"] for r in rows] == ["lenet5 (1x32x32)"]
    assert rows[0]["pykernels img/s"] > 0 and rows[0]["fused SGD gain"] > 0
    assert "vs torch" in rows[0]


def test_main_run_sgd_case_runs():
    case, = bench_main.sgd_cases(bench_main.Config(quick=True))
    assert case.op == "sgd step" and case.metric == "GB/s"
    for fn in (case.ours, case.ref, *case.peers.values()):
        fn()
    assert "sgd" in bench_main.OPS and "sgd" in bench_main.CPU_BUILDERS


def test_with_setting_runs_at_the_value_and_restores_even_on_error():
    from pykernels import _cpu
    from pykernels.bench.timing import with_setting

    seen = []
    probe = with_setting(_cpu.conv_shifted_rows, 0,
                         lambda: seen.append(_cpu.conv_shifted_rows(0)))
    assert probe() is None
    assert seen == [0]

    def fail():
        raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        with_setting(_cpu.conv_shifted_rows, 2, fail)()
    assert _cpu.conv_shifted_rows(1) == 1  # restored to the default both times


def test_winograd_sweep_rows_on_the_cpu():
    rows = load_benchmark("winograd_sweep").run(
        repeats=1, device="cpu", threads=1,
        shapes=(("tiny", 3, 5, 3, 1, 9, 2), ("big", 32, 32, 5, 2, 9, 11)))
    for row in rows:
        assert row["threads"] == 1 and row["im2col ms"] > 0 and row["winograd ms"] > 0
    assert [r["auto takes"] for r in rows] == ["im2col"] * 2 + ["winograd"] * 2

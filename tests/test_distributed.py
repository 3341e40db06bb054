"""pykernels.distributed: data-parallel SGD over MPI.

The multi-rank tests launch `mpirun -n 2 python tests/mpi_worker.py ...` (or
the CLI) in a subprocess and skip when mpirun or mpi4py is missing. The rest
runs in this process without initialising MPI (a size-1 fake communicator).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import sys
from pathlib import Path

import numpy as np
import pytest

from pykernels import data, distributed, models, nn, optim
from pykernels.train import train_step

HERE = Path(__file__).resolve().parent
WORKER = HERE / "mpi_worker.py"


# -- launching ---------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _launcher():
    """(command prefix, None) or (None, why the MPI tests skip)."""
    exe = shutil.which("mpirun") or shutil.which("mpiexec")
    if exe is None:
        return None, "mpirun not found (install openmpi-bin)"
    # mpi4py's wheel installs without MPI; importing MPI needs the library.
    probe = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"], capture_output=True,
                           text=True, env=_env(), timeout=60)
    if probe.returncode != 0:
        return None, ("mpi4py is missing or finds no MPI library (pip install "
                      f"'pykernels[mpi]'): {probe.stderr.strip()[-300:]}")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    # Open MPI refuses root and more ranks than cores unless told; never pin
    # ranks to cores on a shared CI machine.
    extra = ["--oversubscribe", "--bind-to", "none"] if "Open MPI" in version else []
    return (exe, *extra), None


def _mpirun():
    command, why = _launcher()
    if command is None:
        pytest.skip(why)
    return list(command)


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", PYTHONUNBUFFERED="1")
    # Containers often forbid the cross-memory-attach shared-memory copy.
    env.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    return env


def mpirun(ranks, *args, timeout=90):
    cmd = [*_mpirun(), "-n", str(ranks), *map(str, args)]
    try:
        # From outside the checkout: `python -m pykernels` would otherwise find
        # the source tree (without the compiled modules) before the install.
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(),
                              cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(cmd)} hung for {timeout} s:\n{exc.stdout}\n{exc.stderr}")


def _show(result):
    return f"rc={result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"


# -- a size-1 communicator, so the single-rank paths run without MPI ----------
class SoloComm:
    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def Abort(self, code):
        self.aborted = code


# -- import and cost model (no MPI) ------------------------------------------
def test_import_pykernels_does_not_need_mpi4py():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import pykernels, pykernels.distributed as d, pykernels.cli\n"
            "assert not d.is_available()\n"
            "try:\n    d.world()\nexcept ImportError as e:\n    print('ok', e)\n")
    # From outside the checkout, so the installed package is imported.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok") and "mpi4py" in out.stdout


def test_ring_allreduce_model_arithmetic():
    # 2(p-1)/p * n*4/B + 2(p-1) alpha, by hand for p = 4, n = 1e6, B = 1e9, alpha = 1e-5:
    # 1.5 * 4e6 / 1e9 + 6e-5 = 6.06e-3
    assert distributed.ring_allreduce_seconds(1e6, 4, 1e9, 1e-5) == pytest.approx(6.06e-3)
    assert distributed.ring_allreduce_seconds(1e6, 1, 1e9, 1e-5) == 0.0
    # The bandwidth term tends to 2 n*4/B as p grows; the latency term grows linearly.
    big = distributed.ring_allreduce_seconds(61e6, 512, 12.5e9, 0.0)
    assert big == pytest.approx(2 * 511 / 512 * 61e6 * 4 / 12.5e9)
    assert distributed.ring_allreduce_seconds(0, 9, 1e9, 2e-6) == pytest.approx(16 * 2e-6)
    with pytest.raises(ValueError, match="ranks"):
        distributed.ring_allreduce_seconds(1, 0, 1e9, 0)


def test_scaling_efficiency_and_table():
    assert distributed.scaling_efficiency(3.0, 1.0) == pytest.approx(0.75)
    assert distributed.scaling_efficiency(3.0, 1.0, overlap=1.0) == 1.0
    assert distributed.scaling_efficiency(1.0, 3.0, overlap=1.0) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="overlap"):
        distributed.scaling_efficiency(1.0, 1.0, overlap=2.0)
    rows = distributed.scaling_table({"m": (1e6, 0.01)}, {"net": 1e9}, ranks=(8, 64),
                                     alpha_s=1e-5)
    assert [r.ranks for r in rows] == [8, 64]
    expected = 0.01 / (0.01 + distributed.ring_allreduce_seconds(1e6, 64, 1e9, 1e-5))
    assert rows[1].efficiency == pytest.approx(expected)


def test_fit_alpha_beta_recovers_the_model():
    alpha, bandwidth, p = 3e-6, 5e9, 2
    sizes = np.array([4e3, 4e4, 4e5, 4e6, 4e7])
    times = [distributed.ring_allreduce_seconds(b / 4, p, bandwidth, alpha) for b in sizes]
    fit_alpha, fit_b = distributed.fit_alpha_beta(sizes, times, p)
    assert fit_alpha == pytest.approx(alpha, rel=1e-6)
    assert fit_b == pytest.approx(bandwidth, rel=1e-6)
    with pytest.raises(ValueError):
        distributed.fit_alpha_beta([1.0], [1.0], 2)


# -- sharding ----------------------------------------------------------------
@pytest.mark.parametrize("n, batch, size", [(100, 64, 2), (97, 10, 3), (13, 5, 4), (7, 7, 7)])
def test_shards_partition_each_global_batch(n, batch, size):
    x = np.arange(n, dtype=np.float32)[:, None]
    y = np.arange(n)
    reference = [yb for _, yb in data.Batches(x, y, batch, seed=3)]
    shards = [list(distributed.ShardedBatches(x, y, batch, r, size, seed=3))
              for r in range(size)]
    assert all(len(s) == len(shards[0]) == len(distributed.ShardedBatches(x, y, batch, 0, size))
               for s in shards)
    for step, parts in enumerate(zip(*shards)):
        joined = np.concatenate([p[1] for p in parts])
        np.testing.assert_array_equal(joined, reference[step])  # same order as one process
        assert {p[2] for p in parts} == {len(reference[step])}
        assert max(len(p[1]) for p in parts) - min(len(p[1]) for p in parts) <= 1
        for xb, yb, _ in parts:
            np.testing.assert_array_equal(xb[:, 0], yb)
    # only a last batch smaller than the rank count is dropped
    assert len(shards[0]) == len(reference) - (1 if 0 < n % batch < size else 0)


def test_sharded_batches_reject_bad_arguments():
    x, y = np.zeros((8, 1), np.float32), np.zeros(8)
    with pytest.raises(ValueError, match="rank"):
        distributed.ShardedBatches(x, y, 4, 2, 2)
    with pytest.raises(ValueError, match="batch_size"):
        distributed.ShardedBatches(x, y, 1, 0, 2)
    with pytest.raises(ValueError, match="samples"):
        distributed.ShardedBatches(x, y[:5], 4, 0, 2)


# -- buckets and sync BN on one rank (no MPI) --------------------------------
def test_gradient_buckets_are_views_and_survive_rebinding():
    nn.manual_seed(0)
    model = models.LeNet5(10, 1, 8)
    params = model.parameters()
    before = [p.grad.copy() + i for i, p in enumerate(params)]
    for p, g in zip(params, before):
        p.grad[...] = g
    buckets = distributed.GradientBuckets(params, distributed._Collectives(SoloComm()),
                                          bucket_bytes=20_000)
    assert len(buckets.buckets) > 2
    assert buckets.nbytes == sum(p.data.nbytes for p in params)
    for p, g in zip(params, before):
        np.testing.assert_array_equal(p.grad, g)   # values kept
        assert any(np.shares_memory(p.grad, b) for b in buckets.buckets)
    params[3].grad = np.full(params[3].data.shape, 5.0, np.float32)  # replaced array
    buckets.allreduce_mean()
    assert any(np.shares_memory(params[3].grad, b) for b in buckets.buckets)
    np.testing.assert_array_equal(params[3].grad, 5.0)


def _bn_net():
    nn.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 36, 6), nn.BatchNorm1d(6))


def test_sync_batchnorm_on_one_rank_equals_batchnorm(rng):
    plain, synced = _bn_net(), distributed.convert_sync_batchnorm(_bn_net(), SoloComm())
    kinds = [type(m).__name__ for m in synced]
    assert kinds[1] == "SyncBatchNorm2d" and kinds[5] == "SyncBatchNorm1d"
    x = rng.standard_normal((5, 1, 6, 6)).astype(np.float32) * 3 + 1
    dy = rng.standard_normal((5, 6)).astype(np.float32)
    y0, y1 = plain(x), synced(x)
    np.testing.assert_allclose(y1, y0, rtol=1e-4, atol=1e-5)
    dx0, dx1 = plain.backward(dy), synced.backward(dy)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-4, atol=1e-5)
    for (name, p0), (_, p1) in zip(plain.named_parameters(), synced.named_parameters()):
        np.testing.assert_allclose(p1.grad, p0.grad, rtol=1e-4, atol=1e-5, err_msg=name)
    for (name, b0), (_, b1) in zip(plain.named_buffers(), synced.named_buffers()):
        np.testing.assert_allclose(b1, b0, rtol=1e-5, atol=1e-6, err_msg=name)
    plain.eval(), synced.eval()
    np.testing.assert_allclose(synced(x), plain(x), rtol=1e-4, atol=1e-5)


def test_convert_sync_batchnorm_keeps_parameters_and_state_dict():
    model = models.ResNet20(10, in_channels=1, width=4, blocks_per_stage=1)
    params_before = model.parameters()
    keys_before = list(model.state_dict())
    distributed.convert_sync_batchnorm(model, SoloComm())
    assert all(a is b for a, b in zip(params_before, model.parameters()))
    assert list(model.state_dict()) == keys_before
    assert not any(type(m) is nn.BatchNorm2d for m in _walk(model))


def _walk(module):
    yield module
    for child in module._modules.values():
        if child is not None:
            yield from _walk(child)


def test_data_parallel_on_one_rank_equals_train_step(rng):
    x, y = data.load_digits()
    x = ((x - 8) / 8).astype(np.float32)[:64, None]
    y = y[:64]
    results = []
    for parallel in (False, True):
        model = _bn_net_for_digits()
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        dp = distributed.DataParallel(model, SoloComm(), sync_bn=True) if parallel else None
        for _ in range(3):
            if dp is None:
                train_step(model, nn.CrossEntropyLoss(), opt, x, y)
            else:
                dp.train_step(nn.CrossEntropyLoss(), opt, x, y)
        results.append(model.state_dict())
    for key in results[0]:
        np.testing.assert_allclose(results[1][key], results[0][key], rtol=1e-4, atol=1e-5,
                                   err_msg=key)


def _bn_net_for_digits():
    nn.manual_seed(2)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(256, 10))


def test_run_or_abort_aborts_on_error(capsys):
    comm = SoloComm()

    def boom():
        raise KeyError("lost")

    assert distributed.run_or_abort(boom, comm) == 1
    assert comm.aborted == 1
    assert "rank 0 of 1 failed (KeyError: 'lost')" in capsys.readouterr().err
    assert distributed.run_or_abort(lambda: 7, comm) == 7


def test_checkpoint_round_trip_resumes_identically(tmp_path, threads):
    """fit for 3 epochs == fit that stops after 2 (checkpoint) and resumes."""
    threads(1, _checkpoint_round_trip, tmp_path)  # one thread: fast on a loaded machine


def _checkpoint_round_trip(tmp_path):
    from pykernels import train

    ckpt = tmp_path / "c.npz"
    straight, _, _ = train.fit("lenet", epochs=3, progress=False)
    saved_epochs = []

    class Stop(Exception):
        pass

    real_save = distributed.save_checkpoint

    def save_then_stop(path, name, epoch, *rest):
        real_save(path, name, epoch, *rest)
        saved_epochs.append(epoch)
        if epoch == 2:
            raise Stop

    distributed.save_checkpoint = save_then_stop
    try:
        with pytest.raises(Stop):
            train.fit("lenet", epochs=3, progress=False, checkpoint=str(ckpt))
    finally:
        distributed.save_checkpoint = real_save
    assert saved_epochs == [1, 2]
    report = {}
    resumed, _, _ = train.fit("lenet", epochs=3, progress=False, checkpoint=str(ckpt),
                              resume=True, report=report)
    assert len(report["epoch_seconds"]) == 1  # only epoch 3 ran
    for key, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value, err_msg=key)
    with pytest.raises(ValueError, match="lenet"):
        train.fit("resnet20", epochs=3, progress=False, checkpoint=str(ckpt), resume=True)


# -- two ranks under mpirun ---------------------------------------------------
def test_two_ranks_match_one_process_on_the_whole_batch(tmp_path):
    sys.path.insert(0, str(HERE))
    import mpi_worker as worker

    result = mpirun(2, sys.executable, WORKER, "equivalence", tmp_path)
    assert result.returncode == 0, _show(result)
    x, y = worker.digits()
    for name, (kind, batch, _) in worker.CASES.items():
        model = worker.build(kind)
        initial = model.state_dict()
        opt = worker.optimizer_for(model)
        loss_fn = nn.CrossEntropyLoss()
        for step, (xb, yb) in enumerate(data.Batches(x, y, batch, seed=worker.SEED)):
            if step == worker.STEPS:
                break
            train_step(model, loss_fn, opt, xb, yb)
        reference = model.state_dict()
        ranks = [np.load(tmp_path / f"{name}_rank{r}.npz") for r in (0, 1)]
        for key, value in reference.items():
            if name == "bn_local" and "running" in key:
                continue  # per-rank batch norm keeps per-rank running statistics
            np.testing.assert_array_equal(ranks[1][key], ranks[0][key], err_msg=key)
        worst = max(float(np.max(np.abs(ranks[0][k] - v))) for k, v in reference.items())
        moved = max(float(np.max(np.abs(initial[k] - v))) for k, v in reference.items())
        assert moved > 1e-2, (name, moved)
        if name == "bn_local":
            # per-rank statistics are a different computation: the check has teeth
            assert worst > 1e-3, worst
        else:
            for key, value in reference.items():
                np.testing.assert_allclose(ranks[0][key], value, rtol=1e-4, atol=2e-6,
                                           err_msg=f"{name}: {key}")


def test_a_rank_that_dies_ends_the_job():
    result = mpirun(2, sys.executable, WORKER, "die", timeout=60)
    assert result.returncode != 0, _show(result)


def test_failing_rank_aborts_all_and_run_resumes_from_checkpoint(tmp_path):
    args = ["train", "lenet", "--data", "digits", "--distributed", "--epochs", "3",
            "--seed", "5"]
    steps_per_epoch = len(distributed.ShardedBatches(np.zeros((1437, 1)), np.zeros(1437), 32,
                                                     0, 2))
    crashed = mpirun(2, sys.executable, WORKER, "crash-at", 2 * steps_per_epoch + 3, "--",
                     *args, "--out", tmp_path / "a.npz")
    assert crashed.returncode != 0, _show(crashed)
    assert "rank 1 of 2 failed (RuntimeError: injected failure" in crashed.stderr, _show(crashed)
    assert not (tmp_path / "a.npz").exists()
    with np.load(tmp_path / "a.ckpt.npz") as ckpt:
        assert int(ckpt["meta.epoch"]) == 2

    resumed = mpirun(2, sys.executable, "-m", "pykernels", *args, "--out", tmp_path / "a.npz",
                     "--resume")
    assert resumed.returncode == 0, _show(resumed)
    assert "epoch 1/3" not in resumed.stderr and "2 ranks x 1 threads" in resumed.stdout
    straight = mpirun(2, sys.executable, "-m", "pykernels", *args, "--out", tmp_path / "b.npz")
    assert straight.returncode == 0, _show(straight)
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    accuracy = float(straight.stdout.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.8, straight.stdout

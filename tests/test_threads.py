"""Thread safety: Python threads calling the kernels at once (the bindings
release the GIL) get bitwise the results of serial calls, and pykernels'
OpenMP pool meeting NumPy's BLAS threads (or a fork) neither deadlocks nor
blows up. The mixing tests run in a child process with a timeout, so a
deadlock fails the test instead of hanging pytest.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pykernels
import pykernels.functional as F
from helpers import random_f32

N_THREADS = 8


def _workload(rng):
    """(name, thunk) pairs over every kind of kernel, big enough that the
    calls overlap in time (each one releases the GIL for a while)."""
    x = random_f32(rng, (4, 8, 20, 20))
    w = random_f32(rng, (12, 8, 3, 3))
    dy = random_f32(rng, (4, 12, 10, 10))
    a, b = random_f32(rng, (96, 80)), random_f32(rng, (80, 112))
    seq = random_f32(rng, (6, 4, 16))
    h0, c0 = random_f32(rng, (4, 24)), random_f32(rng, (4, 24))
    w_ih, w_hh = random_f32(rng, (96, 16), -0.3, 0.3), random_f32(rng, (96, 24), -0.3, 0.3)
    logits, labels = random_f32(rng, (64, 10)), rng.integers(0, 10, 64)
    _, idx = F.max_pool2d(x, 3, 2, 1)
    return [
        ("relu", lambda: F.relu(x)),
        ("gemm", lambda: F.gemm(a, b)),
        ("gemm_t", lambda: F.gemm(b, a, trans_a=True, trans_b=True)),
        ("linear", lambda: F.linear(a, b.T.copy())),
        ("conv2d", lambda: F.conv2d(x, w, None, 2, 1)),
        ("conv2d_backward", lambda: F.conv2d_backward(dy, x, w, 2, 1)),
        ("im2col", lambda: F.im2col(x, 3, 1, 1)),
        ("col2im", lambda: F.col2im(F.im2col(x, 3, 1, 1), x.shape, 3, 1, 1)),
        ("max_pool2d", lambda: F.max_pool2d(x, 3, 2, 1)),
        ("max_pool2d_backward", lambda: F.max_pool2d_backward(dy[:, :8], idx, x.shape)),
        ("avg_pool2d", lambda: F.avg_pool2d(x, 2)),
        ("adaptive_avg_pool2d", lambda: F.adaptive_avg_pool2d(x, 3)),
        ("batch_norm", lambda: F.batch_norm(x, None, None, None, None, True)),
        ("dropout", lambda: F.dropout(x, 0.3, seed=11)),
        ("cross_entropy", lambda: F.cross_entropy(logits, labels)),
        ("lstm", lambda: F.lstm(seq, h0, c0, w_ih, w_hh)[:3]),
    ]


def _flatten(result):
    if isinstance(result, tuple):
        return [r for r in result if isinstance(r, np.ndarray) or np.isscalar(r)]
    return [result]


def test_eight_threads_equal_serial(rng):
    work = _workload(rng)
    serial = {name: _flatten(fn()) for name, fn in work}
    rounds = 3
    jobs = [(name, fn) for _ in range(rounds) for name, fn in work] * 2
    started = threading.Barrier(N_THREADS)

    def run(job):
        name, fn = job
        return name, _flatten(fn())

    def first(job):  # all 8 threads enter the kernels together at least once
        started.wait(timeout=30)
        return run(job)

    with ThreadPoolExecutor(N_THREADS) as pool:
        results = list(pool.map(first, jobs[:N_THREADS])) + list(pool.map(run, jobs[N_THREADS:]))
    assert len(results) == len(jobs)
    for name, got in results:
        for g, s in zip(got, serial[name]):
            np.testing.assert_array_equal(g, s, err_msg=f"{name} differs under 8 threads")


def test_threads_each_with_own_thread_count(rng):
    """OpenMP thread counts are per calling thread: threads asking for 1 and
    for 2 OpenMP threads at once still all get the serial (bitwise) answer."""
    work = _workload(rng)
    serial = {name: _flatten(fn()) for name, fn in work}

    def run(k):
        pykernels.set_num_threads(1 + k % 2)
        assert pykernels.get_num_threads() == 1 + k % 2
        return [(name, _flatten(fn())) for name, fn in work]

    with ThreadPoolExecutor(N_THREADS) as pool:
        for results in pool.map(run, range(N_THREADS)):
            for name, got in results:
                for g, s in zip(got, serial[name]):
                    np.testing.assert_array_equal(g, s, err_msg=name)


def test_gil_is_released_during_kernels(rng):
    """A pure-Python thread keeps running while another thread is inside a
    long gemm: the binding released the GIL."""
    a, b = random_f32(rng, (512, 512)), random_f32(rng, (512, 512))
    ticks, done = [0], threading.Event()

    def spin():
        while not done.is_set():
            ticks[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        before = ticks[0]
        t0 = time.perf_counter()
        for _ in range(2):
            F.gemm(a, b, algo="naive")  # slow on purpose: stays inside C++ for a while
        elapsed = time.perf_counter() - t0
        during = ticks[0] - before
    finally:
        done.set()
        t.join()
    assert elapsed > 0.02, "gemm too quick to tell"
    assert during > 1000, f"the Python thread ran only {during} loops in {elapsed:.2f} s"


_MIX_CHILD = textwrap.dedent("""
    import sys, threading, time
    import numpy as np
    import pykernels.functional as F

    rng = np.random.default_rng(5)
    a = rng.standard_normal((256, 256)).astype(np.float32)
    b = rng.standard_normal((256, 256)).astype(np.float32)
    x = rng.standard_normal((4, 16, 24, 24)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    want = F.gemm(a, b)
    want_conv = F.conv2d(x, w, padding=1)
    reps = int(sys.argv[1])

    def ours():
        for _ in range(reps):
            assert np.array_equal(F.gemm(a, b), want)
            assert np.array_equal(F.conv2d(x, w, padding=1), want_conv)

    def numpys():
        for _ in range(reps):
            a @ b            # OpenBLAS (or whatever NumPy links) with its own threads
            np.linalg.svd(a[:64, :64])

    t0 = time.perf_counter(); ours(); numpys(); solo = time.perf_counter() - t0
    threads = [threading.Thread(target=f) for f in (ours, numpys) * 4]
    t0 = time.perf_counter()
    for t in threads: t.start()
    for t in threads: t.join()
    mixed = time.perf_counter() - t0
    print(f"solo {solo:.3f} s, 8 threads mixed (4x the work) {mixed:.3f} s")
    # 4x the work on the same cores: a spin-wait blow-up would be tens of times slower
    assert mixed < 15 * 4 * solo + 2.0, (solo, mixed)
""")


@pytest.mark.parametrize("omp_threads", ["1", "2", "4"])
def test_openmp_and_numpy_blas_threads_mix(omp_threads):
    env = dict(os.environ, OMP_NUM_THREADS=omp_threads)
    env.pop("OPENBLAS_NUM_THREADS", None)
    proc = subprocess.run([sys.executable, "-c", _MIX_CHILD, "6"], cwd=tempfile.gettempdir(), env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    print(proc.stdout.strip())


_FORK_CHILD = textwrap.dedent("""
    import multiprocessing as mp
    import numpy as np
    import pykernels.functional as F

    def work(_):
        a = np.ones((200, 200), np.float32)
        return float(F.gemm(a, a)[0, 0]) + float(F.conv2d(np.ones((2, 4, 9, 9), np.float32),
                                                         np.ones((4, 4, 3, 3), np.float32))[0, 0, 0, 0])

    if __name__ == "__main__":
        work(0)  # the parent's OpenMP pool exists before the fork
        with mp.get_context("fork").Pool(2) as pool:
            print(pool.map(work, range(4)))
""")


def test_fork_after_openmp_does_not_hang(tmp_path):
    script = tmp_path / "fork_child.py"
    script.write_text(_FORK_CHILD)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == str([200.0 + 36.0] * 4)

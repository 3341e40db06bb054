"""The installed package: info, threads, instruction sets, and the wheel."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

import pykernels
from pykernels import _cpu

ROOT = Path(__file__).resolve().parents[1]
# Child interpreters start outside the checkout: `python -c` puts the working
# directory first on sys.path, where the source tree (without the compiled
# modules) would shadow the installed package.
OUTSIDE = tempfile.gettempdir()


def run_python(code, env=None, **kwargs):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, check=True, cwd=OUTSIDE, **kwargs).stdout


def test_info_reports_the_facts(capsys):
    pykernels.info()
    text = capsys.readouterr().out
    assert f"pykernels {pykernels.__version__}" in text
    assert f"CPU instruction set: {pykernels.get_isa()}" in text
    assert f"OpenMP threads: {pykernels.get_num_threads()}" in text
    assert re.search(r"CUDA module built: (yes|no)", text)
    facts = pykernels.build_info()
    assert facts["cuda_built"] == pykernels.cuda.is_built()
    if pykernels.cuda.is_available():
        assert "compute capability" in text
    else:
        assert "GPU: none usable" in text


@pytest.mark.parametrize("argv", [["-m", "pykernels", "info"]])
def test_info_from_the_command_line(argv):
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=True,
                         cwd=OUTSIDE)
    assert "CPU instruction set:" in out.stdout
    script = shutil.which("pykernels", path=os.path.dirname(sys.executable))
    if script:
        out2 = subprocess.run([script, "info"], capture_output=True, text=True, check=True,
                              cwd=OUTSIDE)
        assert out2.stdout.splitlines()[0] == out.stdout.splitlines()[0]


def test_import_without_gpu_reports_unavailable():
    if pykernels.cuda.device_count() > 0:
        pytest.skip("a GPU is usable here")
    assert pykernels.cuda.is_available() is False


def test_set_and_get_num_threads():
    before = pykernels.get_num_threads()
    try:
        pykernels.set_num_threads(1)
        assert pykernels.get_num_threads() == 1
        pykernels.set_num_threads(3)
        assert pykernels.get_num_threads() == 3
    finally:
        pykernels.set_num_threads(before)


def test_omp_num_threads_is_honoured():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    assert run_python("import pykernels; print(pykernels.get_num_threads())", env=env).strip() == "1"
    env["OMP_NUM_THREADS"] = "3"
    assert run_python("import pykernels; print(pykernels.get_num_threads())", env=env).strip() == "3"


def test_threadpoolctl_sees_and_limits_our_openmp_pool():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    cpu_lib = os.path.realpath(_cpu.__file__)
    # Which OpenMP runtime our module links is what threadpoolctl must find.
    needed = subprocess.run(["ldd", cpu_lib], capture_output=True, text=True).stdout
    omp_lib = next(line.split()[0] for line in needed.splitlines() if "gomp" in line or "omp" in line)
    pools = threadpoolctl.threadpool_info()
    ours = [p for p in pools if p["user_api"] == "openmp" and
            os.path.basename(p["filepath"]).split(".so")[0] == omp_lib.split(".so")[0]]
    assert ours, f"threadpoolctl does not list {omp_lib}: {pools}"
    before = pykernels.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert pykernels.get_num_threads() == 1
    assert pykernels.get_num_threads() == before


def test_every_supported_isa_can_be_selected():
    order = ["generic", "avx2", "avx512"]
    best = _cpu.detected_isa()
    before = pykernels.get_isa()
    try:
        for name in order[: order.index(best) + 1]:
            pykernels.set_isa(name)
            assert pykernels.get_isa() == name
        for name in order[order.index(best) + 1:]:
            with pytest.raises(ValueError, match="not supported"):
                pykernels.set_isa(name)
    finally:
        pykernels.set_isa(before)


def test_pykernels_isa_environment_lowers_the_isa():
    env = dict(os.environ, PYKERNELS_ISA="generic")
    assert run_python("import pykernels; print(pykernels.get_isa())", env=env).strip() == "generic"


def test_module_not_built_for_the_build_machine():
    # A default build must not carry -march=native: the generic objects must not
    # need AVX. Checked by running the generic path with the ISA forced down.
    env = dict(os.environ, PYKERNELS_ISA="generic")
    out = run_python("""
        import numpy as np, pykernels.functional as F
        print(F.relu(np.array([-1.0, 2.0], np.float32)).tolist())
    """, env=env)
    assert out.strip() == "[0.0, 2.0]"
    assert "-march=native" not in (ROOT / "CMakeLists.txt").read_text()


@pytest.mark.slow
def test_wheel_repairs_and_works_in_a_fresh_environment(tmp_path):
    """pip wheel -> auditwheel repair -> brand-new venv -> import, relu, info,
    with no CUDA toolkit on PATH or the library path."""
    if not (ROOT / "pyproject.toml").exists():
        pytest.skip("not running from a source checkout")
    pip = [sys.executable, "-m", "pip"]
    dist, wheelhouse = tmp_path / "dist", tmp_path / "wheelhouse"
    subprocess.run([*pip, "wheel", str(ROOT), "--no-deps", "-w", str(dist)], check=True,
                   capture_output=True, text=True)
    (wheel,) = dist.glob("pykernels-*.whl")
    auditwheel = [sys.executable, "-m", "auditwheel"]
    repaired = subprocess.run([*auditwheel, "repair", str(wheel), "-w", str(wheelhouse)],
                              capture_output=True, text=True)
    assert repaired.returncode == 0, repaired.stderr
    (fixed,) = wheelhouse.glob("pykernels-*manylinux*.whl")
    shown = subprocess.run([*auditwheel, "show", str(fixed)], capture_output=True, text=True)
    assert "libcudart" not in shown.stdout  # cudart is static: only the driver is needed
    print(shown.stdout)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    vpy = venv / "bin" / "python"
    subprocess.run([str(vpy), "-m", "pip", "install", "-q", str(fixed)], check=True,
                   capture_output=True, text=True)
    clean_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    code = textwrap.dedent("""
        import numpy as np, pykernels, pykernels.functional as F
        x = np.array([-2.0, -0.0, 3.0, np.nan], np.float32)
        y = F.relu(x)
        assert np.array_equal(y, [0.0, -0.0, 3.0, np.nan], equal_nan=True), y
        assert not pykernels.cuda.is_available()
        pykernels.info()
        print("fresh-venv OK", pykernels.__file__)
    """)
    out = subprocess.run([str(vpy), "-c", code], env=clean_env, capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "fresh-venv OK" in out.stdout and str(venv) in out.stdout
    cli = subprocess.run([str(venv / "bin" / "pykernels"), "info"], env=clean_env,
                         capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode == 0 and "CPU instruction set" in cli.stdout
    print(out.stdout)

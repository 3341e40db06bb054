"""Bad input raises a Python exception that names the argument; never a crash."""

import numpy as np
import pytest

import pykernels
import pykernels.functional as F
from pykernels import _cpu


class FakeCupyArray:
    """Looks like a CuPy array to pykernels' type checks, without needing CuPy."""

    __module__ = "cupy._core.core"
    dtype = np.dtype(np.float32)
    shape = (4,)
    size = 4

    class flags:
        c_contiguous = True

    __cuda_array_interface__ = {"shape": (4,), "typestr": "<f4", "data": (0, False), "version": 3}


@pytest.mark.parametrize("bad", [[1.0, 2.0], 3.0, None, "x", memoryview(b"abcd")])
def test_not_an_array_is_type_error(bad):
    with pytest.raises(TypeError, match="x must be a numpy.ndarray, a cupy.ndarray or an object with __cuda_array_interface__"):
        F.relu(bad)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.bool_, np.complex64])
def test_wrong_dtype_says_how_to_cast(dtype):
    with pytest.raises(TypeError, match=r"x has dtype .*astype\(numpy.float32\)"):
        F.relu(np.ones(3, dtype=dtype))


def test_backward_wrong_dtype_names_argument():
    with pytest.raises(TypeError, match="y has dtype float64"):
        F.relu_backward(np.ones(3, np.float32), np.ones(3, np.float64))


def test_mixed_numpy_and_cupy_is_type_error():
    with pytest.raises(TypeError, match=r"all be NumPy \(CPU\) or all CuPy \(GPU\), got a mix \(dy: NumPy, y: CuPy\)"):
        F.relu_backward(np.ones(4, np.float32), FakeCupyArray())


@pytest.mark.skipif(pykernels.cuda.is_available(), reason="needs a machine without a usable GPU")
def test_cupy_array_without_usable_gpu_is_clear_error():
    with pytest.raises(RuntimeError, match="CuPy array was passed but"):
        F.relu(FakeCupyArray())


def test_out_argument_checked():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"out has shape \(3, 2\), expected \(2, 3\)"):
        F.relu(x, out=np.empty((3, 2), np.float32))
    with pytest.raises(TypeError, match="out has dtype float64"):
        F.relu(x, out=np.empty((2, 3), np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        F.relu(x, out=np.empty((3, 2), np.float32).T)
    frozen = np.empty((2, 3), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        F.relu(x, out=frozen)


def test_raw_bindings_refuse_bad_buffers():
    # The last line of defence: _cpu itself must not trust its caller.
    with pytest.raises(TypeError, match="float32"):
        _cpu.relu_forward(np.ones(4), np.empty(4, np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _cpu.relu_forward(np.ones((4, 4), np.float32).T, np.empty(16, np.float32))
    with pytest.raises(ValueError, match="elements"):
        _cpu.relu_forward(np.ones(4, np.float32), np.empty(5, np.float32))
    with pytest.raises(ValueError, match="read-only"):
        out = np.empty(4, np.float32)
        out.flags.writeable = False
        _cpu.relu_forward(np.ones(4, np.float32), out)


def test_thread_and_isa_arguments_checked():
    with pytest.raises(ValueError, match=">= 1"):
        pykernels.set_num_threads(0)
    with pytest.raises(TypeError):
        pykernels.set_num_threads(1.5)
    with pytest.raises(ValueError, match="unknown isa"):
        pykernels.set_isa("sse9")


def test_cuda_error_is_runtime_error():
    assert issubclass(pykernels.CudaError, RuntimeError)

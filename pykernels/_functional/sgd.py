"""One SGD step, in place, on the CPU and the GPU.

sgd_step(param, grad, velocity=None, *, lr, momentum=0.0, dampening=0.0,
         weight_decay=0.0, nesterov=False, first_step=False)
applies torch.optim.SGD's update to `param` (and `velocity`) in one pass:
    d = grad + weight_decay * param
    velocity = d on the first step, else momentum * velocity + (1 - dampening) * d
    d = d + momentum * velocity (Nesterov) or velocity
    param -= lr * d
`velocity` is needed when momentum != 0; with first_step=True its contents are
ignored and overwritten, as torch creates its momentum buffer on the first
step. Every operation is rounded to float32 alone, so the CPU, the GPU and
pykernels.reference.sgd_step agree bit for bit (PyTorch's CPU kernels may fuse
a multiply-add: within an ulp or so of it).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._backend import accepts_cuda_interface, array_module, cpu, current_stream_ptr, require_cuda
from .._validate import device_of, float32_contiguous, output_array, require_float32, same_shape

__all__ = ["sgd_step"]


_F32 = np.dtype(np.float32)


def _real(value, name: str) -> float:
    if type(value) is float:  # the common case, without the ABC checks below
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


# Doubles from here on round to float32 infinity.
_FLOAT32_OVERFLOW = 3.4028235677973366e38


def _as_float32(value: float) -> float:
    """value rounded to float32 (inf past its range), without NumPy's
    overflow warning or the cost of an errstate block on every step."""
    if not abs(value) < _FLOAT32_OVERFLOW:
        return value if math.isnan(value) else math.copysign(math.inf, value)
    return float(np.float32(value))


def _hyper(value, name: str, minimum: float) -> float:
    """`value` checked, as the float32 the kernel computes with (so a momentum
    too small for float32 counts as 0 here and in the kernel alike)."""
    value = _real(value, name)
    rounded = _as_float32(value)
    if not math.isfinite(rounded) or value < minimum:
        raise ValueError(f"{name} must be a finite float32 number >= {minimum}, got {value}")
    return rounded


def _dampening(value) -> float:
    """Kept in double: the kernel rounds 1 - dampening once, as NumPy does."""
    value = _real(value, "dampening")
    if not (math.isfinite(value) and math.isfinite(_as_float32(1.0 - value))):
        raise ValueError(f"dampening must be finite (1 - dampening a float32), got {value}")
    return value


def _named(param, grad, velocity) -> dict:
    named = {"param": param, "grad": grad}
    if velocity is not None:
        named["velocity"] = velocity
    return named


def _check_no_overlap(arrays: dict) -> None:
    """The kernel reads one element of each array and writes param's (and
    velocity's): arrays sharing memory would see each other's writes."""
    names = list(arrays)
    xp = array_module(arrays["param"])
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if xp.may_share_memory(arrays[first], arrays[second]):
                raise ValueError(f"{first} and {second} must not share memory")


def _plain_host(a, writable: bool = False) -> bool:
    """A NumPy float32 C-contiguous array (and writable when asked): the case
    the optimiser passes, checked cheaply."""
    return (type(a) is np.ndarray and a.dtype == _F32 and a.flags.c_contiguous
            and (not writable or a.flags.writeable))


def _plain_host_arrays(param, grad, velocity) -> bool:
    """A step calls this once per parameter, often on small arrays: plain host
    arrays of one shape, the written ones writable."""
    return (_plain_host(param, True) and _plain_host(grad) and grad.shape == param.shape
            and (velocity is None or (_plain_host(velocity, True)
                                      and velocity.shape == param.shape)))


def _checked_device(param, grad, velocity) -> str:
    """The general case: one device, float32, one shape, param and velocity
    C-contiguous and writable (they are updated in place)."""
    device = device_of(**_named(param, grad, velocity))
    output_array(param, param.shape, device, "param")
    require_float32(grad, "grad")
    same_shape(param, grad, "param", "grad")
    if velocity is not None:
        output_array(velocity, param.shape, device, "velocity")
    return device


def checked_hyperparameters(lr, momentum, dampening, weight_decay, nesterov):
    """(lr, momentum, dampening, weight_decay) as the kernel uses them, or a
    TypeError / ValueError naming the offender; optim.SGD checks its settings
    with this when it is built."""
    lr = _hyper(lr, "lr", 0.0)
    momentum = _hyper(momentum, "momentum", 0.0)
    dampening = _dampening(dampening)
    weight_decay = _hyper(weight_decay, "weight_decay", 0.0)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
    return lr, momentum, dampening, weight_decay


@accepts_cuda_interface
def sgd_step(param, grad, velocity=None, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, first_step=False):
    """One SGD step on `param` (and `velocity`) in place; see the module doc."""
    lr, momentum, dampening, weight_decay = checked_hyperparameters(
        lr, momentum, dampening, weight_decay, nesterov)
    if momentum and velocity is None:
        raise ValueError(f"momentum={momentum} needs a velocity array of param's shape")
    velocity = velocity if momentum else None  # not read without momentum
    device = "cpu" if _plain_host_arrays(param, grad, velocity) else _checked_device(
        param, grad, velocity)
    _check_no_overlap(_named(param, grad, velocity))
    grad = float32_contiguous(grad, "grad")
    hyper = (lr, momentum, dampening, weight_decay, bool(nesterov), bool(first_step))
    if device == "cpu":
        cpu().sgd_step(param, grad, velocity, *hyper)
    else:
        require_cuda().sgd_step(param.data.ptr, grad.data.ptr,
                                0 if velocity is None else velocity.data.ptr, param.size, *hyper,
                                current_stream_ptr())


def zero_fill(x) -> None:
    """x[...] = 0 in place: on every thread for a plain NumPy float32 array
    (NumPy's fill runs on one core: 37 ms of AlexNet's 0.39 s training step
    at 2 threads), as x[...] = 0 for anything else."""
    if _plain_host(x, True):
        cpu().zero_fill(x)
    else:
        x[...] = 0

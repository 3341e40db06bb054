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


def _hyper(value, name: str, minimum=None) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{name} must be a finite number{bound}, got {value}")
    return value


def _check_no_overlap(arrays: dict) -> None:
    """The kernel reads one element of each array and writes param's (and
    velocity's): arrays sharing memory would see each other's writes."""
    names = [n for n, a in arrays.items() if a is not None]
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            a, b = arrays[first], arrays[second]
            if array_module(a).may_share_memory(a, b):
                raise ValueError(f"{first} and {second} must not share memory")


@accepts_cuda_interface
def sgd_step(param, grad, velocity=None, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, first_step=False):
    """One SGD step on `param` (and `velocity`) in place; see the module doc."""
    lr = _hyper(lr, "lr", 0.0)
    momentum = _hyper(momentum, "momentum", 0.0)
    dampening = _hyper(dampening, "dampening")
    weight_decay = _hyper(weight_decay, "weight_decay", 0.0)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
    if momentum and velocity is None:
        raise ValueError(f"momentum={momentum} needs a velocity array of param's shape")
    arrays = {"param": param, "grad": grad}
    if momentum:
        arrays["velocity"] = velocity
    device = device_of(**arrays)
    output_array(param, param.shape, device, "param")
    require_float32(grad, "grad")
    same_shape(param, grad, "param", "grad")
    if momentum:
        output_array(velocity, param.shape, device, "velocity")
    _check_no_overlap(arrays)
    grad = float32_contiguous(grad, "grad")
    hyper = (lr, momentum, dampening, weight_decay, bool(nesterov), bool(first_step))
    if device == "cpu":
        cpu().sgd_step(param, grad, velocity if momentum else None, *hyper)
    else:
        require_cuda().sgd_step(param.data.ptr, grad.data.ptr,
                                velocity.data.ptr if momentum else 0, param.size, *hyper,
                                current_stream_ptr())

"""2-D convolution (NCHW activations, OIHW weights) and the public im2col /
col2im, on the CPU kernels of csrc/conv.cpp (im2col + the packed SGEMM).

Scratch memory is bounded per chunk of S images, never by the batch, with
S = min(ceil(1024 / (OH*OW)), max(1, N // 4)), capped at 2**18 // (C*kh*kw*OH*OW)
when one image's columns fit in those 2**18 floats (so a chunk's stay in cache),
1 for conv1-sized outputs and for 1x1 stride-1 unpadded convolutions (which use
the input in place). Forward allocates team * (C*kh*kw * S*OH*OW + O * S*OH*OW
[S > 1]) floats, backward that plus team * weight.size, and each thread one
padded input channel when the stride is split into phases (column stride > 1
and output width >= 32; team = the OpenMP threads when they split the batch,
else 1). AlexNet conv1 forward: 4.4 MB per thread at any batch size.
`conv2d_workspace_bytes` gives the exact figure for a call.

CuPy arrays run on the GPU kernels of cuda/conv.cu (im2col + the pykernels
GPU SGEMM), with the same validation. Their workspace comes from CuPy's
memory pool, bounded by a cap (2**28 floats = 1 GiB, or a sixteenth of the
memory of a GPU smaller than 16 GiB, unless `_gpu_workspace_cap` says
otherwise): (C*kh*kw [not 1x1 stride-1 unpadded] + O [chunks of several
images]) * S * OH*OW floats for chunks of S images, S as large as the cap
allows (at least 1, at most N), so it exceeds the cap only when one image's
columns alone do. Where the pool cannot supply it, a quarter of that size is
tried, down to one image's columns, before OutOfMemoryError is raised.

`algo` picks the algorithm: "im2col" (the above), "winograd" (F(4x4, r x r)
for stride-1, undilated 3x3 and 5x5 kernels with padding <= r - 1: transforms
around batched SGEMMs, cuda/conv_winograd.cu and csrc/conv_winograd.cpp, the
per-tile math shared in csrc/include/pykernels/winograd.h,
pykernels.reference.winograd as the NumPy twin), or "auto". On the CPU "auto"
takes Winograd for 5x5 kernels with at least 32 channels per group in and out
and for 3x3 kernels with at least 128 on output planes of 12x12 or more,
given 96 or more 4x4 output tiles in the batch (measured 1.1-2.1x im2col at
2 threads; conv2d_winograd_preferred in
csrc/conv_winograd.cpp), im2col otherwise; on the GPU, by the rule measured
on an H200 (winograd_preferred in cuda/conv_winograd.cu).
`conv2d_algorithm` says which one runs. Winograd's CPU scratch: the transformed weights
(and their gradient) plus chunks of images whose transformed inputs and
products stay under 2**23 floats (32 MiB); `conv2d_winograd_workspace_bytes`
gives the figure. On the GPU: the transformed weights, in the backward the weight
gradient's slabs, and a chunk's transformed input and products, under the
same cap as im2col's.
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from .._backend import accepts_cuda_interface, cpu, current_stream_ptr, require_cuda
from .._validate import device_of, float32_contiguous, int_pair, require_float32

# GPU workspace cap in floats; None = _default_gpu_cap(). Tests
# lower it to make the GPU path work in several chunks.
_gpu_workspace_cap = None

# algo names -> the CUDA binding's numbers (ConvAlgo in cuda/conv.cuh).
ALGOS = {"auto": 0, "im2col": 1, "winograd": 2}


def _algo_code(algo):
    if not isinstance(algo, str) or algo not in ALGOS:
        raise ValueError(f"algo must be one of {sorted(ALGOS)}, got {algo!r}")
    return ALGOS[algo]


def _params(stride, padding, dilation):
    stride, padding, dilation = (int_pair(stride, "stride"), int_pair(padding, "padding"),
                                 int_pair(dilation, "dilation"))
    if min(stride) < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"dilation must be >= 1, got {dilation}")
    if min(padding) < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    return stride, padding, dilation


def _output_size(in_hw, kernel, stride, padding, dilation, what):
    """(OH, OW) as torch computes them; ValueError naming the shapes if below 1."""
    out = []
    for size, k, s, p, d in zip(in_hw, kernel, stride, padding, dilation):
        out.append((size + 2 * p - d * (k - 1) - 1) // s + 1)
    if min(out) < 1:
        raise ValueError(
            f"output size {tuple(out)} is below 1: {what} with padding {padding} is smaller "
            f"than the kernel {tuple(kernel)} dilated by {dilation}")
    return tuple(out)


def _require_4d(a, name, layout):
    if a.ndim != 4:
        raise ValueError(f"{name} must be 4-D {layout}, got shape {tuple(a.shape)}")


def _check_conv(x, weight, stride, padding, dilation, groups):
    """Validates a conv2d call; returns the normalized parameters and (OH, OW)."""
    require_float32(x, "x")
    require_float32(weight, "weight")
    _require_4d(x, "x", "(N, C, H, W)")
    _require_4d(weight, "weight", "(O, C/groups, kh, kw)")
    stride, padding, dilation = _params(stride, padding, dilation)
    if isinstance(groups, (bool, np.bool_)):
        raise TypeError(f"groups must be an int, got {groups!r}")
    groups = operator.index(groups)
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    n, c, h, w = x.shape
    o, c_per_group, kh, kw = weight.shape
    if kh < 1 or kw < 1:
        raise ValueError(f"weight {tuple(weight.shape)} has an empty kernel")
    if c % groups:
        raise ValueError(f"x {tuple(x.shape)} has {c} channels, not divisible by groups={groups}")
    if o % groups:
        raise ValueError(f"weight {tuple(weight.shape)} has {o} output channels, not divisible "
                         f"by groups={groups}")
    if c_per_group * groups != c:
        raise ValueError(f"x {tuple(x.shape)} has {c} channels but weight {tuple(weight.shape)} "
                         f"expects {c_per_group * groups} (C/groups={c_per_group}, "
                         f"groups={groups})")
    out_hw = _output_size((h, w), (kh, kw), stride, padding, dilation, f"x {tuple(x.shape)}")
    return stride, padding, dilation, groups, out_hw


def _device(**arrays):
    return device_of(**{k: v for k, v in arrays.items() if v is not None})


@functools.lru_cache(maxsize=None)
def _default_gpu_cap(cuda, device: int) -> int:
    """The CUDA module's cap (1 GiB), lowered to a sixteenth of the memory of
    a smaller GPU (never below 2**25 floats): the same for every call on one
    device, so chunking, and with it the rounding, repeats."""
    import cupy

    total = cupy.cuda.runtime.getDeviceProperties(device).get("totalGlobalMem", 0)
    if not total:
        return cuda.conv2d_default_workspace_floats
    return max(2**25, min(cuda.conv2d_default_workspace_floats, total // 64))


def _gpu_workspace(cuda, x_shape, w_shape, stride, padding, dilation, groups, algo=0,
                   backward=False):
    """(workspace array, its size in floats, the cap it was sized for). When
    the GPU has no room for it, a quarter of that size, and so on down to one
    image's columns: more chunks (the weight gradient then sums them in
    another order) instead of an error; OutOfMemoryError only when even that
    does not fit."""
    import cupy

    def floats_for(cap):
        return cuda.conv2d_workspace(list(x_shape), list(w_shape), stride, padding, dilation,
                                     groups, cap, algo, backward)[1]

    cap = _gpu_workspace_cap or _default_gpu_cap(cuda, cupy.cuda.Device().id)
    floats = floats_for(cap)
    while True:
        try:
            return cupy.empty(floats, dtype=cupy.float32), floats, cap
        except cupy.cuda.memory.OutOfMemoryError:
            quarter = max(1, floats // 4)
            smaller = floats_for(quarter)
            if smaller >= floats:
                raise
            cap, floats = quarter, smaller


def _ptr(a):
    return 0 if a is None else a.data.ptr


@accepts_cuda_interface
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algo="auto"):
    """y = torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups).

    x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,) or None; stride,
    padding and dilation are each an int or a pair (height, width). Computed as
    im2col + SGEMM per chunk of images, threads across chunks; scratch is one
    chunk's column matrix per thread (see the module docstring for the bound;
    `conv2d_workspace_bytes` for the figure), none for a 1x1 stride-1 unpadded
    convolution, which multiplies the input plane directly. algo="winograd"
    takes F(4x4, r x r) where it applies (ValueError naming the parameter
    where not); see the module docstring.
    """
    device = _device(x=x, weight=weight, bias=bias)
    stride, padding, dilation, groups, (oh, ow) = _check_conv(x, weight, stride, padding,
                                                              dilation, groups)
    code = _algo_code(algo)
    if bias is not None:
        require_float32(bias, "bias")
        if tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},) for weight "
                             f"{tuple(weight.shape)}, got {tuple(bias.shape)}")
        bias = float32_contiguous(bias, "bias")
    x = float32_contiguous(x, "x")
    weight = float32_contiguous(weight, "weight")
    shape = (x.shape[0], weight.shape[0], oh, ow)
    if device == "cpu":
        y = np.empty(shape, dtype=np.float32)
        cpu().conv2d_forward(x, weight, bias, y, stride, padding, dilation, groups, algo)
        return y
    import cupy

    cuda = require_cuda()
    y = cupy.empty(shape, dtype=cupy.float32)
    ws, ws_floats, cap = _gpu_workspace(cuda, x.shape, weight.shape, stride, padding, dilation,
                                        groups, code)
    cuda.conv2d_forward(x.data.ptr, weight.data.ptr, _ptr(bias), y.data.ptr, ws.data.ptr,
                        ws_floats, list(x.shape), list(weight.shape), stride, padding, dilation,
                        groups, cap, code, current_stream_ptr())
    return y


@accepts_cuda_interface
def conv2d_backward(dy, x, weight, stride=1, padding=0, dilation=1, groups=1, *, algo="auto"):
    """Gradients of conv2d: (dx, dweight, dbias) with the shapes of x, weight and (O,).

    dbias is returned whether or not the forward had a bias. The weight
    gradient sums the batch in a fixed order, so results are bitwise the same
    for any thread count. `algo` as for conv2d.
    """
    device = _device(dy=dy, x=x, weight=weight)
    stride, padding, dilation, groups, (oh, ow) = _check_conv(x, weight, stride, padding,
                                                              dilation, groups)
    code = _algo_code(algo)
    require_float32(dy, "dy")
    expected = (x.shape[0], weight.shape[0], oh, ow)
    if tuple(dy.shape) != expected:
        raise ValueError(f"dy has shape {tuple(dy.shape)}, expected {expected} for x "
                         f"{tuple(x.shape)} and weight {tuple(weight.shape)}")
    dy = float32_contiguous(dy, "dy")
    x = float32_contiguous(x, "x")
    weight = float32_contiguous(weight, "weight")
    if device == "cpu":
        dx = np.empty(x.shape, dtype=np.float32)
        dweight = np.empty(weight.shape, dtype=np.float32)
        dbias = np.empty(weight.shape[0], dtype=np.float32)
        cpu().conv2d_backward(dy, x, weight, dx, dweight, dbias, stride, padding, dilation,
                              groups, algo)
        return dx, dweight, dbias
    import cupy

    cuda = require_cuda()
    dx = cupy.empty(x.shape, dtype=cupy.float32)
    dweight = cupy.empty(weight.shape, dtype=cupy.float32)
    dbias = cupy.empty(weight.shape[0], dtype=cupy.float32)
    ws, ws_floats, cap = _gpu_workspace(cuda, x.shape, weight.shape, stride, padding, dilation,
                                        groups, code, backward=True)
    cuda.conv2d_backward(dy.data.ptr, x.data.ptr, weight.data.ptr, dx.data.ptr, dweight.data.ptr,
                         dbias.data.ptr, ws.data.ptr, ws_floats, list(x.shape),
                         list(weight.shape), stride, padding, dilation, groups, cap, code,
                         current_stream_ptr())
    return dx, dweight, dbias


def _unfold_params(kernel_size, stride, padding, dilation):
    kernel = int_pair(kernel_size, "kernel_size")
    if min(kernel) < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel}")
    return (kernel, *_params(stride, padding, dilation))


@accepts_cuda_interface
def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """torch.nn.functional.unfold: (N, C, H, W) -> (N, C*kh*kw, OH*OW), row
    (c*kh + i)*kw + j, column oh*OW + ow, zeros where the window leaves the input.
    A 3-D (C, H, W) input gives a 2-D result, as in torch."""
    device = _device(x=x)
    require_float32(x, "x")
    if x.ndim not in (3, 4):
        raise ValueError(f"x must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape "
                         f"{tuple(x.shape)}")
    kernel, stride, padding, dilation = _unfold_params(kernel_size, stride, padding, dilation)
    x4 = float32_contiguous(x, "x").reshape((1,) * (4 - x.ndim) + x.shape)
    oh, ow = _output_size(x4.shape[2:], kernel, stride, padding, dilation,
                          f"x {tuple(x.shape)}")
    n, c = x4.shape[:2]
    shape = (n, c * kernel[0] * kernel[1], oh * ow)
    if device == "cpu":
        cols = np.empty(shape, dtype=np.float32)
        cpu().im2col(x4, cols, kernel, stride, padding, dilation)
    else:
        import cupy

        cols = cupy.empty(shape, dtype=cupy.float32)
        require_cuda().im2col(x4.data.ptr, cols.data.ptr, list(x4.shape), kernel, stride,
                              padding, dilation, current_stream_ptr())
    return cols if x.ndim == 4 else cols[0]


@accepts_cuda_interface
def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1):
    """torch.nn.functional.fold back to `input_shape` (N, C, H, W), summing
    every column entry into the input pixel it came from (overlaps add up).
    A 2-D cols (C*kh*kw, L) with a 3-D input_shape (C, H, W) works too."""
    device = _device(cols=cols)
    require_float32(cols, "cols")
    shape = tuple(operator.index(v) for v in input_shape)
    if len(shape) not in (3, 4) or min(shape) < 0:
        raise ValueError(f"input_shape must be (N, C, H, W) or (C, H, W), got {input_shape!r}")
    if cols.ndim != len(shape) - 1:
        raise ValueError(f"cols must be {len(shape) - 1}-D for input_shape {shape}, got shape "
                         f"{tuple(cols.shape)}")
    kernel, stride, padding, dilation = _unfold_params(kernel_size, stride, padding, dilation)
    shape4 = (1,) * (4 - len(shape)) + shape
    oh, ow = _output_size(shape4[2:], kernel, stride, padding, dilation,
                          f"input_shape {shape}")
    want = (shape4[0], shape4[1] * kernel[0] * kernel[1], oh * ow)
    cols3 = cols.reshape((1,) * (3 - cols.ndim) + cols.shape)
    if cols3.shape != want:
        raise ValueError(f"cols has shape {tuple(cols.shape)}, expected {want[3 - cols.ndim:]} "
                         f"for input_shape {shape} and kernel_size {kernel}")
    cols3 = float32_contiguous(cols3, "cols")
    if device == "cpu":
        x = np.empty(shape4, dtype=np.float32)
        cpu().col2im(cols3, x, kernel, stride, padding, dilation)
    else:
        import cupy

        x = cupy.empty(shape4, dtype=cupy.float32)
        require_cuda().col2im(cols3.data.ptr, x.data.ptr, list(shape4), kernel, stride, padding,
                              dilation, current_stream_ptr())
    return x.reshape(shape)


def conv2d_workspace_bytes(x_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                           *, backward=False, threads=None):
    """Bytes of scratch conv2d (or conv2d_backward) allocates for these shapes,
    with `threads` OpenMP threads (default: the current setting)."""
    from .. import get_num_threads

    stride, padding, dilation = _params(stride, padding, dilation)
    threads = get_num_threads() if threads is None else threads
    return 4 * cpu().conv2d_workspace_floats(list(x_shape), list(weight_shape), stride, padding,
                                             dilation, groups, threads, backward)


def conv2d_algorithm(x_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1, *,
                     algo="auto", device="cpu"):
    """"im2col" or "winograd": what conv2d(..., algo=algo) runs for these shapes
    on `device` ("cpu" or "cuda"; the rules differ, see the module docstring).
    ValueError where algo="winograd" cannot run them."""
    stride, padding, dilation = _params(stride, padding, dilation)
    code = _algo_code(algo)
    if device == "cpu":
        return cpu().conv2d_algo_name(list(x_shape), list(weight_shape), stride, padding,
                                      dilation, groups, algo)
    if device != "cuda":
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return require_cuda().conv2d_algo_name(list(x_shape), list(weight_shape), stride, padding,
                                           dilation, groups, code)


def conv2d_winograd_workspace_bytes(x_shape, weight_shape, stride=1, padding=0, dilation=1,
                                    groups=1):
    """Bytes of scratch conv2d(..., algo="winograd") allocates on the CPU
    (forward or backward) for these shapes."""
    stride, padding, dilation = _params(stride, padding, dilation)
    return 4 * cpu().conv2d_winograd_workspace_floats(list(x_shape), list(weight_shape), stride,
                                                      padding, dilation, groups)

// 2-D convolution on the GPU (NCHW activations, OIHW weights) as im2col +
// pk::cuda::sgemm, and the public im2col / col2im. Same argument meanings and
// layouts as the CPU kernels (csrc/include/pykernels/conv.h); see cuda/conv.cu
// for the math, the parallelisation and the workspace bound.
#pragma once

#include <cstdint>

#include "common.cuh"
#include "pykernels/conv_geometry.h"

namespace pk::cuda {

// Geometry of one convolution (fields in pykernels/conv_geometry.h, as the
// CPU's pk::ConvShape).
struct ConvGeometry : ConvDims {
  // Checks the parameters (std::invalid_argument naming the offender),
  // computes oh, ow as torch does, (h + 2p - d (k - 1) - 1) / s + 1, and
  // lowers a stride past the room to room + 1 (same output). Also refuses
  // planes whose in-plane indices would not fit the kernels' 32-bit arithmetic.
  void finish();
};

// Default cap on the conv workspace, in floats (1 GiB; Python lowers it to
// a sixteenth of a smaller GPU's memory). Measured on an H200, AlexNet's
// convolutions at batch 128 against the former 128 MiB cap, which cut conv1
// and conv2 into chunks of 25 images and conv3-5 into two: forward 1.22-1.42x
// as fast, forward+backward 1.15-1.30x.
constexpr int64_t kConvWorkspaceFloats = int64_t{1} << 28;

// Which algorithm runs a convolution; the numbers are the Python binding's.
// Auto is Winograd where winograd_preferred says so, else im2col.
enum class ConvAlgo : int { Auto = 0, Im2col = 1, Winograd = 2 };

// The algorithm `requested` resolves to for this geometry; throws
// std::invalid_argument (naming the parameter) when Winograd cannot run it.
ConvAlgo conv2d_algo(const ConvGeometry& s, ConvAlgo requested);

// Images per chunk S for a workspace cap of `max_floats`, for im2col: the
// largest S <= n with (C*kh*kw + O) * S * OH*OW <= max_floats, at least 1; 1
// when pointwise. Winograd: see conv_winograd.cuh.
int64_t conv2d_chunk_images(const ConvGeometry& s, int64_t max_floats,
                            ConvAlgo algo = ConvAlgo::Im2col, bool backward = false);

// Floats of workspace conv2d_forward / conv2d_backward (`backward`) need with
// chunks of `chunk` images; im2col, either way: (C*kh*kw [not pointwise] +
// O [chunk > 1]) * chunk * OH*OW.
int64_t conv2d_workspace_floats(const ConvGeometry& s, int64_t chunk,
                                ConvAlgo algo = ConvAlgo::Im2col, bool backward = false);

// db[o] = sum of dy[:, o] over images and pixels, in a fixed order.
void conv2d_bias_grad(const ConvGeometry& s, const float* dy, float* db, cudaStream_t stream);

// cols (n, c*kh*kw, oh*ow) from x (n, c, h, w): torch.nn.functional.unfold.
void im2col(const ConvGeometry& s, const float* x, float* cols, cudaStream_t stream);

// x (n, c, h, w) = fold(cols): each pixel sums the entries read from it, in
// (ki, kj) order (a gather, no atomics): bitwise the CPU col2im.
void col2im(const ConvGeometry& s, const float* cols, float* x, cudaStream_t stream);

// y (n, o, oh, ow) = conv(x, weight) + bias (bias may be null). `workspace`
// holds conv2d_workspace_floats(s, chunk, algo) floats; chunk =
// conv2d_chunk_images(s, cap, algo); algo as conv2d_algo resolved it.
void conv2d_forward(const ConvGeometry& s, const float* x, const float* weight, const float* bias,
                    float* y, float* workspace, int64_t chunk, cudaStream_t stream,
                    ConvAlgo algo = ConvAlgo::Im2col);

// dx (n, c, h, w), dweight (o, c/groups, kh, kw), dbias (o) from dy
// (n, o, oh, ow); any output may be null to skip it. Deterministic: the
// weight gradient sums chunks in order (GEMM beta = 1), the bias gradient is
// a fixed-order block reduction, dx a gather.
void conv2d_backward(const ConvGeometry& s, const float* dy, const float* x, const float* weight,
                     float* dx, float* dweight, float* dbias, float* workspace, int64_t chunk,
                     cudaStream_t stream, ConvAlgo algo = ConvAlgo::Im2col);

}  // namespace pk::cuda

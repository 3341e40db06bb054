// Winograd convolution F(4x4, r x r) on the GPU, r = 3 or 5: the transforms
// around pk::cuda::sgemm_batched. The math is pykernels/reference/winograd.py;
// cuda/conv_winograd.cu says how it is cut into kernels and what it costs.
#pragma once

#include <cstdint>
#include <string>

#include "conv.cuh"

namespace pk::cuda {

// Empty when Winograd can run this convolution (stride 1, dilation 1, a square
// 3x3 or 5x5 kernel, padding <= r - 1 so that dx is a Winograd convolution
// too), else the reason it cannot, naming the offending parameter.
std::string winograd_unsupported(const ConvGeometry& s);

// Whether algo="auto" runs this convolution with Winograd: where it measured
// faster than im2col on the GPU (the rule's comment says where that was).
bool winograd_preferred(const ConvGeometry& s);

// Images per chunk S for a workspace cap of `max_floats` (at least 1, at most
// n), and the floats of workspace winograd_forward (backward false) or
// winograd_backward need for chunks of `chunk` images: the transformed
// weights and, for the backward, the weight gradient's K slabs (fixed),
// plus the chunk's transformed inputs and products, (C + O) * 64 (36 for
// 3x3) per tile of the larger of the output and input planes (see
// conv_winograd.cu).
int64_t winograd_chunk_images(const ConvGeometry& s, int64_t max_floats, bool backward);
int64_t winograd_workspace_floats(const ConvGeometry& s, int64_t chunk, bool backward);

// As conv2d_forward / conv2d_backward (same arguments, any output of the
// backward may be null), for a convolution winograd_unsupported accepts.
// Deterministic: fixed-order sums only.
void winograd_forward(const ConvGeometry& s, const float* x, const float* weight,
                      const float* bias, float* y, float* workspace, int64_t chunk,
                      cudaStream_t stream);
void winograd_backward(const ConvGeometry& s, const float* dy, const float* x,
                       const float* weight, float* dx, float* dweight, float* dbias,
                       float* workspace, int64_t chunk, cudaStream_t stream);

}  // namespace pk::cuda

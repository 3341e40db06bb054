#pragma once

#include <cstdint>

#include "common.cuh"

namespace pk::cuda {

// Same semantics as the CPU kernels in csrc/activation.cpp; all pointers are
// device pointers, work is queued on `stream`.
void relu_forward(const float* x, float* y, int64_t n, cudaStream_t stream);
void relu_backward(const float* dy, const float* y, float* dx, int64_t n, cudaStream_t stream);

}  // namespace pk::cuda

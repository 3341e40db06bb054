#pragma once

#include <cstdint>

#include "common.cuh"

namespace pk::cuda {

// Same semantics and the same generator as csrc/dropout.cpp (shared through
// pykernels/counter_rng.h): one seed gives one mask on the CPU and the GPU.
// mask is uint8, 1 = kept; y = x * (mask ? 1 / (1 - p) : 0). p in [0, 1],
// checked by the caller. Device pointers; work is queued on `stream`.
void dropout_forward(const float* x, float* y, uint8_t* mask, int64_t n, double p, uint64_t seed,
                     cudaStream_t stream);

// dx = dy * (mask ? 1 / (1 - p) : 0).
void dropout_backward(const float* dy, const uint8_t* mask, float* dx, int64_t n, double p,
                      cudaStream_t stream);

}  // namespace pk::cuda

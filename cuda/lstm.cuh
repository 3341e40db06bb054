#pragma once

#include <cstdint>

#include "common.cuh"

namespace pk::cuda {

// The fused LSTM pointwise passes of one time step, with the semantics of the
// CPU kernels in csrc/lstm.cpp (csrc/include/pykernels/lstm.h): gate order
// i, f, g, o; rows are batch items; every row of `gates` holds 4*H values.
// All pointers are device pointers; the work is queued on `stream`.

// gates holds x W_ih^T + h W_hh^T on entry and the activated [i, f, g, o] on
// exit; bias is b_ih + b_hh (4H). Writes c1 = f c + i g and h1 = o tanh(c1).
void lstm_pointwise_forward(int64_t n, int64_t h, float* gates, const float* bias,
                            const float* c, float* c1, float* h1, cudaStream_t stream);

// dh1 (plus dh_rec when not null) is dL/dh1, dc is dL/dc1 on entry and dL/dc
// on exit; c is the previous cell. Writes dL/d(pre-activation gates).
void lstm_pointwise_backward(int64_t n, int64_t h, const float* dh1, const float* dh_rec,
                             float* dc, const float* gates, const float* c, float* dgates,
                             cudaStream_t stream);

}  // namespace pk::cuda

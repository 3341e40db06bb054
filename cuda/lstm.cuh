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

// The recurrence of a whole layer, every step queued from C++ (one call
// instead of T from Python, whose per-step overhead would exceed a step's
// GPU time). Forward: gates (T, N, 4H) holds x_t W_ih^T for every step on
// entry; step t adds h_{t-1} W_hh^T to gates[t] (split-K sgemm when the
// grid is small) and runs the pointwise pass, writing cells[t] and y[t].
void lstm_recurrence_forward(int64_t steps, int64_t n, int64_t h, float* gates,
                             const float* w_hh, const float* bias, const float* h0,
                             const float* c0, float* y, float* cells, cudaStream_t stream);

// Backward through time: dy (T, N, H); dh and dc hold dL/dh_T and dL/dc_T on
// entry and dL/dh_0, dL/dc_0 on exit; gates and cells are the forward's;
// writes dgates (T, N, 4H), the gradients of the pre-activation gates.
void lstm_recurrence_backward(int64_t steps, int64_t n, int64_t h, const float* dy, float* dh,
                              float* dc, const float* gates, const float* cells,
                              const float* c0, const float* w_hh, float* dgates,
                              cudaStream_t stream);

}  // namespace pk::cuda

#pragma once

#include <cstdint>

#include "common.cuh"
#include "pykernels/pool.h"

namespace pk::cuda {

// Same semantics, layouts and argument meanings as the CPU kernels in
// csrc/pool.cpp (pk::Pool2dShape: `planes` independent in_h x in_w planes of
// an NCHW tensor). Device pointers; work is queued on `stream`.

// y = max over each window (padding = -inf, a NaN wins), indices = h * W + w.
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices,
                        cudaStream_t stream);

// dx[i] = sum of dy[o] over the outputs o of i's plane with indices[o] == i,
// added in increasing o (the CPU's order, so the results are bitwise equal).
// Only s.planes, in_h, in_w, out_h and out_w are used. *bad_flag (device int)
// is set to 1 when an index lies outside [0, in_h * in_w), else left as is.
void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int64_t* indices, float* dx,
                         int* bad_flag, cudaStream_t stream);

// count_include_pad=True average, its gradient spread evenly over the window.
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y, cudaStream_t stream);
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx, cudaStream_t stream);

// torch's adaptive bins; out_h = out_w = 1 is global average pooling.
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y,
                                 cudaStream_t stream);
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx,
                                  cudaStream_t stream);

}  // namespace pk::cuda

#pragma once

#include <cstdint>

namespace pk {

// Geometry of a 2-D pooling window over `planes` independent H x W planes
// (N * C of an NCHW tensor); out_h/out_w follow PyTorch's floor formula.
struct Pool2dShape {
  int64_t planes, in_h, in_w, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

// y = max over each window (padding counts as -inf; NaN wins, as PyTorch),
// indices = flat h * W + w of the chosen input within its plane.
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices);

// dx = 0, then dx[plane][indices[o]] += dy[o]. Returns the number of indices
// outside [0, H*W) (skipped, never written); the caller reports them.
int64_t max_pool2d_backward(const Pool2dShape& s, const float* dy, const int64_t* indices,
                            float* dx);

// y = sum over the window / kernel_h * kernel_w (count_include_pad=True).
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y);
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx);

// Adaptive average pooling (torch bins: start = floor(o*H/OH),
// end = ceil((o+1)*H/OH)); stride/kernel/pad fields are ignored.
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y);
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx);

}  // namespace pk

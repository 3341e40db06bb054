// 2-D convolution (NCHW activations, OIHW weights) as im2col + SGEMM, and the
// public im2col / col2im. See csrc/conv.cpp for the math and the workspace.
#pragma once

#include <cstdint>

#include "pykernels/conv_geometry.h"

namespace pk {

// Geometry of one convolution (fields in conv_geometry.h).
struct ConvShape : ConvDims {
  // Checks the parameters (std::invalid_argument naming the offender) and
  // computes oh, ow as torch does: (h + 2p - d (k - 1) - 1) / s + 1.
  void finish();
};

// cols (n, c*kh*kw, oh*ow) from x (n, c, h, w); torch.nn.functional.unfold's layout.
// Only n, c, h, w, kernel, stride, padding, dilation of `s` are used.
void im2col(const ConvShape& s, const float* x, float* cols);

// x (n, c, h, w) = the sum, over every column entry, of cols scattered back to
// the input pixel it was read from (torch.nn.functional.fold).
void col2im(const ConvShape& s, const float* cols, float* x);

// y (n, o, oh, ow) = conv(x, weight) + bias; bias may be null.
void conv2d_forward(const ConvShape& s, const float* x, const float* weight, const float* bias,
                    float* y);

// dx (n, c, h, w), dweight (o, c/groups, kh, kw), dbias (o) from dy (n, o, oh, ow).
// Any of dx, dweight, dbias may be null to skip it. Bitwise the same for any
// OpenMP thread count.
void conv2d_backward(const ConvShape& s, const float* dy, const float* x, const float* weight,
                     float* dx, float* dweight, float* dbias);

// db[o] = sum of dy[:, o] over images and pixels, in a fixed order.
void conv2d_bias_grad(const ConvShape& s, const float* dy, float* db);

// Winograd F(4x4, r x r) (csrc/conv_winograd.cpp): the same results to
// rounding, for stride 1, dilation 1, 3x3 or 5x5 kernels and padding <= r - 1;
// std::invalid_argument naming the parameter otherwise. Deterministic for
// any thread count. conv2d_winograd_workspace: the floats either allocates.
void conv2d_winograd_forward(const ConvShape& s, const float* x, const float* weight,
                             const float* bias, float* y);
void conv2d_winograd_backward(const ConvShape& s, const float* dy, const float* x,
                              const float* weight, float* dx, float* dweight, float* dbias);
int64_t conv2d_winograd_workspace(const ConvShape& s);
// Whether algo "auto" takes Winograd for `s` on the CPU (a measured rule:
// 5x5 kernels with at least 32 channels per group in and out; 3x3 with at
// least 128 and output planes of 12x12 or more; 96 or more 4x4 output tiles
// in the batch).
bool conv2d_winograd_preferred(const ConvShape& s);
// Test hook: the cap on a Winograd chunk's buffers in floats (default 2^23;
// the transformed weights come on top), so a test can
// make a small batch run in several chunks; returns the previous cap.
int64_t set_conv_winograd_workspace_cap(int64_t floats);

// Test and benchmark hook: how Winograd's n*n products share the threads
// (0 = by its rule, 1 = whole products per thread, 2 = each product over
// all threads); returns the previous mode. Results do not depend on it.
int set_conv_winograd_points_mode(int mode);

// Floats of scratch memory the forward / backward of `s` allocate at most
// with `threads` OpenMP threads (the bound documented in conv.cpp).
int64_t conv2d_forward_workspace(const ConvShape& s, int threads);
int64_t conv2d_backward_workspace(const ConvShape& s, int threads);

// Test and benchmark hook for the parallel strategy: 0 = choose per call,
// 1 = threads over images (single-threaded GEMMs), 2 = images in sequence
// (parallel GEMM). Results are bitwise the same in every mode.
void set_conv_parallel_mode(int mode);

// Test and benchmark hook: false makes the forward and the weight gradient
// materialise im2col's columns even where they pack them from the image
// (bitwise the same result). Returns the previous setting.
bool set_conv_implicit_im2col(bool enabled);

// Test and benchmark hook: false keeps backward-data on W^T @ dy and col2im
// where it would run as a forward convolution of dy with the flipped kernel
// (stride 1). Returns the previous setting.
bool set_conv_dx_as_forward(bool enabled);

// Test and benchmark hook: false keeps the weight gradient on im2col where it
// would pack cols^T from the image (bitwise the same result); where the dot
// tiles are taken (set_conv_dw_shifted_rows) it changes nothing. Returns the
// previous setting.
bool set_conv_dw_from_image(bool enabled);

// Test and benchmark hook: where the forward reads its GEMM's B rows in place
// from a padded image (shifted rows) instead of packing panels, bitwise the
// same result: 0 nowhere, 1 where the rule takes them (the default), 2 in
// every stride-1 convolution. Returns the previous mode.
int set_conv_shifted_rows(int mode);

// Test and benchmark hook: where the weight gradient is computed as dot
// products of dy and the padded image on the shifted-rows grid instead of a
// GEMM over (packed) columns (the same sums in another order): 0 nowhere, 1
// where the rule takes them (the default), 2 in every stride-1 convolution
// but pointwise ones (and padding or dilation so large that the padded
// planes would dwarf the column matrix).
// Returns the previous mode.
int set_conv_dw_shifted_rows(int mode);

}  // namespace pk

// Internal contract between the Winograd convolution (conv_winograd.cpp, and
// the GPU's cuda/conv_winograd.cu for TileGrid) and the CPU's per-ISA tile
// transforms (conv_winograd_<isa>.cpp): each takes SIMD lanes of consecutive
// tiles at once.
//
// As in gemm_kernels.h, this header must stay free of inline code: the ISA
// files are compiled with ISA flags.
#pragma once

#include <cstdint>

namespace pk::winograd {

// Tiles of 4x4 output pixels over a plane, and the input plane they read.
// In-plane sizes are ints: the callers' geometry checks keep planes below 2^31.
struct TileGrid {
  int h, w;            // input plane
  int oh, ow;          // output plane
  int ph, pw;          // zero padding before the input's first row / column
  int tiles_w, tiles;  // tiles per row of tiles, per image
};

}  // namespace pk::winograd

namespace pk::winograd_detail {

// Columns [col0, col1) of a chunk (column = image * tiles + tile) for one
// channel, with an r x r kernel (3 or 5):
// - input: `plane` is the channel's plane in the chunk's first image (images
//   `image_stride` floats apart); writes B^T d B, entry xi of column col at
//   dst[xi * xi_stride + col];
// - grad_output: the same for A dY A^T of dy's 4x4 tiles;
// - output: reads src[xi * xi_stride + col], writes A^T M A (+ bias when
//   has_bias) into `plane`, inside the output plane only.
using InputFn = void (*)(int r, const winograd::TileGrid& g, const float* plane,
                         int64_t image_stride, int64_t col0, int64_t col1, float* dst,
                         int64_t xi_stride);
using OutputFn = void (*)(int r, const winograd::TileGrid& g, const float* src, int64_t xi_stride,
                          int64_t col0, int64_t col1, bool has_bias, float bias, float* plane,
                          int64_t image_stride);

// Filters, `count` of them, filter l at filters + l * filter_stride:
// - weights: G f G^T (f rotated by 180 degrees when flipped) into column l of
//   dst (entry xi at dst[xi * xi_stride + l]);
// - weight_grad: G^T dU G, dU entry xi at du[xi * xi_stride + l], into the filter.
using WeightFn = void (*)(int r, bool flipped, const float* filters, int64_t filter_stride,
                          int64_t count, float* dst, int64_t xi_stride);
using WeightGradFn = void (*)(int r, const float* du, int64_t xi_stride, int64_t count,
                              float* dweight, int64_t filter_stride);

struct Kernels {
  InputFn input;
  InputFn grad_output;
  OutputFn output;
  WeightFn weights;
  WeightGradFn weight_grad;
};

extern const Kernels kGeneric;  // SSE2, 4 lanes
extern const Kernels kAvx2;     // 8 lanes
extern const Kernels kAvx512;   // 16 lanes

}  // namespace pk::winograd_detail

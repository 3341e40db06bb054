// Winograd convolution F(4x4, r x r), r = 3 or 5, per tile: the pieces the
// CPU (csrc/conv_winograd.cpp) and the GPU (cuda/conv_winograd.cu) share.
// pykernels/reference/winograd.py is the same math in NumPy and derives the
// matrices; the tests check the ones compiled here against it.
//
// Header-only and free of SIMD code, compiled by g++ for the CPU and by nvcc
// for the GPU: PK_HD marks what both call. The matrices and the transform
// products are in winograd_matrices.inc; the CPU's SIMD lanes of tiles use
// them from csrc/conv_winograd_lanes.inc.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "pykernels/conv_geometry.h"
#include "pykernels/winograd_kernels.h"

#if defined(__CUDACC__) || defined(PYKERNELS_CUDA_EMU)
#define PK_HD __host__ __device__ __forceinline__
#else
#define PK_HD inline __attribute__((always_inline))
#endif

#if defined(__CUDACC__)
#define PK_UNROLL _Pragma("unroll")
#elif defined(PYKERNELS_CUDA_EMU)
// The emulator checks results, not speed: unrolling every transform there made
// its AddressSanitizer build of conv_winograd.cu take over 20 minutes.
#define PK_UNROLL
#else
#define PK_UNROLL _Pragma("GCC unroll 64")
#endif

namespace pk::winograd {

#include "pykernels/winograd_matrices.inc"

inline int tile_count(int64_t size) { return int((size + kTile - 1) / kTile); }

inline TileGrid tile_grid(int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t ph, int64_t pw) {
  const int tiles_w = tile_count(ow);
  return {int(h), int(w), int(oh), int(ow), int(ph), int(pw), tiles_w, tile_count(oh) * tiles_w};
}

// Tile `col` of a chunk: tiles in row-major order within each image, images in turn.
struct TileAt {
  int64_t image;
  int row0, col0;  // its first output pixel
};

PK_HD TileAt tile_at(const TileGrid& g, int64_t col) {
  const int64_t image = col / g.tiles;
  const int t = int(col - image * g.tiles);
  const int ty = t / g.tiles_w;
  return {image, ty * kTile, (t - ty * g.tiles_w) * kTile};
}

// Entry (i, j) of an n x n transformed tile goes to dst[(i*n + j) * xi_stride]:
// one matrix per point xi, as the batched GEMM reads them.
template <int N>
PK_HD void store_points(const float (&out)[N][N], float* dst, int64_t xi_stride) {
  PK_UNROLL
  for (int i = 0; i < N; ++i) {
    PK_UNROLL
    for (int j = 0; j < N; ++j) dst[(i * N + j) * xi_stride] = out[i][j];
  }
}

// fn(i, j, inside, offset) for pixel (i, j) of `at`'s 4x4 output tile: whether
// it lies inside the output plane, and its offset there.
template <class Fn>
PK_HD void for_output_pixels(const TileGrid& g, const TileAt& at, Fn fn) {
  PK_UNROLL
  for (int i = 0; i < kTile; ++i) {
    const int oy = at.row0 + i;
    PK_UNROLL
    for (int j = 0; j < kTile; ++j) {
      const int ox = at.col0 + j;
      const bool inside = oy < g.oh && ox < g.ow;
      fn(i, j, inside, inside ? oy * g.ow + ox : 0);  // no int overflow past the edge
    }
  }
}

// B^T d B for the n x n input tile of `at` in `plane` (the input channel),
// zeros outside the plane (the padding).
template <int R>
PK_HD void input_tile(const TileGrid& g, const float* plane, const TileAt& at, float* dst,
                      int64_t xi_stride) {
  constexpr int N = Matrices<R>::N;
  const int y0 = at.row0 - g.ph, x0 = at.col0 - g.pw;
  float d[N][N];
  PK_UNROLL
  for (int i = 0; i < N; ++i) {
    const int iy = y0 + i;
    const bool row_inside = unsigned(iy) < unsigned(g.h);
    PK_UNROLL
    for (int j = 0; j < N; ++j) {
      const int ix = x0 + j;
      d[i][j] = row_inside && unsigned(ix) < unsigned(g.w) ? plane[iy * g.w + ix] : 0.0f;
    }
  }
  float out[N][N];
  sandwich<InputMatrix<R>>(d, out);
  store_points(out, dst, xi_stride);
}

// A dY A^T for the 4x4 tile of `at` in `plane` (a channel of dy), zeros past its edge.
template <int R>
PK_HD void grad_output_tile(const TileGrid& g, const float* plane, const TileAt& at, float* dst,
                            int64_t xi_stride) {
  constexpr int N = Matrices<R>::N;
  float tile[kTile][kTile];
  for_output_pixels(g, at, [&](int i, int j, bool inside, int offset) {
    tile[i][j] = inside ? plane[offset] : 0.0f;
  });
  float out[N][N];
  sandwich<Transposed<OutputMatrix<R>>>(tile, out);
  store_points(out, dst, xi_stride);
}

// The 4x4 output tile A^T M A from the products at src[(i*n + j) * xi_stride],
// written to `plane` (a channel of y) inside the plane only, with `bias` added
// after the product when has_bias (as im2col + SGEMM add it).
template <int R>
PK_HD void output_tile(const TileGrid& g, const float* src, int64_t xi_stride, const TileAt& at,
                       bool has_bias, float bias, float* plane) {
  constexpr int N = Matrices<R>::N;
  float product[N][N];
  PK_UNROLL
  for (int i = 0; i < N; ++i) {
    PK_UNROLL
    for (int j = 0; j < N; ++j) product[i][j] = src[(i * N + j) * xi_stride];
  }
  float out[kTile][kTile];
  sandwich<OutputMatrix<R>>(product, out);
  for_output_pixels(g, at, [&](int i, int j, bool inside, int offset) {
    if (inside) plane[offset] = has_bias ? out[i][j] + bias : out[i][j];
  });
}

// G f G^T for the R x R filter f, rotated by 180 degrees when FLIPPED (dx's
// weights: dx is dy convolved with the flipped kernel).
template <int R, bool FLIPPED>
PK_HD void weight_tile(const float* filter, float* dst, int64_t xi_stride) {
  constexpr int N = Matrices<R>::N;
  float f[R][R];
  PK_UNROLL
  for (int i = 0; i < R; ++i) {
    PK_UNROLL
    for (int j = 0; j < R; ++j) {
      f[i][j] = FLIPPED ? filter[(R - 1 - i) * R + R - 1 - j] : filter[i * R + j];
    }
  }
  float out[N][N];
  sandwich<WeightMatrix<R>>(f, out);
  store_points(out, dst, xi_stride);
}

// The R x R filter gradient G^T dU G, dU entry xi = get(xi).
template <int R, class Get>
PK_HD void weight_grad_tile(Get get, float* filter) {
  constexpr int N = Matrices<R>::N;
  float du[N][N];
  PK_UNROLL
  for (int i = 0; i < N; ++i) {
    PK_UNROLL
    for (int j = 0; j < N; ++j) du[i][j] = get(i * N + j);
  }
  float out[R][R];
  sandwich<Transposed<WeightMatrix<R>>>(du, out);
  PK_UNROLL
  for (int i = 0; i < R; ++i) {
    PK_UNROLL
    for (int j = 0; j < R; ++j) filter[i * R + j] = out[i][j];
  }
}

// Empty when F(4x4, r x r) can run the convolution: stride 1, dilation 1, a
// square 3x3 or 5x5 kernel, padding <= r - 1 (so that dx, a convolution of dy
// padded by r - 1 - p, is one too); else the reason, naming the parameter.
inline std::string unsupported(const ConvDims& s) {
  if (s.sh != 1 || s.sw != 1) return "winograd needs stride 1, got " + conv_pair_str(s.sh, s.sw);
  if (s.dh != 1 || s.dw != 1) return "winograd needs dilation 1, got " + conv_pair_str(s.dh, s.dw);
  if (s.kh != s.kw || (s.kh != 3 && s.kh != 5)) {
    return "winograd needs a 3x3 or 5x5 kernel, got " + conv_pair_str(s.kh, s.kw);
  }
  if (s.ph > s.kh - 1 || s.pw > s.kw - 1) {
    return "winograd needs padding <= " + std::to_string(s.kh - 1) + " for a " +
           std::to_string(s.kh) + "x" + std::to_string(s.kw) + " kernel, got " +
           conv_pair_str(s.ph, s.pw);
  }
  return "";
}

// n*n points of F(4x4, k x k).
inline int64_t points(int64_t k) { return (k + kTile - 1) * (k + kTile - 1); }

// Tiles per image of the output plane (forward, weight gradient) and of the
// input plane (dx, a convolution whose output is the input plane).
inline int64_t output_tiles(const ConvDims& s) {
  return int64_t(tile_count(s.oh)) * tile_count(s.ow);
}
inline int64_t input_tiles(const ConvDims& s) { return int64_t(tile_count(s.h)) * tile_count(s.w); }

// Calls fn(std::integral_constant<int, R>{}) for R = k (3 or 5).
template <class Fn>
void with_kernel_size(int64_t k, Fn&& fn) {
  if (k == 3) return fn(std::integral_constant<int, 3>{});
  if (k == 5) return fn(std::integral_constant<int, 5>{});
  throw std::invalid_argument("winograd: kernel size " + std::to_string(k) + " is not 3 or 5");
}

// A^T, G, B^T for an r x r kernel, each row-major and flattened: what the
// tests compare with the reference's exact matrices.
inline std::vector<std::vector<float>> matrices(int r) {
  std::vector<std::vector<float>> out;
  with_kernel_size(r, [&](auto size) {
    constexpr int R = decltype(size)::value;
    auto rows_of = [](auto matrix) {
      using L = decltype(matrix);
      std::vector<float> flat;
      for (int i = 0; i < L::rows; ++i)
        for (int j = 0; j < L::cols; ++j) flat.push_back(L::at(i, j));
      return flat;
    };
    out = {rows_of(OutputMatrix<R>{}), rows_of(WeightMatrix<R>{}), rows_of(InputMatrix<R>{})};
  });
  return out;
}

}  // namespace pk::winograd

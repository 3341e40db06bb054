// Winograd convolution F(4x4, r x r), r = 3 or 5, stride 1, no dilation, as
// transforms around one batched SGEMM. The per-tile transforms and the matrices
// are shared with the CPU (csrc/include/pykernels/winograd.h);
// pykernels/reference/winograd.py is the
// same algorithm in NumPy, and says where the matrices come from.
//
// Why: AlexNet's conv2 (5x5, 64 -> 192 channels, 27x27) takes 400 multiplies
// per output pixel and channel pair as im2col + SGEMM, 64 per 16 pixels here
// (6.25x fewer; 4x for 3x3). On an H200 cuDNN ran conv2 at 3.2x the FP32 peak
// counted in direct FLOPs, which no direct method can approach.
//
// Per group and chunk of S images, with n = r + 3, xi = 0 .. n*n - 1, T = S *
// tiles (tiles of 4x4 output pixels per image, row-major, images in turn):
//   weight_transform    U_xi (O, C)  = (G g G^T)[xi] for each filter g
//   input_transform     V_xi (C, T)  = (B^T d B)[xi] for each n x n input tile d
//   sgemm_batched       M_xi (O, T)  = U_xi @ V_xi, all n*n products in one launch
//   output_transform    y tile       = A^T M A (+ bias), cut at the plane's edge
// Backward:
//   dx  = the same forward with U' = G rot180(g)^T G^T (channels swapped),
//         over dy padded by r - 1 - p: a stride-1 convolution's data gradient
//         is a convolution of dy with the flipped kernel;
//   dW: grad_output_transform  dM_xi (O, T) = (A dY A^T)[xi], dY zero past the edge,
//       sgemm_batched           dU_xi (C, O) += V_xi @ dM_xi^T, K = T cut into a
//                               fixed number of slabs (each its own sum, so the
//                               product fills the GPU), chunks added with beta = 1,
//       weight_grad_transform   dW = G^T (sum of the slabs in order) G;
//   db: conv2d_bias_grad, as im2col's.
// Everything sums in a fixed order: bitwise repeatable.
//
// Kernels and what bounds them: each transform is one thread per (tile,
// channel); tiles along x (flattened with the image, so consecutive threads
// write consecutive columns of V, M: coalesced), channels along y. Every loop
// over the small matrices is unrolled with the matrices as compile-time
// constants, so zero entries cost nothing and +-1 entries no multiply. The
// transforms are memory-bound (n*n floats written per tile and channel); the
// GEMM does the arithmetic.
//
// Workspace (floats), per group reused: the transformed weights
//   n*n * max(O/g * C4, C/g * O4)   (C4, O4: C/g, O/g rounded up to 4),
// in the backward the weight gradient's slabs  splits * n*n * C/g * O/g * groups,
// and per chunk
//   n*n * (C/g + O/g) * T4,  T4 = S * max(tiles of the output, tiles of the input)
// rounded up to 4 (rows of 4k floats keep the GEMM's float4 loads).
#include "conv_winograd.cuh"

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

#include "gemm.cuh"
#include "pykernels/winograd.h"
#include "splitk.cuh"

namespace pk::cuda {
namespace {

using winograd::Matrices;
using winograd::TileAt;
using winograd::TileGrid;
using winograd::tile_at;

// A transformed matrix per xi: element (row, column) of product xi at
// data[xi * xi_stride + row * ld + column]; column = image * tiles + tile.
struct Transformed {
  float* data;
  int64_t ld, xi_stride;
};

// The tile kernels: one thread per (tile, channel), tiles along x (columns
// of the transformed matrices), channels along y.

// B^T d B for the tiles of x (GRAD_OUTPUT false), A dY A^T for those of dy.
template <int R, bool GRAD_OUTPUT>
__global__ void tile_transform(TileGrid g, const float* __restrict__ src, int64_t image_stride,
                               int64_t channels, int64_t columns, Transformed dst) {
  const int64_t col = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= columns) return;
  const TileAt at = tile_at(g, col);
  const int64_t plane = GRAD_OUTPUT ? int64_t(g.oh) * g.ow : int64_t(g.h) * g.w;
  for (int64_t c = blockIdx.y; c < channels; c += gridDim.y) {
    const float* tiles = src + at.image * image_stride + c * plane;
    float* out = dst.data + c * dst.ld + col;
    if constexpr (GRAD_OUTPUT) {
      winograd::grad_output_tile<R>(g, tiles, at, out, dst.xi_stride);
    } else {
      winograd::input_tile<R>(g, tiles, at, out, dst.xi_stride);
    }
  }
}

template <int R>
__global__ void output_transform(TileGrid g, Transformed m, const float* __restrict__ bias,
                                 float* __restrict__ y, int64_t image_stride, int64_t channels,
                                 int64_t columns) {
  const int64_t col = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= columns) return;
  const TileAt at = tile_at(g, col);
  for (int64_t k = blockIdx.y; k < channels; k += gridDim.y) {
    winograd::output_tile<R>(g, m.data + k * m.ld + col, m.xi_stride, at, bias != nullptr,
                             bias != nullptr ? bias[k] : 0.0f,
                             y + at.image * image_stride + k * int64_t(g.oh) * g.ow);
  }
}

// U_xi = G f G^T for the filters of weight (O/g, C/g, R, R). Thread e makes
// entry (row, col) = (e / cols, e % cols) of every U_xi, so the writes
// coalesce; FLIPPED gives dx's weights: U'_xi (C/g, O/g) from the filter
// rotated by 180 degrees.
template <int R, bool FLIPPED>
__global__ void weight_transform(const float* __restrict__ weight, int64_t outs, int64_t ins,
                                 Transformed u) {
  const int64_t cols = FLIPPED ? outs : ins, total = outs * ins;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = e / cols, col = e - row * cols;
    const int64_t o = FLIPPED ? col : row, c = FLIPPED ? row : col;
    winograd::weight_tile<R, FLIPPED>(weight + (o * ins + c) * R * R, u.data + row * u.ld + col,
                                      u.xi_stride);
  }
}

// dW (O/g, C/g, R, R) = G^T dU G, dU_xi (C/g, O/g) the sum of the slabs in order.
template <int R>
__global__ void weight_grad_transform(Slabs du, int64_t outs, int64_t ins,
                                      float* __restrict__ dweight) {
  const int64_t total = outs * ins;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = e / outs, o = e - c * outs;
    winograd::weight_grad_tile<R>([&](int xi) { return du.sum(xi * total + e); },
                                  dweight + (o * ins + c) * R * R);
  }
}

// ---- sizes -------------------------------------------------------------------

constexpr int kThreads = 256;
constexpr int64_t kMaxGridY = 65535;

int64_t round4(int64_t v) { return (v + 3) / 4 * 4; }

int64_t points(const ConvGeometry& s) { return winograd::points(s.kh); }
using winograd::input_tiles;
using winograd::output_tiles;

// K slabs of the weight gradient's products: enough blocks to fill a big GPU
// (kTargetBlocks, from the shape alone, so every GPU sums alike), slabs at
// least kMinDepth deep over the whole batch.
int64_t weight_grad_splits(const ConvGeometry& s) {
  constexpr int64_t kTargetBlocks = 2048, kMinDepth = 256, kMaxSplits = 32;
  const int64_t tiles = (s.c_per_group() + 63) / 64 * ((s.o_per_group() + 127) / 128);
  const int64_t blocks = std::max<int64_t>(1, points(s) * tiles);
  const int64_t wanted = (kTargetBlocks + blocks - 1) / blocks;
  const int64_t deepest = std::max<int64_t>(1, s.n * output_tiles(s) / kMinDepth);
  return std::clamp<int64_t>(std::min(wanted, deepest), 1, kMaxSplits);
}

struct WorkspaceLayout {
  float* weights;  // U or U' of one group
  float* slabs;    // weight-gradient slabs, all groups
  float* chunk;    // the chunk's two transformed matrices
};

int64_t weights_floats(const ConvGeometry& s) {
  const int64_t og = s.o_per_group(), cg = s.c_per_group();
  return points(s) * std::max(og * round4(cg), cg * round4(og));
}

int64_t slab_floats(const ConvGeometry& s) {
  return weight_grad_splits(s) * points(s) * s.c_per_group() * s.o_per_group() * s.groups;
}

WorkspaceLayout layout(const ConvGeometry& s, float* workspace, bool backward) {
  float* slabs = workspace + weights_floats(s);
  return {workspace, slabs, slabs + (backward ? slab_floats(s) : 0)};
}

// ---- launches ----------------------------------------------------------------

dim3 tile_grid_launch(int64_t columns, int64_t channels) {
  return dim3(unsigned((columns + kThreads - 1) / kThreads),
              unsigned(std::min(channels, kMaxGridY)));
}

template <int R, bool GRAD_OUTPUT = false>
void transform_tiles(const TileGrid& g, const float* src, int64_t image_stride, int64_t channels,
                     int64_t columns, Transformed dst, cudaStream_t stream) {
  if (channels == 0 || columns == 0) return;
  PK_LAUNCH(tile_grid_launch(columns, channels), kThreads, 0, stream,
            tile_transform<R, GRAD_OUTPUT>)(g, src, image_stride, channels, columns, dst);
  check_launch("winograd tile_transform");
}

template <int R>
void transform_output(const TileGrid& g, Transformed m, const float* bias, float* y,
                      int64_t image_stride, int64_t channels, int64_t columns,
                      cudaStream_t stream) {
  if (channels == 0 || columns == 0) return;
  PK_LAUNCH(tile_grid_launch(columns, channels), kThreads, 0, stream,
            output_transform<R>)(g, m, bias, y, image_stride, channels, columns);
  check_launch("winograd output_transform");
}

template <int R, bool FLIPPED>
void transform_weight(const float* weight, int64_t outs, int64_t ins, Transformed u,
                      cudaStream_t stream) {
  if (outs * ins == 0) return;
  PK_LAUNCH(blocks_for(outs * ins, kThreads, 65535u), kThreads, 0, stream,
            weight_transform<R, FLIPPED>)(weight, outs, ins, u);
  check_launch("winograd weight_transform");
}

// One convolution's worth of Winograd for a group: U (rows, inner) per xi
// applied to the chunk's transformed input (inner, T) into (rows, T).
void multiply_points(int64_t n_points, int64_t rows, int64_t inner, int64_t columns,
                     const Transformed& u, const Transformed& v, const Transformed& m,
                     cudaStream_t stream) {
  sgemm_batched(false, false, rows, columns, inner, 1.0f, u.data, u.ld, v.data, v.ld, 0.0f,
                m.data, m.ld, n_points, {u.xi_stride, v.xi_stride, m.xi_stride}, {}, stream);
}

// Two transformed matrices of `first_rows` and `second_rows` rows for
// `columns` columns, one after the other in the chunk's space.
std::pair<Transformed, Transformed> chunk_matrices(float* space, int64_t n_points,
                                                   int64_t first_rows, int64_t second_rows,
                                                   int64_t columns) {
  const int64_t ld = round4(columns);
  const Transformed first{space, ld, first_rows * ld};
  const Transformed second{space + n_points * first_rows * ld, ld, second_rows * ld};
  return {first, second};
}

// y = conv(x, weight) (+ bias) over a tile grid: the forward pass, and dx's.
template <int R, bool FLIPPED>
void winograd_convolve(const TileGrid& g, int64_t images, int64_t chunk, int64_t in_channels,
                       int64_t out_channels, int64_t groups, const float* x,
                       const float* weight, const float* bias, float* y,
                       const WorkspaceLayout& ws, cudaStream_t stream) {
  constexpr int64_t kPoints = int64_t(Matrices<R>::N) * Matrices<R>::N;
  const int64_t cg = in_channels / groups, og = out_channels / groups;
  const int64_t in_image = in_channels * g.h * g.w, out_image = out_channels * g.oh * g.ow;
  const Transformed u{ws.weights, round4(cg), og * round4(cg)};
  const int64_t group_weight = (FLIPPED ? cg : og) * (FLIPPED ? og : cg) * R * R;
  for (int64_t grp = 0; grp < groups; ++grp) {
    // weight (O, C/g): for dx, in_channels are the forward's outputs.
    transform_weight<R, FLIPPED>(weight + grp * group_weight, FLIPPED ? cg : og,
                                 FLIPPED ? og : cg, u, stream);
    for (int64_t i0 = 0; i0 < images; i0 += chunk) {
      const int64_t count = std::min(chunk, images - i0), columns = count * g.tiles;
      const auto [v, m] = chunk_matrices(ws.chunk, kPoints, cg, og, columns);
      transform_tiles<R>(g, x + i0 * in_image + grp * cg * g.h * g.w, in_image, cg, columns, v,
                         stream);
      multiply_points(kPoints, og, cg, columns, u, v, m, stream);
      transform_output<R>(g, m, bias ? bias + grp * og : nullptr,
                          y + i0 * out_image + grp * og * g.oh * g.ow, out_image, og, columns,
                          stream);
    }
  }
}

// dweight: the slabs of dU for every group over the whole batch, then dW.
template <int R>
void winograd_weight_grad(const ConvGeometry& s, const float* dy, const float* x,
                          float* dweight, int64_t chunk, const WorkspaceLayout& ws,
                          cudaStream_t stream) {
  constexpr int64_t kPoints = int64_t(Matrices<R>::N) * Matrices<R>::N;
  const int64_t cg = s.c_per_group(), og = s.o_per_group(), splits = weight_grad_splits(s);
  const int64_t per_group = splits * kPoints * cg * og;
  if (per_group * s.groups == 0) return;
  const TileGrid g = winograd::tile_grid(s.h, s.w, s.oh, s.ow, s.ph, s.pw);
  const int64_t in_image = s.c * s.h * s.w, out_image = s.o * s.oh * s.ow;
  // Slabs a short chunk leaves out must hold +0 (chunks add with beta = 1).
  check(cudaMemsetAsync(ws.slabs, 0, sizeof(float) * per_group * s.groups, stream),
        "cudaMemsetAsync");
  for (int64_t i0 = 0; i0 < s.n; i0 += chunk) {
    const int64_t count = std::min(chunk, s.n - i0), columns = count * g.tiles;
    const SgemmSplit split = sgemm_split_into(columns, splits);
    for (int64_t grp = 0; grp < s.groups; ++grp) {
      const auto [v, dm] = chunk_matrices(ws.chunk, kPoints, cg, og, columns);
      transform_tiles<R>(g, x + i0 * in_image + grp * cg * s.h * s.w, in_image, cg, columns, v,
                         stream);
      transform_tiles<R, true>(g, dy + i0 * out_image + grp * og * s.oh * s.ow, out_image, og,
                               columns, dm, stream);
      sgemm_batched(false, true, cg, og, columns, 1.0f, v.data, v.ld, dm.data, dm.ld, 1.0f,
                    ws.slabs + grp * per_group, og, kPoints, {v.xi_stride, dm.xi_stride, cg * og},
                    split, stream);
    }
  }
  for (int64_t grp = 0; grp < s.groups; ++grp) {
    const Slabs du{ws.slabs + grp * per_group, splits, kPoints * cg * og};
    PK_LAUNCH(blocks_for(cg * og, kThreads, 65535u), kThreads, 0, stream,
              weight_grad_transform<R>)(du, og, cg, dweight + grp * og * cg * R * R);
    check_launch("winograd weight_grad_transform");
  }
}

}  // namespace

// ---- public entry points -------------------------------------------------------

std::string winograd_unsupported(const ConvGeometry& s) { return winograd::unsupported(s); }

bool winograd_preferred(const ConvGeometry& s) {
  // Measured on an H200 (benchmarks/winograd_sweep.py, 2026-11-30; 24
  // shapes, forward and forward+backward): Winograd beat im2col 1.08-3.21x
  // wherever the batch held 49 or more 4x4 output tiles and both sides had 16
  // or more channels per group (AlexNet conv2-5 at batch 1-128 but conv4 at
  // batch 1, ResNet-20's and ResNet-18's 3x3 layers, 5x5 from 16 -> 32 up).
  // It lost on 16 tiles (AlexNet conv4 at batch 1: 0.75x / 0.60x; 512
  // channels on 7x7 at batch 4: 0.54x / 0.63x), where the batched products
  // are 16 columns wide, and with LeNet's 1 -> 6 and 6 -> 16 channels (0.58-
  // 1.04x). Untested between 16 and 49 tiles and between 6 and 16 channels;
  // the thresholds sit in those gaps.
  constexpr int64_t kMinTiles = 32, kMinChannels = 16;
  if (!winograd::unsupported(s).empty() || s.n * output_tiles(s) < kMinTiles) return false;
  return std::min(s.c_per_group(), s.o_per_group()) >= kMinChannels;
}

int64_t winograd_workspace_floats(const ConvGeometry& s, int64_t chunk, bool backward) {
  if (s.n == 0) return 0;
  chunk = std::clamp<int64_t>(chunk, 1, s.n);
  const int64_t columns = chunk * std::max(output_tiles(s), input_tiles(s));
  return weights_floats(s) + (backward ? slab_floats(s) : 0) +
         points(s) * (s.c_per_group() + s.o_per_group()) * round4(columns);
}

int64_t winograd_chunk_images(const ConvGeometry& s, int64_t max_floats, bool backward) {
  if (s.n <= 1) return 1;
  const int64_t fixed = winograd_workspace_floats(s, 1, backward) -
                        points(s) * (s.c_per_group() + s.o_per_group()) *
                            round4(std::max(output_tiles(s), input_tiles(s)));
  const int64_t per_image =
      std::max<int64_t>(1, points(s) * (s.c_per_group() + s.o_per_group()) *
                               std::max(output_tiles(s), input_tiles(s)));
  int64_t chunk = std::clamp<int64_t>((max_floats - fixed) / per_image, 1, s.n);
  while (chunk > 1 && winograd_workspace_floats(s, chunk, backward) > max_floats) --chunk;
  return chunk;
}

void winograd_forward(const ConvGeometry& s, const float* x, const float* weight,
                      const float* bias, float* y, float* workspace, int64_t chunk,
                      cudaStream_t stream) {
  if (s.n == 0 || s.o == 0) return;
  const TileGrid g = winograd::tile_grid(s.h, s.w, s.oh, s.ow, s.ph, s.pw);
  winograd::with_kernel_size(s.kh, [&](auto r) {
    winograd_convolve<decltype(r)::value, false>(g, s.n, chunk, s.c, s.o, s.groups, x, weight,
                                                 bias, y, layout(s, workspace, false), stream);
  });
}

void winograd_backward(const ConvGeometry& s, const float* dy, const float* x,
                       const float* weight, float* dx, float* dweight, float* dbias,
                       float* workspace, int64_t chunk, cudaStream_t stream) {
  if (dbias != nullptr && s.o > 0) conv2d_bias_grad(s, dy, dbias, stream);
  const int64_t weight_floats = s.o * s.c_per_group() * s.kh * s.kw;
  if (dweight != nullptr && (s.n == 0 || s.o == 0) && weight_floats > 0) {
    check(cudaMemsetAsync(dweight, 0, sizeof(float) * weight_floats, stream), "cudaMemsetAsync");
  }
  if (s.n == 0 || s.o == 0) {
    if (dx != nullptr && s.n * s.c * s.h * s.w > 0) {
      check(cudaMemsetAsync(dx, 0, sizeof(float) * s.n * s.c * s.h * s.w, stream),
            "cudaMemsetAsync");
    }
    return;
  }
  const WorkspaceLayout ws = layout(s, workspace, true);
  winograd::with_kernel_size(s.kh, [&](auto r) {
    constexpr int R = decltype(r)::value;
    if (dweight != nullptr) winograd_weight_grad<R>(s, dy, x, dweight, chunk, ws, stream);
    if (dx != nullptr) {
      // dx is the convolution of dy (O channels, the output plane) with the
      // flipped kernel, padded by R - 1 - p, onto the input plane.
      const TileGrid g = winograd::tile_grid(s.oh, s.ow, s.h, s.w, R - 1 - s.ph, R - 1 - s.pw);
      winograd_convolve<R, true>(g, s.n, chunk, s.o, s.c, s.groups, dy, weight, nullptr, dx, ws,
                                 stream);
    }
  });
}

}  // namespace pk::cuda

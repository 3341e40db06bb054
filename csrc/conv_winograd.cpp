// Winograd convolution F(4x4, r x r) on the CPU, r = 3 or 5, stride 1, no
// dilation: the GPU's algorithm (cuda/conv_winograd.cu, whose comment has the
// math) with the same per-tile transforms (pykernels/winograd.h) and the
// packed SGEMM for the n*n products of each chunk.
//
// Per group and chunk of S images (T = S * tiles):
//   U_xi (O/g, C/g) = G f G^T        once per group (U' for dx: flipped filters)
//   V_xi (C/g, T)   = B^T d B        OpenMP over (channel, 64 tiles), SIMD
//                                    lanes of tiles (conv_winograd_<isa>.cpp)
//   M_xi (O/g, T)   = U_xi @ V_xi    n*n SGEMMs, whole ones per thread (for_points)
//   y               = A^T M A (+ bias)
// dx is the same with U' over dy; dW sums dU_xi (C/g, O/g) += V_xi @ dM_xi^T
// chunk after chunk (beta = 1), then G^T dU G. Every sum has a fixed order
// and the SGEMM is deterministic for any thread count, so 1 and 2 threads
// give bitwise the same results.
//
// Workspace (floats): n*n * C/g * O/g for U and as much for dU, plus per
// chunk n*n * (C/g + O/g) * S * max(tiles of the output, tiles of the input),
// S the most images whose part stays under kWinogradWorkspaceFloats (at
// least 1); kept for the thread's next call unless over Buffer::kKeptFloats.
// AlexNet conv2 at batch 16: chunks of 10 images, 9.6 M floats (36.6 MiB).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <stdexcept>
#include <string>

#include "pykernels/conv.h"
#include "pykernels/gemm.h"
#include "pykernels/isa.h"
#include "pykernels/parallel.h"
#include "pykernels/scratch.h"
#include "pykernels/winograd.h"
#include "pykernels/winograd_kernels.h"

namespace pk {
namespace {

using winograd::Matrices;
using winograd::TileGrid;

constexpr int64_t kWinogradWorkspaceFloats = int64_t{1} << 23;  // 32 MiB
// The cap in use: kWinogradWorkspaceFloats, or a test's (set_conv_winograd_workspace_cap).
std::atomic<int64_t> g_workspace_cap{kWinogradWorkspaceFloats};
constexpr int64_t kMinParallelTiles = 256;  // (tile, channel) pairs worth a thread team
constexpr int64_t kColumnBlock = 64;        // tiles per call of a lane kernel: whole lanes

const winograd_detail::Kernels& lanes_for_active_isa() {
  switch (active_isa()) {
    case Isa::Avx512: return winograd_detail::kAvx512;
    case Isa::Avx2: return winograd_detail::kAvx2;
    default: return winograd_detail::kGeneric;
  }
}

// One matrix per point xi: element (row, column) at data[xi * xi_stride + row * ld + column].
struct Transformed {
  float* data;
  int64_t ld, xi_stride;
};

int64_t group_points(const ConvShape& s) { return winograd::points(s.kh); }

int64_t chunk_columns(const ConvShape& s, int64_t chunk) {
  return chunk * std::max(winograd::output_tiles(s), winograd::input_tiles(s));
}

int64_t fixed_floats(const ConvShape& s) {
  return 2 * group_points(s) * s.c_per_group() * s.o_per_group();  // U, dU
}

int64_t floats_for(const ConvShape& s, int64_t chunk) {
  return fixed_floats(s) +
         group_points(s) * (s.c_per_group() + s.o_per_group()) * chunk_columns(s, chunk);
}

// The cap bounds a chunk's buffers, not the transformed weights on top: with
// those counted, AlexNet conv4 (384 -> 384, 10.6 M floats of U and dU) ran
// one image a chunk, its products 16 columns wide, at 0.50-0.67x im2col (1-2
// threads, AVX2 EPYC); with the whole batch of 16 a chunk, 1.5-1.7x faster.
int64_t chunk_images(const ConvShape& s) {
  if (s.n <= 1) return 1;
  const int64_t per_image = std::max<int64_t>(1, floats_for(s, 1) - fixed_floats(s));
  return std::clamp<int64_t>(g_workspace_cap.load() / per_image, 1, s.n);
}

// product(xi) for every point xi of [0, points). With at least
// kMinPointsPerThread points a thread, whole products per thread, each GEMM
// on one thread, so no GEMM is split and the threads never wait on each
// other; with fewer (many cores), one after another, each GEMM over all the
// threads. On a 2-core AVX2 EPYC, AlexNet conv4's forward (384 -> 384 at
// 13x13, batch 16) scaled 1.3x from 1 to 2 threads with the products split.
constexpr int64_t kMinPointsPerThread = 4;
// 0 = by the rule above, 1 = whole products per thread, 2 = each product split.
std::atomic<int> g_points_mode{0};

template <class Product>
void for_points(int64_t points, Product product) {
  const int threads = omp_get_max_threads(), mode = g_points_mode.load();
  const bool whole = mode == 0 ? points >= kMinPointsPerThread * threads : mode == 1;
  if (threads > 1 && whole) {
    for_items_on_team(points, threads, product, [] {});
    return;
  }
  for (int64_t xi = 0; xi < points; ++xi) product(xi);
}

// body(channel, column) for every pair, over the OpenMP threads when worth it.
template <class Body>
void for_tiles(int64_t channels, int64_t columns, Body body) {
  const bool worth = channels * columns >= kMinParallelTiles && omp_get_max_threads() > 1;
#pragma omp parallel for collapse(2) schedule(static) if (worth)
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t col = 0; col < columns; ++col) body(c, col);
}

// body(channel, col0, col1) for blocks of kColumnBlock columns.
template <class Body>
void for_column_blocks(int64_t channels, int64_t columns, Body body) {
  const int64_t blocks = (columns + kColumnBlock - 1) / kColumnBlock;
  for_tiles(channels, blocks, [&](int64_t c, int64_t block) {
    const int64_t col0 = block * kColumnBlock;
    body(c, col0, std::min(columns, col0 + kColumnBlock));
  });
}

// U_xi (rows, cols) for the group's filters (outs, ins, R, R): row o, column c
// is filter (o, c); FLIPPED (dx's U') has row c, column o, the filter rotated.
void transform_weights(const winograd_detail::Kernels& lanes, int r, bool flipped,
                       const float* weight, int64_t outs, int64_t ins, Transformed u) {
  const int64_t rows = flipped ? ins : outs, cols = flipped ? outs : ins, taps = int64_t(r) * r;
  const bool worth = rows * cols >= kMinParallelTiles && omp_get_max_threads() > 1;
#pragma omp parallel for schedule(static) if (worth)
  for (int64_t row = 0; row < rows; ++row) {
    const float* first = weight + (flipped ? row : row * ins) * taps;  // filter (o, c) of column 0
    lanes.weights(r, flipped, first, flipped ? ins * taps : taps, cols, u.data + row * u.ld,
                  u.xi_stride);
  }
}

// y = conv(x, weight) (+ bias) over a tile grid: the forward pass, and dx's
// (FLIPPED: weight is the forward's, x is dy, y is dx).
template <int R, bool FLIPPED>
void convolve(const TileGrid& g, int64_t images, int64_t chunk, int64_t in_channels,
              int64_t out_channels, int64_t groups, const float* x, const float* weight,
              const float* bias, float* y, float* workspace) {
  constexpr int64_t kPoints = int64_t(Matrices<R>::N) * Matrices<R>::N;
  const int64_t cg = in_channels / groups, og = out_channels / groups;
  const int64_t in_plane = int64_t(g.h) * g.w, out_plane = int64_t(g.oh) * g.ow;
  const int64_t in_image = in_channels * in_plane, out_image = out_channels * out_plane;
  const Transformed u{workspace, cg, og * cg};
  float* space = workspace + 2 * kPoints * cg * og;
  const winograd_detail::Kernels& lanes = lanes_for_active_isa();
  for (int64_t grp = 0; grp < groups; ++grp) {
    transform_weights(lanes, R, FLIPPED, weight + grp * og * cg * R * R, FLIPPED ? cg : og,
                      FLIPPED ? og : cg, u);
    for (int64_t i0 = 0; i0 < images; i0 += chunk) {
      const int64_t columns = std::min(chunk, images - i0) * g.tiles;
      const Transformed v{space, columns, cg * columns};
      const Transformed m{space + kPoints * cg * columns, columns, og * columns};
      const float* x0 = x + i0 * in_image + grp * cg * in_plane;
      for_column_blocks(cg, columns, [&](int64_t c, int64_t col0, int64_t col1) {
        lanes.input(R, g, x0 + c * in_plane, in_image, col0, col1, v.data + c * v.ld,
                    v.xi_stride);
      });
      for_points(kPoints, [&](int64_t xi) {
        sgemm(GemmAlgo::Auto, false, false, og, columns, cg, 1.0f, u.data + xi * u.xi_stride,
              u.ld, v.data + xi * v.xi_stride, v.ld, 0.0f, m.data + xi * m.xi_stride, m.ld);
      });
      float* y0 = y + i0 * out_image + grp * og * out_plane;
      const float* b0 = bias != nullptr ? bias + grp * og : nullptr;
      for_column_blocks(og, columns, [&](int64_t k, int64_t col0, int64_t col1) {
        lanes.output(R, g, m.data + k * m.ld, m.xi_stride, col0, col1, b0 != nullptr,
                     b0 != nullptr ? b0[k] : 0.0f, y0 + k * out_plane, out_image);
      });
    }
  }
}

template <int R>
void weight_grad(const ConvShape& s, const float* dy, const float* x, float* dweight,
                 int64_t chunk, float* workspace) {
  constexpr int64_t kPoints = int64_t(Matrices<R>::N) * Matrices<R>::N;
  const int64_t cg = s.c_per_group(), og = s.o_per_group();
  const TileGrid g = winograd::tile_grid(s.h, s.w, s.oh, s.ow, s.ph, s.pw);
  const int64_t in_plane = s.h * s.w, out_plane = s.oh * s.ow;
  const int64_t in_image = s.c * in_plane, out_image = s.o * out_plane;
  float* du = workspace + kPoints * cg * og;
  float* space = workspace + 2 * kPoints * cg * og;
  const winograd_detail::Kernels& lanes = lanes_for_active_isa();
  for (int64_t grp = 0; grp < s.groups; ++grp) {
    for (int64_t i0 = 0; i0 < s.n; i0 += chunk) {
      const int64_t columns = std::min(chunk, s.n - i0) * g.tiles;
      const Transformed v{space, columns, cg * columns};
      const Transformed dm{space + kPoints * cg * columns, columns, og * columns};
      const float* x0 = x + i0 * in_image + grp * cg * in_plane;
      const float* dy0 = dy + i0 * out_image + grp * og * out_plane;
      for_column_blocks(cg, columns, [&](int64_t c, int64_t col0, int64_t col1) {
        lanes.input(R, g, x0 + c * in_plane, in_image, col0, col1, v.data + c * v.ld,
                    v.xi_stride);
      });
      for_column_blocks(og, columns, [&](int64_t k, int64_t col0, int64_t col1) {
        lanes.grad_output(R, g, dy0 + k * out_plane, out_image, col0, col1,
                          dm.data + k * dm.ld, dm.xi_stride);
      });
      const float beta = i0 == 0 ? 0.0f : 1.0f;  // chunks summed in order
      for_points(kPoints, [&](int64_t xi) {
        sgemm(GemmAlgo::Auto, false, true, cg, og, columns, 1.0f, v.data + xi * v.xi_stride,
              v.ld, dm.data + xi * dm.xi_stride, dm.ld, beta, du + xi * cg * og, og);
      });
    }
    float* dw0 = dweight + grp * og * cg * R * R;
    const bool worth = cg * og >= kMinParallelTiles && omp_get_max_threads() > 1;
#pragma omp parallel for schedule(static) if (worth)
    for (int64_t c = 0; c < cg; ++c) {  // filters (0 .. og-1, c): dU row c
      lanes.weight_grad(R, du + c * og, cg * og, og, dw0 + c * R * R, cg * R * R);
    }
  }
}

// One call's scratch, kept for the next call on this thread (see Buffer).
thread_local Buffer t_workspace;

// This thread's scratch for one call; trimmed afterwards, so a call that
// needed more than Buffer keeps (big U and dU) does not pin it.
struct Workspace {
  float* data;
  int64_t chunk;
  explicit Workspace(const ConvShape& s) : chunk(chunk_images(s)) {
    data = t_workspace.get(floats_for(s, chunk));
  }
  ~Workspace() { t_workspace.trim(); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
};

// Why Winograd cannot run `s` here ("" when it can): the shared conditions,
// and in-plane indices that must fit the tile code's ints.
std::string unsupported_on_cpu(const ConvShape& s) {
  const std::string why = winograd::unsupported(s);
  if (!why.empty()) return why;
  if (s.h * s.w > INT_MAX || s.oh * s.ow > INT_MAX) {
    return "winograd: planes of 2^31 pixels or more are not supported";
  }
  return "";
}

void require_supported(const ConvShape& s) {
  const std::string why = unsupported_on_cpu(s);
  if (!why.empty()) throw std::invalid_argument(why);
}

}  // namespace

int64_t set_conv_winograd_workspace_cap(int64_t floats) {
  if (floats < 1) throw std::invalid_argument("cap must be >= 1 float");
  return g_workspace_cap.exchange(floats);
}

int set_conv_winograd_points_mode(int mode) {
  if (mode < 0 || mode > 2) throw std::invalid_argument("mode must be 0, 1 or 2");
  return g_points_mode.exchange(mode);
}

bool conv2d_winograd_preferred(const ConvShape& s) {
  // Measured at 2 threads (AVX-512), forward and forward+backward against
  // im2col, batch 1-128:
  // - 5x5 gains 1.15-2.1x from 32 channels per group in and out (AlexNet's
  //   conv2: 1.97x / 1.80x), breaks even at 16 -> 32 and loses below (0.2x at
  //   1 -> 6: products with K = C/g barely use the GEMM);
  // - 3x3 gains 1.13-1.77x from 128 channels on planes of 13x13 and more
  //   (AlexNet's conv3-5: 1.13-1.41x), but loses on small planes or fewer
  //   channels: 0.84x forward at 128 channels on 7x7 (4x4 tiles cover 8x8),
  //   0.6x at 48-64 channels on 8x8 to 13x13.
  // - either loses below about 96 tiles in the batch (products too thin for
  //   the GEMM): conv3 at batch 4 (64 tiles) 0.72x / 0.84x, conv2 at batch 1
  //   (49 tiles) 0.85x / 0.58x; batch 8 and 2 (128 and 98 tiles) win.
  constexpr int64_t kMinTiles = 96;
  if (!unsupported_on_cpu(s).empty() || s.n * winograd::output_tiles(s) < kMinTiles) {
    return false;
  }
  const int64_t fewest = std::min(s.c_per_group(), s.o_per_group());
  if (s.kh == 5) return fewest >= 32;
  return fewest >= 128 && std::min(s.oh, s.ow) >= 12;
}

int64_t conv2d_winograd_workspace(const ConvShape& s) {
  require_supported(s);
  return s.n == 0 ? 0 : floats_for(s, chunk_images(s));
}

void conv2d_winograd_forward(const ConvShape& s, const float* x, const float* weight,
                             const float* bias, float* y) {
  require_supported(s);
  if (s.n == 0 || s.o == 0) return;
  const Workspace ws(s);
  const TileGrid g = winograd::tile_grid(s.h, s.w, s.oh, s.ow, s.ph, s.pw);
  winograd::with_kernel_size(s.kh, [&](auto r) {
    convolve<decltype(r)::value, false>(g, s.n, ws.chunk, s.c, s.o, s.groups, x, weight, bias, y,
                                        ws.data);
  });
}

void conv2d_winograd_backward(const ConvShape& s, const float* dy, const float* x,
                              const float* weight, float* dx, float* dweight, float* dbias) {
  require_supported(s);
  if (dbias != nullptr) conv2d_bias_grad(s, dy, dbias);
  if (s.n == 0 || s.o == 0 || s.c == 0) {
    if (dweight != nullptr) std::fill_n(dweight, s.o * s.c_per_group() * s.kh * s.kw, 0.0f);
    if (dx != nullptr) std::fill_n(dx, s.n * s.c * s.h * s.w, 0.0f);
    return;
  }
  const Workspace ws(s);
  winograd::with_kernel_size(s.kh, [&](auto r) {
    constexpr int R = decltype(r)::value;
    if (dweight != nullptr) weight_grad<R>(s, dy, x, dweight, ws.chunk, ws.data);
    if (dx != nullptr) {
      const TileGrid g = winograd::tile_grid(s.oh, s.ow, s.h, s.w, R - 1 - s.ph, R - 1 - s.pw);
      convolve<R, true>(g, s.n, ws.chunk, s.o, s.c, s.groups, dy, weight, nullptr, dx,
                        ws.data);
    }
  });
}

}  // namespace pk

// 2-D convolution on the GPU as im2col + SGEMM, forward and backward, with
// groups; the same math and layouts as csrc/conv.cpp.
//
// Math, per chunk of S images and per group g (Kg = C/groups * kh * kw, P = OH * OW):
//   cols (C*kh*kw, S*P) = im2col of the chunk, the images' columns side by side
//   forward:       y  (O/g, S*P) = W_g (O/g, Kg) @ cols_g + bias
//   backward-wt:   dW_g (O/g, Kg) += dy_g (O/g, S*P) @ cols_g^T   (beta = 1 after chunk 0)
//   backward-data: dx = col2im(W_g^T @ dy_g)
//   bias:          db[o] = sum over images and pixels of dy[:, o]
// Layout: x NCHW, weight OIHW (W_g is a row-major (O/g, Kg) matrix), cols in
// torch.nn.functional.unfold's layout: row (c * kh + i) * kw + j, column oh * OW + ow.
// 1x1 / stride 1 / no padding ("pointwise"): the input plane is the column
// matrix, so each image is one GEMM straight from x (and into dx).
//
// Parallelisation and what bounds each kernel:
// - im2col: one thread per (output pixel, channel, image) -- pixels along x,
//   channels along y, images along z, so no 64-bit divisions -- writing its kh*kw
//   column entries; consecutive threads write consecutive columns (coalesced),
//   and read x at stride sw (coalesced for stride 1, cached otherwise).
//   Memory-bound: kh*kw writes per input read.
// - col2im: a gather, one thread per input pixel summing the column entries
//   that read it, in (ki, kj) order, so it is deterministic and bitwise the
//   CPU col2im. Only taps congruent to the pixel modulo the stride can hit it:
//   the loops start at the first such tap and step by s / gcd(s, d), so an
//   11x11 stride-4 kernel visits 9 taps per pixel, not 121.
// - The GEMMs (pk::cuda::sgemm) do the arithmetic. Chunks make them wide:
//   N = S*P columns, S as large as the workspace cap allows (the whole batch
//   for AlexNet's conv3-5 at batch 128), so the forward and dx GEMMs fill the
//   GPU. The weight-gradient GEMM has only (O/g) x Kg outputs (3 tiles for
//   AlexNet's conv1) and a long K = S*P, so sgemm's auto cuts K into slabs
//   across the idle SMs (split-K, summed in a fixed order); chunks are summed
//   in order with beta = 1: deterministic either way.
// - Moving a chunk between the batch layout (S, O, P) and the GEMM's side-by-side
//   layout (O, S*P), with the bias added on the way out: contiguous rows of P,
//   coalesced on both sides.
// - Bias gradient: blocks of (channel, part of the images), a fixed split of
//   each part's (image, pixel) range over its threads and a warp-shuffle
//   tree, then the parts in order: deterministic, no atomics.
//
// Workspace (floats), from the caller (Python allocates it with CuPy's pool):
//   (C*kh*kw [not pointwise] + O [S > 1]) * S * OH*OW,
// S = the largest chunk with that <= the cap (kConvWorkspaceFloats, 2^28 floats =
// 1 GiB by default), at least 1, at most N. So it never exceeds the cap unless
// one image's columns alone do (then it is one image's C*kh*kw*OH*OW).
#include "conv.cuh"

#include <algorithm>
#include <climits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "conv_winograd.cuh"
#include "gemm.cuh"
#include "pykernels/conv_geometry.h"

namespace pk::cuda {
namespace {

// In-plane geometry for the kernels, in 32-bit ints (finish() guarantees every
// in-plane index fits).
struct PlaneDims {
  int h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
  int period_h, period_w;  // taps between two that can read one pixel: s / gcd(s, d)
};

// Where column entry (image s, row r, column p) lives: s * image_stride + r * ld + p.
struct ColsLayout {
  int64_t image_stride, ld;
};

PlaneDims plane_dims(const ConvGeometry& s) {
  auto period = [](int64_t stride, int64_t dilation) {
    return int(stride / std::gcd(stride, dilation));
  };
  return {int(s.h),  int(s.w),  int(s.oh), int(s.ow), int(s.kh), int(s.kw), int(s.sh),
          int(s.sw), int(s.ph), int(s.pw), int(s.dh), int(s.dw), period(s.sh, s.dh),
          period(s.sw, s.dw)};
}

// Launch shape for kernels over (plane, channel, image): pixels along x in
// blocks of at most 256 (a warp multiple, so small planes waste little),
// channels along y and images along z, each grid-strided past 65535.
struct PlaneLaunch {
  dim3 grid, block;
};

PlaneLaunch plane_launch(int64_t plane, int64_t channels, int64_t images) {
  const int64_t threads = std::min<int64_t>(256, (plane + 31) / 32 * 32);
  return {dim3(unsigned((plane + threads - 1) / threads),
               unsigned(std::min<int64_t>(channels, 65535)),
               unsigned(std::min<int64_t>(images, 65535))),
          dim3(unsigned(threads))};
}

__global__ void im2col_kernel(PlaneDims d, const float* __restrict__ x, float* __restrict__ cols,
                              int64_t images, int64_t channels, ColsLayout layout) {
  const int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= d.oh * d.ow) return;
  const int oy = p / d.ow, ox = p - oy * d.ow;
  const int y0 = oy * d.sh - d.ph, x0 = ox * d.sw - d.pw;
  const int64_t in_plane = int64_t(d.h) * d.w, taps = int64_t(d.kh) * d.kw;
  for (int64_t s = blockIdx.z; s < images; s += gridDim.z) {
    for (int64_t c = blockIdx.y; c < channels; c += gridDim.y) {
      const float* xc = x + (s * channels + c) * in_plane;
      float* out = cols + s * layout.image_stride + c * taps * layout.ld + p;
      for (int ki = 0; ki < d.kh; ++ki) {
        const int iy = y0 + ki * d.dh;
        const bool row_inside = unsigned(iy) < unsigned(d.h);
        for (int kj = 0; kj < d.kw; ++kj) {
          const int ix = x0 + kj * d.dw;
          const bool inside = row_inside && unsigned(ix) < unsigned(d.w);
          out[(ki * d.kw + kj) * layout.ld] = inside ? xc[int64_t(iy) * d.w + ix] : 0.0f;
        }
      }
    }
  }
}

// The first tap k < min(taps, period) with (t - k * dilation) a non-negative
// multiple of stride, or `taps` when there is none: the taps that read padded
// position t are k, k + period, ... while t - k * dilation >= 0.
__device__ __forceinline__ int first_tap(int t, int dilation, int stride, int period, int taps) {
  const int last = min(taps, period);
  for (int k = 0; k < last; ++k) {
    const int r = t - k * dilation;
    if (r < 0) break;
    if (r % stride == 0) return k;
  }
  return taps;
}

__global__ void col2im_kernel(PlaneDims d, const float* __restrict__ cols, float* __restrict__ x,
                              int64_t images, int64_t channels, ColsLayout layout) {
  const int q = blockIdx.x * blockDim.x + threadIdx.x;
  if (q >= d.h * d.w) return;
  const int iy = q / d.w, ix = q - iy * d.w;
  const int ty = iy + d.ph, tx = ix + d.pw;  // position in the padded input
  const int ki0 = first_tap(ty, d.dh, d.sh, d.period_h, d.kh);
  const int kj0 = first_tap(tx, d.dw, d.sw, d.period_w, d.kw);
  const int64_t in_plane = int64_t(d.h) * d.w, taps = int64_t(d.kh) * d.kw;
  for (int64_t s = blockIdx.z; s < images; s += gridDim.z) {
    for (int64_t c = blockIdx.y; c < channels; c += gridDim.y) {
      const float* cc = cols + s * layout.image_stride + c * taps * layout.ld;
      float acc = 0.0f;
      for (int ki = ki0; ki < d.kh; ki += d.period_h) {
        const int ry = ty - ki * d.dh;
        if (ry < 0) break;
        const int oy = ry / d.sh;
        if (oy >= d.oh) continue;
        for (int kj = kj0; kj < d.kw; kj += d.period_w) {
          const int rx = tx - kj * d.dw;
          if (rx < 0) break;
          const int ox = rx / d.sw;
          if (ox >= d.ow) continue;
          acc += cc[(ki * d.kw + kj) * layout.ld + oy * d.ow + ox];
        }
      }
      x[(s * channels + c) * in_plane + q] = acc;
    }
  }
}

// Rows of `plane` floats between the batch layout [image][channel][p] and the
// GEMM's side-by-side layout [channel][image][p]; TO_BATCH adds bias[channel]
// (when not null) on the way. src may equal dst (one image: both layouts agree).
template <bool TO_BATCH>
__global__ void move_rows(const float* src, const float* bias, float* dst, int64_t images,
                          int64_t channels, int plane) {
  const int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= plane) return;
  for (int64_t s = blockIdx.z; s < images; s += gridDim.z) {
    for (int64_t o = blockIdx.y; o < channels; o += gridDim.y) {
      const int64_t batch = (s * channels + o) * plane + p, side = (o * images + s) * plane + p;
      float v = src[TO_BATCH ? side : batch];
      if (TO_BATCH && bias != nullptr) v += bias[o];
      dst[TO_BATCH ? batch : side] = v;
    }
  }
}

constexpr int kReduceThreads = 256;

// Sum of `v` over the block, valid in thread 0; a fixed shuffle tree, so the
// result does not depend on timing. Ends in a barrier: `warp_sums` is free again.
__device__ __forceinline__ float block_sum(float v, float* warp_sums) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  float total = 0.0f;
  if (warp == 0) {
    total = lane < kReduceThreads / 32 ? warp_sums[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2)
      total += __shfl_xor_sync(0xffffffffu, total, offset);
  }
  __syncthreads();
  return total;
}

// db[o] = sum of dy[:, o, :], in two passes. Block (part, o) sums channel o
// over the images of its part (a block per channel alone left most of the GPU
// idle: 64 blocks for AlexNet's conv1, 149 us for its 25 MB at batch 32 on an
// H200, 3% of the memory bandwidth); thread t takes the flattened (image,
// pixel) indices t, t + 256, ... of the part, stepped without divisions.
// Then bias_grad_sum adds each channel's parts in order.
__global__ void __launch_bounds__(kReduceThreads)
    bias_grad_parts(const float* __restrict__ dy, float* __restrict__ sums, int64_t images,
                    int64_t channels, int64_t plane, int64_t per_part) {
  __shared__ float warp_sums[kReduceThreads / 32];
  const int64_t step_i = kReduceThreads / plane, step_p = kReduceThreads % plane;
  const int64_t first = blockIdx.x * per_part, last = min(images, first + per_part);
  for (int64_t o = blockIdx.y; o < channels; o += gridDim.y) {
    float acc = 0.0f;
    int64_t i = first + threadIdx.x / plane, p = threadIdx.x % plane;
    while (i < last) {
      acc += dy[(i * channels + o) * plane + p];
      i += step_i;
      p += step_p;
      if (p >= plane) {
        p -= plane;
        ++i;
      }
    }
    const float total = block_sum(acc, warp_sums);
    if (threadIdx.x == 0) sums[o * gridDim.x + blockIdx.x] = total;
  }
}

__global__ void bias_grad_sum(const float* __restrict__ sums, float* __restrict__ db,
                              int64_t channels, int64_t parts) {
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < channels;
       o += int64_t(gridDim.x) * blockDim.x) {
    float total = 0.0f;
    for (int64_t q = 0; q < parts; ++q) total += sums[o * parts + q];
    db[o] = total;
  }
}

// ---- launch helpers --------------------------------------------------------

void launch_im2col(const ConvGeometry& s, const float* x, float* cols, int64_t images,
                   ColsLayout layout, cudaStream_t stream) {
  if (images == 0 || s.c == 0) return;
  const PlaneLaunch l = plane_launch(s.out_plane(), s.c, images);
  PK_LAUNCH(l.grid, l.block, 0, stream, im2col_kernel)(plane_dims(s), x, cols, images, s.c,
                                                       layout);
  check_launch("im2col_kernel");
}

void launch_col2im(const ConvGeometry& s, const float* cols, float* x, int64_t images,
                   ColsLayout layout, cudaStream_t stream) {
  if (images == 0 || s.c == 0 || s.h * s.w == 0) return;
  const PlaneLaunch l = plane_launch(s.h * s.w, s.c, images);
  PK_LAUNCH(l.grid, l.block, 0, stream, col2im_kernel)(plane_dims(s), cols, x, images, s.c,
                                                       layout);
  check_launch("col2im_kernel");
}

template <bool TO_BATCH>
void launch_move_rows(const float* src, const float* bias, float* dst, int64_t images,
                      int64_t channels, int64_t plane, cudaStream_t stream) {
  if (images == 0 || channels == 0) return;
  const PlaneLaunch l = plane_launch(plane, channels, images);
  PK_LAUNCH(l.grid, l.block, 0, stream, move_rows<TO_BATCH>)(src, bias, dst, images, channels,
                                                             int(plane));
  check_launch("move_rows");
}

// The chunk [i0, i0 + count) in the GEMMs' layout.
struct Chunk {
  int64_t i0, count, width;  // width = count * P: columns, the ld of every chunk matrix
};

Chunk chunk_at(const ConvGeometry& s, int64_t i0, int64_t chunk) {
  const int64_t count = std::min(chunk, s.n - i0);
  return {i0, count, count * s.out_plane()};
}

// The chunk's column matrix: x itself when pointwise, else im2col into `cols`.
const float* chunk_columns(const ConvGeometry& s, const float* x, const Chunk& k, float* cols,
                           cudaStream_t stream) {
  const float* first = x + k.i0 * s.c * s.h * s.w;
  if (s.is_pointwise()) return first;
  launch_im2col(s, first, cols, k.count, {s.out_plane(), k.width}, stream);
  return cols;
}

int64_t columns_floats(const ConvGeometry& s, int64_t chunk) {
  return s.is_pointwise() ? 0 : s.col_rows() * chunk * s.out_plane();
}

// Planes are indexed with int inside the kernels, and a grid rounds the
// plane up to whole 256-thread blocks: keep that rounded count in range too.
bool fits_int(int64_t v) { return v <= INT_MAX - 256; }

bool mul_fits(int64_t a, int64_t b) { return a == 0 || b <= INT64_MAX / a; }

}  // namespace

// ---- public entry points -----------------------------------------------------

void ConvGeometry::finish() {
  auto fail = [](const std::string& msg) { throw std::invalid_argument(msg); };
  // The kernels index within a plane in 32-bit ints: every extent below 2^29
  // keeps padded sizes and dilated spans below 2^31.
  finish_conv_geometry(*this, int64_t{1} << 29, " for the GPU kernels");
  if (!fits_int(h * w) || !fits_int(oh * ow)) {
    fail("convolution too large for the GPU kernels: input plane " + conv_pair_str(h, w) +
         " and output plane " + conv_pair_str(oh, ow) + " must each have below 2^31 pixels");
  }
  const int64_t planes = std::max(h * w, oh * ow), channels = std::max(c, o);
  const bool fits = c <= INT64_MAX / 2 && o <= INT64_MAX / 2 && mul_fits(c, kh * kw) &&
                    mul_fits(c * kh * kw + o, oh * ow) &&
                    mul_fits((c * kh * kw + o) * oh * ow, std::max<int64_t>(n, 1)) &&
                    mul_fits(channels, planes) && mul_fits(n, channels * planes);
  if (!fits) fail("convolution too large: its column matrix would not fit in memory");
}

// The part count depends on the shape only (about kTargetBlocks blocks, never
// on the device), so a shape gets the same sums on any GPU; without memory for
// the parts' sums, one part per channel writes db directly.
void conv2d_bias_grad(const ConvGeometry& s, const float* dy, float* db, cudaStream_t stream) {
  constexpr int64_t kTargetBlocks = 1024, kMaxGridY = 65535;
  const int64_t plane = s.out_plane();
  const int64_t wanted = std::max<int64_t>(1, std::min(s.n, kTargetBlocks / s.o));
  int64_t per_part = std::max<int64_t>(1, (s.n + wanted - 1) / wanted);
  int64_t parts = std::max<int64_t>(1, (s.n + per_part - 1) / per_part);  // none empty
  const StreamScratch sums(parts > 1 ? s.o * parts : 0, stream);
  if (sums.data() == nullptr) {
    parts = 1;
    per_part = std::max<int64_t>(1, s.n);
  }
  float* out = parts > 1 ? sums.data() : db;
  const dim3 grid(unsigned(parts), unsigned(std::min(s.o, kMaxGridY)));
  PK_LAUNCH(grid, kReduceThreads, 0, stream, bias_grad_parts)(dy, out, s.n, s.o, plane, per_part);
  check_launch("bias_grad_parts");
  if (parts > 1) {
    PK_LAUNCH(blocks_for(s.o, kReduceThreads, 65535u), kReduceThreads, 0, stream,
              bias_grad_sum)(out, db, s.o, parts);
    check_launch("bias_grad_sum");
  }
}

ConvAlgo conv2d_algo(const ConvGeometry& s, ConvAlgo requested) {
  switch (requested) {
    case ConvAlgo::Auto:
      return winograd_preferred(s) ? ConvAlgo::Winograd : ConvAlgo::Im2col;
    case ConvAlgo::Im2col:
      return ConvAlgo::Im2col;
    case ConvAlgo::Winograd: {
      const std::string why = winograd_unsupported(s);
      if (!why.empty()) throw std::invalid_argument(why);
      return ConvAlgo::Winograd;
    }
  }
  throw std::invalid_argument("unknown convolution algorithm " + std::to_string(int(requested)));
}

int64_t conv2d_chunk_images(const ConvGeometry& s, int64_t max_floats, ConvAlgo algo,
                            bool backward) {
  if (algo == ConvAlgo::Winograd) return winograd_chunk_images(s, max_floats, backward);
  if (s.is_pointwise() || s.n <= 1) return 1;
  const int64_t per_image = (s.col_rows() + s.o) * s.out_plane();
  return std::clamp<int64_t>(max_floats / std::max<int64_t>(1, per_image), 1, s.n);
}

int64_t conv2d_workspace_floats(const ConvGeometry& s, int64_t chunk, ConvAlgo algo,
                                bool backward) {
  if (algo == ConvAlgo::Winograd) return winograd_workspace_floats(s, chunk, backward);
  if (s.n == 0) return 0;
  chunk = std::clamp<int64_t>(chunk, 1, s.n);
  const int64_t out = chunk > 1 ? s.o * chunk * s.out_plane() : 0;
  return columns_floats(s, chunk) + out;
}

void im2col(const ConvGeometry& s, const float* x, float* cols, cudaStream_t stream) {
  launch_im2col(s, x, cols, s.n, {s.col_rows() * s.out_plane(), s.out_plane()}, stream);
}

void col2im(const ConvGeometry& s, const float* cols, float* x, cudaStream_t stream) {
  launch_col2im(s, cols, x, s.n, {s.col_rows() * s.out_plane(), s.out_plane()}, stream);
}

void conv2d_forward(const ConvGeometry& s, const float* x, const float* weight, const float* bias,
                    float* y, float* workspace, int64_t chunk, cudaStream_t stream,
                    ConvAlgo algo) {
  if (algo == ConvAlgo::Winograd) {
    return winograd_forward(s, x, weight, bias, y, workspace, chunk, stream);
  }
  if (s.n == 0 || s.o == 0) return;
  if (s.is_pointwise()) chunk = 1;
  const int64_t plane = s.out_plane(), og = s.o_per_group(), kg = s.c_per_group() * s.kh * s.kw;
  float* out_buffer = workspace + columns_floats(s, chunk);
  for (int64_t i0 = 0; i0 < s.n; i0 += chunk) {
    const Chunk k = chunk_at(s, i0, chunk);
    const float* cols = chunk_columns(s, x, k, workspace, stream);
    // One image: the GEMM writes y directly (both layouts agree).
    float* y_chunk = y + k.i0 * s.o * plane;
    float* out = k.count > 1 ? out_buffer : y_chunk;
    for (int64_t g = 0; g < s.groups; ++g) {
      sgemm(GemmAlgo::Auto, false, false, og, k.width, kg, 1.0f, weight + g * og * kg, kg,
            cols + g * kg * k.width, k.width, 0.0f, out + g * og * k.width, k.width, stream);
    }
    // The bias is added after the product, as on the CPU.
    if (k.count > 1 || bias != nullptr) {
      launch_move_rows<true>(out, bias, y_chunk, k.count, s.o, plane, stream);
    }
  }
}

void conv2d_backward(const ConvGeometry& s, const float* dy, const float* x, const float* weight,
                     float* dx, float* dweight, float* dbias, float* workspace, int64_t chunk,
                     cudaStream_t stream, ConvAlgo algo) {
  if (algo == ConvAlgo::Winograd) {
    return winograd_backward(s, dy, x, weight, dx, dweight, dbias, workspace, chunk, stream);
  }
  const int64_t plane = s.out_plane(), og = s.o_per_group(), kg = s.c_per_group() * s.kh * s.kw;
  if (dbias != nullptr && s.o > 0) conv2d_bias_grad(s, dy, dbias, stream);
  if (dweight != nullptr && s.n == 0 && s.o * kg > 0) {
    check(cudaMemsetAsync(dweight, 0, sizeof(float) * s.o * kg, stream), "cudaMemsetAsync");
  }
  if (s.n == 0 || s.o == 0 || (dx == nullptr && dweight == nullptr)) return;
  if (s.is_pointwise()) chunk = 1;
  float* cols_buffer = workspace;
  float* dy_buffer = workspace + columns_floats(s, chunk);
  for (int64_t i0 = 0; i0 < s.n; i0 += chunk) {
    const Chunk k = chunk_at(s, i0, chunk);
    const float* dmat = dy + k.i0 * s.o * plane;  // one image: already (O, P)
    if (k.count > 1) {
      launch_move_rows<false>(dmat, nullptr, dy_buffer, k.count, s.o, plane, stream);
      dmat = dy_buffer;
    }
    if (dweight != nullptr) {
      const float* cols = chunk_columns(s, x, k, cols_buffer, stream);
      const float beta = i0 == 0 ? 0.0f : 1.0f;  // chunks summed in order
      for (int64_t g = 0; g < s.groups; ++g) {
        sgemm(GemmAlgo::Auto, false, true, og, kg, k.width, 1.0f, dmat + g * og * k.width,
              k.width, cols + g * kg * k.width, k.width, beta, dweight + g * og * kg, kg, stream);
      }
    }
    if (dx != nullptr) {
      float* dx_chunk = dx + k.i0 * s.c * s.h * s.w;
      // (the stream orders this after the weight-gradient GEMM read cols_buffer)
      float* dcols = s.is_pointwise() ? dx_chunk : cols_buffer;
      for (int64_t g = 0; g < s.groups; ++g) {
        sgemm(GemmAlgo::Auto, true, false, kg, k.width, og, 1.0f, weight + g * og * kg, kg,
              dmat + g * og * k.width, k.width, 0.0f, dcols + g * kg * k.width, k.width, stream);
      }
      if (!s.is_pointwise()) {
        launch_col2im(s, dcols, dx_chunk, k.count, {plane, k.width}, stream);
      }
    }
  }
}

}  // namespace pk::cuda

// 2-D max, average and adaptive average pooling on the GPU, forward and
// backward, on NCHW float32 viewed as `planes` = N*C independent H x W planes
// (the math and layouts of csrc/pool.cpp):
//   max:      y[o] = max over window(o), padding = -inf, a NaN wins (the last
//             one in row-major order, as torch); indices[o] = h * W + w (int64).
//             dx[i] = sum of dy[o] over the o of i's plane with indices[o] == i.
//   avg:      y[o] = window sum / its count (count_include_pad=True);
//             dx[i] = sum over the windows o holding i of dy[o] / count(o).
//   adaptive: bins floor(o*H/OH) .. ceil((o+1)*H/OH); dx as for avg.
// Parallelisation, all without atomics (every output is one thread's sum in
// one fixed order, so results are bitwise repeatable):
// - forward passes and the average backward passes: one thread per output
//   (per input for backward), consecutive threads on consecutive elements of
//   a row, so stores are coalesced and loads of overlapping windows hit L1/L2.
//   Backward passes are gathers: each input sums its windows in increasing o,
//   the CPU's scatter order, so GPU and CPU gradients are bitwise equal.
// - global average pooling (1 x 1 output, ResNet): one warp per plane, lanes
//   stride the plane (coalesced) and a shuffle reduction sums the lanes.
// - max-pool backward gets no window geometry (its API is dy, indices, input
//   shape), so one block per plane first finds, from the indices themselves,
//   the span of argmax rows of each output row and of argmax columns of each
//   output column, turns them into the range of output rows (columns) that
//   may point at each input row (column), and then gathers: each input scans
//   only that rectangle of outputs, in increasing o. For real pooling windows
//   this rectangle is the usual ceil(k/s)^2 candidates. Sides over 1024 (the
//   shared-memory tables) fall back to one thread per plane scattering in the
//   CPU's order: slow, but exact and deterministic.
// All these kernels are memory-bound: a handful of flops per element moved.
// Index arithmetic is 32-bit when the element count allows (64-bit division
// costs far more than the loads it addresses).
#include "pool.cuh"

#include <algorithm>
#include <climits>
#include <type_traits>

namespace pk::cuda {
namespace {

constexpr int kThreads = 256;
constexpr unsigned int kMaxBlocks = 65535u * 4u;
constexpr int kMaxGatherSide = 1024;  // in/out H and W limit of the max-pool gather tables
constexpr int16_t kNoRow = 32767;     // "no argmax here": above any row of a gathered plane

// Per-plane geometry; every field fits in an int (checked by the binding).
struct Geom {
  int in_h, in_w, out_h, out_w, kh, kw, sh, sw, ph, pw;
};

Geom geom_of(const Pool2dShape& s) {
  return {int(s.in_h), int(s.in_w), int(s.out_h), int(s.out_w), int(s.kernel_h),
          int(s.kernel_w), int(s.stride_h), int(s.stride_w), int(s.pad_h), int(s.pad_w)};
}

struct Span {
  int lo, hi;  // [lo, hi)
};

// Window rows (or columns) of output position o, clipped to the input.
__device__ __forceinline__ Span window(int o, int stride, int pad, int kernel, int size) {
  const int start = o * stride - pad;
  return {max(start, 0), min(start + kernel, size)};
}

// count_include_pad=True: padding counts, what lies past the padding does not.
__device__ __forceinline__ float avg_count(const Geom& g, int oh, int ow) {
  const int start_h = oh * g.sh - g.ph, start_w = ow * g.sw - g.pw;
  const int64_t rows = min(start_h + g.kh, g.in_h + g.ph) - start_h;
  const int64_t cols = min(start_w + g.kw, g.in_w + g.pw) - start_w;
  return float(rows * cols);
}

// Output positions [lo, hi) whose windows hold input position i.
__device__ __forceinline__ Span windows_holding(int i, int stride, int pad, int kernel, int out) {
  const int lo = i + pad < kernel ? 0 : (i + pad - kernel) / stride + 1;
  return {lo, min(out, (i + pad) / stride + 1)};
}

__device__ __forceinline__ Span adaptive_bin(int o, int out, int size) {
  return {int(int64_t(o) * size / out), int((int64_t(o + 1) * size + out - 1) / out)};
}

// Output bins [lo, hi) holding input position i: floor(i*OUT/IN) .. ceil((i+1)*OUT/IN).
__device__ __forceinline__ Span adaptive_bins_holding(int i, int size, int out) {
  return {int(int64_t(i) * out / size), int((int64_t(i + 1) * out + size - 1) / size)};
}

// Position (plane, row, column) of flat element e of planes of rows x cols.
template <typename I>
struct Where {
  I plane;
  int row, col;
};

template <typename I>
__device__ __forceinline__ Where<I> locate(I e, int rows, int cols) {
  if constexpr (sizeof(I) == 4) {  // e >= 0: unsigned division is the shorter sequence
    const unsigned r = unsigned(e) / unsigned(cols), u_rows = unsigned(rows);
    return {I(r / u_rows), int(r % u_rows), int(unsigned(e) - r * unsigned(cols))};
  } else {
    const I r = e / cols;
    return {r / rows, int(r % rows), int(e - r * cols)};
  }
}

// Grid-stride loop bounds: Index is int when the element count is small
// enough that index + stride cannot overflow it.
template <typename I>
__device__ __forceinline__ I first_index() {
  return I(blockIdx.x) * I(blockDim.x) + I(threadIdx.x);
}
template <typename I>
__device__ __forceinline__ I grid_stride() {
  return I(gridDim.x) * I(blockDim.x);
}

// Calls f(v, h, w) for the values v of output `at`'s window, clipped to the
// input, in row-major order. With the window size known at compile time
// (KH, KW > 0) every load is issued before the first call, so a thread's
// loads are in flight together: each reads at its position clamped into the
// plane (always a valid address, so no predicate per load: a GPU has 7) and
// the positions outside are skipped afterwards. With KH = KW = 0 (any size)
// the loop bounds are the clipped window. (On an H200, 3x3/2 max pooling of
// a 98 MiB activation took 66 us with the general loop, at 52% of DRAM
// bandwidth; 62 us with predicated loads, which issued three at a time.)
template <int KH, int KW, typename I, class F>
__device__ __forceinline__ void for_window(const float* __restrict__ x, const Geom& g,
                                           const Where<I>& at, F f) {
  const float* plane = x + int64_t(at.plane) * g.in_h * g.in_w;
  if constexpr (KH > 0) {
    // Unsigned offsets: one wide multiply-add per load, no sign extension.
    // Clamping needs a nonempty plane, which the binding guarantees.
    const int row0 = at.row * g.sh - g.ph, col0 = at.col * g.sw - g.pw;
    const float* row_start[KH];
    unsigned col_at[KW];
    bool row_inside[KH], col_inside[KW];
#pragma unroll
    for (int r = 0; r < KH; ++r) {
      row_inside[r] = unsigned(row0 + r) < unsigned(g.in_h);
      row_start[r] = plane + unsigned(min(max(row0 + r, 0), g.in_h - 1)) * unsigned(g.in_w);
    }
#pragma unroll
    for (int c = 0; c < KW; ++c) {
      col_inside[c] = unsigned(col0 + c) < unsigned(g.in_w);
      col_at[c] = unsigned(min(max(col0 + c, 0), g.in_w - 1));
    }
    float v[KH][KW];
#pragma unroll
    for (int r = 0; r < KH; ++r) {
#pragma unroll
      for (int c = 0; c < KW; ++c) v[r][c] = row_start[r][col_at[c]];
    }
    asm volatile("" ::: "memory");  // keeps the loads above the first use
#pragma unroll
    for (int r = 0; r < KH; ++r) {
#pragma unroll
      for (int c = 0; c < KW; ++c) {
        if (row_inside[r] && col_inside[c]) f(v[r][c], row0 + r, col0 + c);
      }
    }
  } else {
    const Span rows = window(at.row, g.sh, g.ph, g.kh, g.in_h);
    const Span cols = window(at.col, g.sw, g.pw, g.kw, g.in_w);
    for (int h = rows.lo; h < rows.hi; ++h) {
      for (int w = cols.lo; w < cols.hi; ++w) f(plane[h * g.in_w + w], h, w);
    }
  }
}

template <int KH, int KW, typename I>
__global__ void max_pool_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                        int64_t* __restrict__ indices, I total, Geom g) {
  for (I o = first_index<I>(); o < total; o += grid_stride<I>()) {
    const Where<I> at = locate(o, g.out_h, g.out_w);
    const Span rows = window(at.row, g.sh, g.ph, g.kh, g.in_h);
    const Span cols = window(at.col, g.sw, g.pw, g.kw, g.in_w);
    float best = __uint_as_float(0xFF800000u);  // -inf
    int best_index = rows.lo * g.in_w + cols.lo;
    for_window<KH, KW>(x, g, at, [&](float v, int h, int w) {
      if (v > best || v != v) {  // first strict maximum; a NaN always taken
        best = v;
        best_index = h * g.in_w + w;
      }
    });
    y[o] = best;
    indices[o] = best_index;
  }
}

template <int KH, int KW, typename I>
__global__ void avg_pool_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                        I total, Geom g) {
  for (I o = first_index<I>(); o < total; o += grid_stride<I>()) {
    const Where<I> at = locate(o, g.out_h, g.out_w);
    float sum = 0.0f;
    for_window<KH, KW>(x, g, at, [&](float v, int, int) { sum += v; });
    y[o] = sum / avg_count(g, at.row, at.col);
  }
}

template <typename I>
__global__ void avg_pool_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx,
                                         I total, Geom g) {
  for (I i = first_index<I>(); i < total; i += grid_stride<I>()) {
    const Where<I> at = locate(i, g.in_h, g.in_w);
    const float* grad = dy + int64_t(at.plane) * g.out_h * g.out_w;
    const Span rows = windows_holding(at.row, g.sh, g.ph, g.kh, g.out_h);
    const Span cols = windows_holding(at.col, g.sw, g.pw, g.kw, g.out_w);
    float sum = 0.0f;
    for (int oh = rows.lo; oh < rows.hi; ++oh) {
      for (int ow = cols.lo; ow < cols.hi; ++ow)
        sum += grad[oh * g.out_w + ow] / avg_count(g, oh, ow);
    }
    dx[i] = sum;
  }
}

template <typename I>
__global__ void adaptive_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                        I total, Geom g) {
  for (I o = first_index<I>(); o < total; o += grid_stride<I>()) {
    const Where<I> at = locate(o, g.out_h, g.out_w);
    const float* plane = x + int64_t(at.plane) * g.in_h * g.in_w;
    const Span rows = adaptive_bin(at.row, g.out_h, g.in_h);
    const Span cols = adaptive_bin(at.col, g.out_w, g.in_w);
    float sum = 0.0f;
    for (int h = rows.lo; h < rows.hi; ++h) {
      for (int w = cols.lo; w < cols.hi; ++w) sum += plane[h * g.in_w + w];
    }
    y[o] = sum / float(int64_t(rows.hi - rows.lo) * (cols.hi - cols.lo));
  }
}

template <typename I>
__global__ void adaptive_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx,
                                         I total, Geom g) {
  for (I i = first_index<I>(); i < total; i += grid_stride<I>()) {
    const Where<I> at = locate(i, g.in_h, g.in_w);
    const float* grad = dy + int64_t(at.plane) * g.out_h * g.out_w;
    const Span out_rows = adaptive_bins_holding(at.row, g.in_h, g.out_h);
    const Span out_cols = adaptive_bins_holding(at.col, g.in_w, g.out_w);
    float sum = 0.0f;
    for (int oh = out_rows.lo; oh < out_rows.hi; ++oh) {
      const Span rows = adaptive_bin(oh, g.out_h, g.in_h);
      for (int ow = out_cols.lo; ow < out_cols.hi; ++ow) {
        const Span cols = adaptive_bin(ow, g.out_w, g.in_w);
        sum += grad[oh * g.out_w + ow] / float(int64_t(rows.hi - rows.lo) * (cols.hi - cols.lo));
      }
    }
    dx[i] = sum;
  }
}

template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = op(v, __shfl_xor_sync(0xFFFFFFFFu, v, offset));
  }
  return v;
}

struct Add {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Min {
  __device__ int operator()(int a, int b) const { return min(a, b); }
};
struct Max {
  __device__ int operator()(int a, int b) const { return max(a, b); }
};

// One warp per plane (blockDim a multiple of 32, so a warp never straddles
// two planes' loop trips): lanes sum strided elements, a butterfly adds them.
__global__ void global_average_kernel(const float* __restrict__ x, float* __restrict__ y,
                                      int64_t planes, int plane_size) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t p = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; p < planes;
       p += warps) {
    const float* plane = x + p * plane_size;
    float sum = 0.0f;
    for (int j = lane; j < plane_size; j += 32) sum += plane[j];
    sum = warp_reduce(sum, Add{});
    if (lane == 0) y[p] = sum / float(plane_size);
  }
}

// ---- max-pool backward: the gather --------------------------------------------

// Per-plane tables of the gather (see the file comment).
struct GatherTables {
  int16_t row_lo[kMaxGatherSide], row_hi[kMaxGatherSide];  // argmax rows of output row oh
  int16_t col_lo[kMaxGatherSide], col_hi[kMaxGatherSide];  // argmax columns of output col ow
  int16_t first_oh[kMaxGatherSide], last_oh[kMaxGatherSide];  // output rows for input row h
  int16_t first_ow[kMaxGatherSide], last_ow[kMaxGatherSide];  // output cols for input col w
};

// The first of n outputs whose argmax span [.., hi] reaches position i (n if none).
__device__ __forceinline__ int first_reaching(const int16_t* hi, int n, int i) {
  int f = 0;
  while (f < n && hi[f] < i) ++f;
  return f;
}

// The last of n outputs whose argmax span [lo, ..] starts at or before i (-1 if none).
__device__ __forceinline__ int last_starting(const int16_t* lo, int n, int i) {
  int l = n - 1;
  while (l >= 0 && lo[l] > i) --l;
  return l;
}

// Spans of argmax rows per output row (one warp per row, lanes along it) and
// of argmax columns per output column (one thread per column, down it).
// Indices outside the plane are left out and raise *bad_flag.
__device__ void argmax_spans(const int64_t* __restrict__ idx, const Geom& g, int* bad_flag,
                             GatherTables& t) {
  const int plane_in = g.in_h * g.in_w;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int oh = warp; oh < g.out_h; oh += warps) {
    int lo = kNoRow, hi = -1;
    for (int ow = lane; ow < g.out_w; ow += 32) {
      const int64_t v = idx[oh * g.out_w + ow];
      if (v < 0 || v >= plane_in) {
        *bad_flag = 1;  // every writer stores the same value: no atomic needed
        continue;
      }
      const int r = int(v) / g.in_w;
      lo = min(lo, r);
      hi = max(hi, r);
    }
    lo = warp_reduce(lo, Min{});
    hi = warp_reduce(hi, Max{});
    if (lane == 0) {
      t.row_lo[oh] = int16_t(lo);
      t.row_hi[oh] = int16_t(hi);
    }
  }
  for (int ow = threadIdx.x; ow < g.out_w; ow += blockDim.x) {
    int lo = kNoRow, hi = -1;
    for (int oh = 0; oh < g.out_h; ++oh) {
      const int64_t v = idx[oh * g.out_w + ow];
      if (v < 0 || v >= plane_in) continue;
      const int c = int(v) % g.in_w;
      lo = min(lo, c);
      hi = max(hi, c);
    }
    t.col_lo[ow] = int16_t(lo);
    t.col_hi[ow] = int16_t(hi);
  }
}

// Output row (column) range that may point at each input row (column).
__device__ void candidate_ranges(const Geom& g, GatherTables& t) {
  for (int h = threadIdx.x; h < g.in_h; h += blockDim.x) {
    t.first_oh[h] = int16_t(first_reaching(t.row_hi, g.out_h, h));
    t.last_oh[h] = int16_t(last_starting(t.row_lo, g.out_h, h));
  }
  for (int w = threadIdx.x; w < g.in_w; w += blockDim.x) {
    t.first_ow[w] = int16_t(first_reaching(t.col_hi, g.out_w, w));
    t.last_ow[w] = int16_t(last_starting(t.col_lo, g.out_w, w));
  }
}

__global__ __launch_bounds__(kThreads) void max_pool_backward_gather(
    const float* __restrict__ dy, const int64_t* __restrict__ indices, float* __restrict__ dx,
    int* bad_flag, int64_t planes, Geom g) {
  __shared__ GatherTables tables;
  const int plane_in = g.in_h * g.in_w, plane_out = g.out_h * g.out_w;
  for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
    const int64_t* idx = indices + p * plane_out;
    const float* grad = dy + p * plane_out;
    float* out = dx + p * plane_in;
    argmax_spans(idx, g, bad_flag, tables);
    __syncthreads();
    candidate_ranges(g, tables);
    __syncthreads();
    for (int i = threadIdx.x; i < plane_in; i += blockDim.x) {
      const int h = i / g.in_w, w = i - h * g.in_w;
      const int ow_lo = tables.first_ow[w], ow_hi = tables.last_ow[w];
      float sum = 0.0f;
      for (int oh = tables.first_oh[h], last = tables.last_oh[h]; oh <= last; ++oh) {
        for (int ow = ow_lo; ow <= ow_hi; ++ow) {
          const int o = oh * g.out_w + ow;
          if (idx[o] == i) sum += grad[o];
        }
      }
      out[i] = sum;
    }
    __syncthreads();  // the tables are rebuilt for the next plane
  }
}

// Planes too large for the tables: one thread per plane, the CPU's scatter.
__global__ void max_pool_backward_serial(const float* __restrict__ dy,
                                         const int64_t* __restrict__ indices,
                                         float* __restrict__ dx, int* bad_flag, int64_t planes,
                                         Geom g) {
  const int64_t plane_in = int64_t(g.in_h) * g.in_w, plane_out = int64_t(g.out_h) * g.out_w;
  for (int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; p < planes;
       p += int64_t(gridDim.x) * blockDim.x) {
    float* out = dx + p * plane_in;
    for (int64_t i = 0; i < plane_in; ++i) out[i] = 0.0f;
    for (int64_t o = 0; o < plane_out; ++o) {
      const int64_t v = indices[p * plane_out + o];
      if (v < 0 || v >= plane_in) {
        *bad_flag = 1;
        continue;
      }
      out[v] += dy[p * plane_out + o];
    }
  }
}

// Runs launch(I{}) with I = int when `total` elements leave room for the
// grid stride in an int, else with I = int64_t.
template <typename Launch>
void with_index_type(int64_t total, Launch launch) {
  if (total < (int64_t{1} << 30)) {
    launch(int{});
  } else {
    launch(int64_t{});
  }
}

// Launches kernel_for(I{}) as kernel(args..., I(total), geom) over `total`
// elements on a grid-strided 1-D grid, I chosen by with_index_type, and
// checks the launch: the one shape of every per-element pooling kernel.
template <typename KernelFor, typename... Args>
void launch_per_element(int64_t total, const Pool2dShape& s, cudaStream_t stream, const char* name,
                        KernelFor kernel_for, Args... args) {
  if (total <= 0) return;
  with_index_type(total, [&](auto zero) {
    using I = decltype(zero);
    const auto kernel = kernel_for(zero);
    PK_LAUNCH(blocks_for(total, kThreads, kMaxBlocks), kThreads, 0, stream, kernel)(
        args..., I(total), geom_of(s));
  });
  check_launch(name);
}

// Runs launch(KH, KW) with the window size as compile-time constants for the
// common windows (3x3: AlexNet, ResNet stems; 2x2), and 0, 0 (any size) for
// the rest.
template <typename Launch>
void with_window(const Pool2dShape& s, Launch launch) {
  using std::integral_constant;
  if (s.kernel_h == 3 && s.kernel_w == 3) {
    launch(integral_constant<int, 3>{}, integral_constant<int, 3>{});
  } else if (s.kernel_h == 2 && s.kernel_w == 2) {
    launch(integral_constant<int, 2>{}, integral_constant<int, 2>{});
  } else {
    launch(integral_constant<int, 0>{}, integral_constant<int, 0>{});
  }
}

}  // namespace

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices,
                        cudaStream_t stream) {
  with_window(s, [&](auto kh, auto kw) {
    launch_per_element(s.planes * s.out_h * s.out_w, s, stream, "max_pool_forward_kernel",
                       [](auto zero) {
                         return max_pool_forward_kernel<decltype(kh)::value,
                                                        decltype(kw)::value, decltype(zero)>;
                       }, x, y, indices);
  });
}

void max_pool2d_backward(const Pool2dShape& s, const float* dy, const int64_t* indices, float* dx,
                         int* bad_flag, cudaStream_t stream) {
  if (s.planes <= 0) return;
  const bool fits = std::max({s.in_h, s.in_w, s.out_h, s.out_w}) <= kMaxGatherSide;
  if (fits) {
    const unsigned int blocks = s.planes > (int64_t{1} << 20) ? 1u << 20 : unsigned(s.planes);
    PK_LAUNCH(blocks, kThreads, 0, stream, max_pool_backward_gather)(dy, indices, dx, bad_flag,
                                                                      s.planes, geom_of(s));
    check_launch("max_pool_backward_gather");
  } else {
    PK_LAUNCH(blocks_for(s.planes, kThreads, kMaxBlocks), kThreads, 0, stream,
              max_pool_backward_serial)(dy, indices, dx, bad_flag, s.planes, geom_of(s));
    check_launch("max_pool_backward_serial");
  }
}

void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y, cudaStream_t stream) {
  with_window(s, [&](auto kh, auto kw) {
    launch_per_element(s.planes * s.out_h * s.out_w, s, stream, "avg_pool_forward_kernel",
                       [](auto zero) {
                         return avg_pool_forward_kernel<decltype(kh)::value,
                                                        decltype(kw)::value, decltype(zero)>;
                       }, x, y);
  });
}

void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx, cudaStream_t stream) {
  launch_per_element(s.planes * s.in_h * s.in_w, s, stream, "avg_pool_backward_kernel",
                     [](auto zero) { return avg_pool_backward_kernel<decltype(zero)>; }, dy, dx);
}

void adaptive_avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y,
                                 cudaStream_t stream) {
  if (s.planes <= 0) return;
  if (s.out_h == 1 && s.out_w == 1) {
    PK_LAUNCH(blocks_for(s.planes * 32, kThreads, kMaxBlocks), kThreads, 0, stream,
              global_average_kernel)(x, y, s.planes, int(s.in_h * s.in_w));
    check_launch("global_average_kernel");
    return;
  }
  const int64_t total = s.planes * s.out_h * s.out_w;
  with_index_type(total, [&](auto zero) {
    using I = decltype(zero);
    PK_LAUNCH(blocks_for(total, kThreads, kMaxBlocks), kThreads, 0, stream,
              adaptive_forward_kernel<I>)(x, y, I(total), geom_of(s));
  });
  check_launch("adaptive_forward_kernel");
}

void adaptive_avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx,
                                  cudaStream_t stream) {
  const int64_t total = s.planes * s.in_h * s.in_w;
  if (total <= 0) return;
  with_index_type(total, [&](auto zero) {
    using I = decltype(zero);
    PK_LAUNCH(blocks_for(total, kThreads, kMaxBlocks), kThreads, 0, stream,
              adaptive_backward_kernel<I>)(dy, dx, I(total), geom_of(s));
  });
  check_launch("adaptive_backward_kernel");
}

}  // namespace pk::cuda

// Batch normalization on the GPU, x viewed as (N, C, S) as in csrc/batchnorm.cpp
// (NCHW: S = H * W; BatchNorm1d's (N, C): S = 1). Per channel c over its
// count = N * S values:
//   forward (train): mean, biased var, invstd = 1 / sqrt(var + eps),
//       y = ((x - mean_hi) - mean_lo) * (invstd * w) + b, mean held as a float
//       pair so 1000 + N(0, 1) keeps its low bits; running stats updated in
//       place with momentum and the unbiased variance (as torch).
//   forward (eval): the same y from the running statistics.
//   backward: dbias = sum dy, dweight = invstd * sum dy (x - mean),
//       dx = a dy + (k (x - mean) + b) with the CPU's per-channel a, k, b
//       (eval: dx = a dy, x not read).
//
// Parallelisation: a fixed grid of partial sums, then a combine pass. One
// block per channel would give ResNet-20's C = 16 layers (N*H*W = 131072 at
// batch 128) 16 blocks on a 132-SM GPU, an eighth of the machine. Instead a
// block takes a tile of kPerThread values per thread:
//   planar (S > 1): one channel, 4096 consecutive values of its (n, s) range,
//       consecutive threads on consecutive addresses (coalesced);
//   columns (S = 1): 32 neighbouring channels x 128 rows, a warp reads one
//       128-byte row segment (a channel per lane would stride by C).
// ResNet-20 at batch 128 thus launches 2^21 / 4096 = 512 blocks per layer.
// Every pass loads all of a thread's values before using any, so they are
// in flight together, and planar tiles with S % 4 == 0 load float4 chunks.
// (Before both, on an H200: the statistics and normalisation passes over a
// 98 MiB activation took 75 us each, one load in flight per thread and some
// 60 integer instructions per value, at 29% and 52% of DRAM bandwidth; after,
// 29 and 51 us.) The tile count depends on the shape only, never on the
// device, so results are the same on any GPU (for one walk: a misaligned
// view takes scalar loads and sums a thread's values in another order).
//   1. partial kernel: a thread keeps its values in registers; the block sums
//      (warp xor-shuffles, then the 8 warp totals from shared memory in warp
//      order) x - shift (shift = the channel's first value: float sums of
//      O(std), not O(|mean|)), then, from the registers again, the squared
//      deviations from the tile mean: an exact two-pass per tile, stored as
//      (count, mean, M2) in double.
//   2. finalize kernel: a warp per channel merges the tiles' moments in
//      double with Chan's formula, lanes striding over tiles then a
//      shuffle-down tree (fixed order), and writes the saved / running
//      statistics and the per-channel constants of the elementwise pass.
//   3. elementwise kernel over the same tiles: y (or dx).
// Deterministic: fixed reduction order everywhere, no atomics.
// Bounds: memory. DRAM traffic is one read of x for the statistics, and a
// read plus a write for y, the re-read mostly an L2 hit for ResNet-sized
// layers (8 MiB at batch 128); the finalize pass reads C * tiles * 24 bytes.
#include "batchnorm.cuh"

#include <initializer_list>
#include <type_traits>

namespace pk::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kPerThread = 16;                      // values a thread holds in registers
constexpr int64_t kPlaneTile = kThreads * kPerThread;  // values of one channel per block
constexpr int kColumnLanes = 32;                    // channels per block when S = 1
constexpr int kColumnRows = kThreads / kColumnLanes;
constexpr int64_t kColumnTile = kColumnRows * kPerThread;  // rows per block when S = 1
constexpr int kMoments = 3;                         // doubles per forward tile: count, mean, M2
constexpr int kGradSums = 2;                        // doubles per backward tile: dy, dy (x - m)
constexpr int kConsts = 4;                          // floats per channel for the elementwise pass

// How the (N, C, S) tensor is cut into blocks; the same for every pass.
struct Tiling {
  bool columns;         // S == 1
  int64_t groups;       // channel groups: C (planar) or ceil(C / 32)
  int64_t parts;        // tiles per channel
  int64_t blocks() const { return groups * parts; }
};

Tiling tiling_of(const BatchNormShape& s) {
  const int64_t count = s.batch * s.spatial;
  if (s.spatial == 1) {
    return {true, (s.channels + kColumnLanes - 1) / kColumnLanes,
            (s.batch + kColumnTile - 1) / kColumnTile};
  }
  return {false, s.channels, (count + kPlaneTile - 1) / kPlaneTile};
}

// This thread's place in the tiling: its channel, where its values start,
// and how many values of that channel the whole block holds.
struct Site {
  int64_t channel, part, first, block_count;
  bool active, leader;  // has values; writes the block's result for its channel
};

// W: values per load. Planar tiles with S % 4 == 0 and 16-byte aligned
// tensors take float4 loads (W = 4): thread t's chunks start at values
// 4t, 4t + 1024, ... of the tile, and a chunk never crosses an image.
template <bool kColumns, int W>
__device__ Site site_of(const BatchNormShape& s, int64_t parts) {
  static_assert(W == 1 || (W == 4 && !kColumns), "float4 chunks are planar only");
  const int64_t group = blockIdx.x / parts, part = blockIdx.x % parts;
  Site t;
  t.part = part;
  if constexpr (kColumns) {
    const int lane = threadIdx.x % kColumnLanes, row = threadIdx.x / kColumnLanes;
    t.channel = group * kColumnLanes + lane;
    t.first = part * kColumnTile + row;
    t.block_count = min(kColumnTile, s.batch - part * kColumnTile);
    t.active = t.channel < s.channels;
    t.leader = t.active && row == 0;
  } else {
    t.channel = group;
    t.first = part * kPlaneTile + int64_t(threadIdx.x) * W;
    t.block_count = min(kPlaneTile, s.batch * s.spatial - part * kPlaneTile);
    t.active = true;
    t.leader = threadIdx.x == 0;
  }
  return t;
}

// Calls f(k, offset) for the thread's k-th chunk of W values (k < kPerThread
// / W, unrolled so per-k registers stay registers), offset into the (N, C, S)
// tensor of the chunk's first value.
template <bool kColumns, int W, class F>
__device__ __forceinline__ void for_values(const BatchNormShape& s, const Site& t, F f) {
  if (!t.active) return;
  if constexpr (kColumns) {
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      const int64_t n = t.first + int64_t(k) * kColumnRows;
      if (n < s.batch) f(k, n * s.channels + t.channel);
    }
  } else {
    // Value j = n * S + i of the channel sits at (n * C + c) * S + i: a step
    // of kStep values moves the offset kStep + dn * gap, plus one more gap
    // (the other channels' planes) when i wraps into the next image. No
    // multiplication or division per chunk: they cost more than the load.
    constexpr int64_t kStep = int64_t(kThreads) * W;
    const int64_t left = s.batch * s.spatial - t.first;
    const int64_t gap = (s.channels - 1) * s.spatial;
    const int64_t di = kStep % s.spatial, step = kStep + (kStep / s.spatial) * gap;
    int64_t i = t.first % s.spatial;
    int64_t offset = ((t.first / s.spatial) * s.channels + t.channel) * s.spatial + i;
#pragma unroll
    for (int k = 0; k < kPerThread / W; ++k) {
      if (int64_t(k) * kStep < left) f(k, offset);
      offset += step;
      i += di;
      if (i >= s.spatial) {
        i -= s.spatial;
        offset += gap;
      }
    }
  }
}

// W consecutive floats, loaded and stored as one access when W = 4.
template <int W>
struct Chunk {
  float v[W];
  __device__ static Chunk load(const float* p) {
    if constexpr (W == 4) {
      const float4 q = *reinterpret_cast<const float4*>(p);
      return {{q.x, q.y, q.z, q.w}};
    } else {
      return {{*p}};
    }
  }
  __device__ void store(float* p) const {
    if constexpr (W == 4) {
      *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
    } else {
      *p = v[0];
    }
  }
};

// The thread's values of p into v, every load issued before any value is
// used: a use inside the bounds-checked chunk would wait for its load before
// the next chunk's load issues, one load in flight per thread.
template <bool kColumns, int W>
__device__ __forceinline__ void load_values(const BatchNormShape& s, const Site& t,
                                            const float* __restrict__ p,
                                            float (&v)[kPerThread]) {
  for_values<kColumns, W>(s, t, [&](int k, int64_t offset) {
    const Chunk<W> c = Chunk<W>::load(p + offset);
#pragma unroll
    for (int e = 0; e < W; ++e) v[k * W + e] = c.v[e];
  });
}

struct Pair {
  float a, b;
};

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the threads of the block that share a channel (planar: all 256;
// columns: the 8 threads of one lane position), in a fixed order. Every
// thread of the block must call it; every thread gets its channel's total.
template <bool kColumns>
__device__ Pair block_sum(Pair v) {
  __shared__ float part_a[kWarps][kColumnLanes];
  __shared__ float part_b[kWarps][kColumnLanes];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if constexpr (kColumns) {
    part_a[warp][lane] = v.a;
    part_b[warp][lane] = v.b;
  } else {
    v.a = warp_sum(v.a);
    v.b = warp_sum(v.b);
    if (lane == 0) {
      part_a[warp][0] = v.a;
      part_b[warp][0] = v.b;
    }
  }
  __syncthreads();
  const int col = kColumns ? lane : 0;
  Pair total{0.0f, 0.0f};
  for (int w = 0; w < kWarps; ++w) {
    total.a += part_a[w][col];
    total.b += part_b[w][col];
  }
  __syncthreads();  // the shared arrays are free for the next call
  return total;
}

// ---- forward statistics ----------------------------------------------------

template <bool kColumns, int W>
__global__ void __launch_bounds__(kThreads)
    bn_tile_moments(BatchNormShape s, int64_t parts, const float* __restrict__ x,
                    double* __restrict__ moments) {
  const Site t = site_of<kColumns, W>(s, parts);
  // The channel's first value (n = 0, s = 0): a shift close to the data.
  const float shift = t.active ? x[t.channel * s.spatial] : 0.0f;
  float d[kPerThread];
  load_values<kColumns, W>(s, t, x, d);
  float sum = 0.0f;
  for_values<kColumns, W>(s, t, [&](int k, int64_t) {
#pragma unroll
    for (int e = 0; e < W; ++e) {
      d[k * W + e] -= shift;
      sum += d[k * W + e];
    }
  });
  const float mean_d = block_sum<kColumns>({sum, 0.0f}).a / static_cast<float>(t.block_count);
  float squares = 0.0f;
  for_values<kColumns, W>(s, t, [&](int k, int64_t) {
#pragma unroll
    for (int e = 0; e < W; ++e) {
      const float dev = d[k * W + e] - mean_d;
      squares += dev * dev;
    }
  });
  const float m2 = block_sum<kColumns>({squares, 0.0f}).a;
  if (t.leader) {
    double* out = moments + (t.channel * parts + t.part) * kMoments;
    out[0] = static_cast<double>(t.block_count);
    out[1] = static_cast<double>(shift) + static_cast<double>(mean_d);
    out[2] = static_cast<double>(m2);
  }
}

struct Moments {
  double n, mean, m2;
};

// Chan et al.'s pairwise update: exact in the counts, stable in the means.
__device__ Moments merge(Moments a, Moments b) {
  if (b.n == 0.0) return a;
  if (a.n == 0.0) return b;
  const double n = a.n + b.n, delta = b.mean - a.mean;
  return {n, a.mean + delta * (b.n / n), a.m2 + b.m2 + delta * delta * (a.n * (b.n / n))};
}

// Lane 0 gets the merge of the channel's tiles: lane l takes tiles l, l + 32,
// ... in order, then a shuffle-down tree (fixed pairing).
__device__ Moments channel_moments(const double* moments, int64_t c, int64_t parts, int lane) {
  Moments m{0.0, 0.0, 0.0};
  for (int64_t p = lane; p < parts; p += 32) {
    const double* in = moments + (c * parts + p) * kMoments;
    m = merge(m, {in[0], in[1], in[2]});
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    const Moments other{__shfl_down_sync(0xffffffffu, m.n, offset),
                        __shfl_down_sync(0xffffffffu, m.mean, offset),
                        __shfl_down_sync(0xffffffffu, m.m2, offset)};
    m = merge(m, other);
  }
  return m;
}

// Per-channel constants of y = ((x - hi) - lo) * scale + shift.
__device__ void store_affine(float* consts, int64_t c, double mean, double invstd,
                             const float* weight, const float* bias) {
  const float hi = static_cast<float>(mean);
  float* out = consts + c * kConsts;
  out[0] = hi;
  out[1] = static_cast<float>(mean - static_cast<double>(hi));
  out[2] = static_cast<float>(invstd * (weight ? weight[c] : 1.0f));
  out[3] = bias ? bias[c] : 0.0f;
}

struct TrainArgs {
  const float* weight;
  const float* bias;
  float* running_mean;
  float* running_var;
  float momentum, eps;
  float* save_mean;
  float* save_invstd;
};

// A warp per channel.
__global__ void __launch_bounds__(kThreads)
    bn_finalize_train(BatchNormShape s, int64_t parts, const double* __restrict__ moments,
                      TrainArgs a, float* __restrict__ consts) {
  const int64_t c = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (c >= s.channels) return;  // whole warps leave together
  const Moments m = channel_moments(moments, c, parts, lane);
  if (lane != 0) return;
  const double count = m.n, var = m.m2 / count;
  const double invstd = 1.0 / sqrt(var + a.eps);
  a.save_mean[c] = static_cast<float>(m.mean);
  a.save_invstd[c] = static_cast<float>(invstd);
  const double keep = 1.0 - a.momentum;
  if (a.running_mean) a.running_mean[c] = static_cast<float>(keep * a.running_mean[c] + a.momentum * m.mean);
  if (a.running_var) {
    const double unbiased = m.m2 / (count - 1.0);  // count > 1: checked on the host
    a.running_var[c] = static_cast<float>(keep * a.running_var[c] + a.momentum * unbiased);
  }
  store_affine(consts, c, m.mean, invstd, a.weight, a.bias);
}

// A thread per channel: the constants from the running statistics.
__global__ void bn_finalize_eval(int64_t channels, const float* __restrict__ weight,
                                 const float* __restrict__ bias,
                                 const float* __restrict__ running_mean,
                                 const float* __restrict__ running_var, float eps,
                                 float* __restrict__ save_mean, float* __restrict__ save_invstd,
                                 float* __restrict__ consts) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  const double invstd = 1.0 / sqrt(static_cast<double>(running_var[c]) + eps);
  save_mean[c] = running_mean[c];
  save_invstd[c] = static_cast<float>(invstd);
  store_affine(consts, c, running_mean[c], invstd, weight, bias);
}

template <bool kColumns, int W>
__global__ void __launch_bounds__(kThreads)
    bn_normalize(BatchNormShape s, int64_t parts, const float* __restrict__ x,
                 const float* __restrict__ consts, float* __restrict__ y) {
  const Site t = site_of<kColumns, W>(s, parts);
  if (!t.active) return;
  const float* k = consts + t.channel * kConsts;
  const float hi = k[0], lo = k[1], scale = k[2], shift = k[3];
  float v[kPerThread];
  load_values<kColumns, W>(s, t, x, v);
  for_values<kColumns, W>(s, t, [&](int k, int64_t offset) {
    Chunk<W> c;
#pragma unroll
    for (int e = 0; e < W; ++e) c.v[e] = ((v[k * W + e] - hi) - lo) * scale + shift;
    c.store(y + offset);
  });
}

// ---- backward ----------------------------------------------------------------

template <bool kColumns, int W>
__global__ void __launch_bounds__(kThreads)
    bn_tile_grad_sums(BatchNormShape s, int64_t parts, const float* __restrict__ dy,
                      const float* __restrict__ x, const float* __restrict__ save_mean,
                      double* __restrict__ sums) {
  const Site t = site_of<kColumns, W>(s, parts);
  const float m = t.active ? save_mean[t.channel] : 0.0f;
  float g[kPerThread], v[kPerThread];
  load_values<kColumns, W>(s, t, dy, g);
  load_values<kColumns, W>(s, t, x, v);
  Pair p{0.0f, 0.0f};
  for_values<kColumns, W>(s, t, [&](int k, int64_t) {
#pragma unroll
    for (int e = 0; e < W; ++e) {
      p.a += g[k * W + e];
      p.b += g[k * W + e] * (v[k * W + e] - m);
    }
  });
  p = block_sum<kColumns>(p);
  if (t.leader) {
    double* out = sums + (t.channel * parts + t.part) * kGradSums;
    out[0] = p.a;
    out[1] = p.b;
  }
}

struct GradArgs {
  const float* weight;
  const float* save_mean;
  const float* save_invstd;
  bool training;
  float* dweight;
  float* dbias;
};

// A warp per channel: tile sums in double, lanes striding, shuffle-down tree.
__global__ void __launch_bounds__(kThreads)
    bn_finalize_grad(BatchNormShape s, int64_t parts, const double* __restrict__ sums,
                     GradArgs a, float* __restrict__ consts) {
  const int64_t c = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (c >= s.channels) return;
  double sum_dy = 0.0, sum_dy_xmu = 0.0;
  for (int64_t p = lane; p < parts; p += 32) {
    sum_dy += sums[(c * parts + p) * kGradSums];
    sum_dy_xmu += sums[(c * parts + p) * kGradSums + 1];
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    sum_dy += __shfl_down_sync(0xffffffffu, sum_dy, offset);
    sum_dy_xmu += __shfl_down_sync(0xffffffffu, sum_dy_xmu, offset);
  }
  if (lane != 0) return;
  const double invstd = a.save_invstd[c];
  if (a.dbias) a.dbias[c] = static_cast<float>(sum_dy);
  if (a.dweight) a.dweight[c] = static_cast<float>(sum_dy_xmu * invstd);
  // dx = a dy + (k (x - m) + b), as grad_terms in csrc/batchnorm.cpp.
  const double count = static_cast<double>(s.batch * s.spatial);
  const double wi = invstd * (a.weight ? a.weight[c] : 1.0f);
  const bool full = a.training && count > 0.0;
  float* out = consts + c * kConsts;
  out[0] = static_cast<float>(wi);
  out[1] = full ? static_cast<float>(-wi * invstd * invstd * sum_dy_xmu / count) : 0.0f;
  out[2] = full ? static_cast<float>(-wi * sum_dy / count) : 0.0f;
  out[3] = a.save_mean[c];
}

template <bool kColumns, int W, bool kTraining>
__global__ void __launch_bounds__(kThreads)
    bn_grad_input(BatchNormShape s, int64_t parts, const float* __restrict__ dy,
                  const float* __restrict__ x, const float* __restrict__ consts,
                  float* __restrict__ dx) {
  const Site t = site_of<kColumns, W>(s, parts);
  if (!t.active) return;
  const float* k = consts + t.channel * kConsts;
  const float ca = k[0], ck = k[1], cb = k[2], m = k[3];
  float g[kPerThread], v[kPerThread];
  load_values<kColumns, W>(s, t, dy, g);
  if constexpr (kTraining) load_values<kColumns, W>(s, t, x, v);
  for_values<kColumns, W>(s, t, [&](int k, int64_t offset) {
    Chunk<W> out;
#pragma unroll
    for (int e = 0; e < W; ++e) {
      const int j = k * W + e;
      if constexpr (kTraining) {
        out.v[e] = ca * g[j] + (ck * (v[j] - m) + cb);
      } else {  // x does not enter: an inf in x must not turn dx into NaN
        out.v[e] = ca * g[j];
      }
    }
    out.store(dx + offset);
  });
}

// ---- launch helpers ------------------------------------------------------------

// Scratch layout: tile results (doubles) first, then the per-channel constants.
struct Workspace {
  double* tiles;
  float* consts;
};

Workspace split_workspace(const BatchNormShape& s, void* workspace) {
  const Tiling g = tiling_of(s);
  double* tiles = static_cast<double*>(workspace);
  return {tiles, reinterpret_cast<float*>(tiles + s.channels * g.parts * kMoments)};
}

unsigned int grid_of(const Tiling& g) { return static_cast<unsigned int>(g.blocks()); }

// Calls launch(columns, width) with the walk the tensors allow: float4
// chunks for planar tiles with S % 4 == 0 whose tensors are 16-byte aligned
// (an offset view takes scalar loads, with the same tiles but another
// summation order inside a thread).
template <class Launch>
void with_walk(const BatchNormShape& s, const Tiling& g,
               std::initializer_list<const float*> tensors, Launch launch) {
  bool vec4 = !g.columns && s.spatial % 4 == 0;
  for (const float* p : tensors) vec4 = vec4 && aligned16(p);
  if (g.columns) {
    launch(std::true_type{}, std::integral_constant<int, 1>{});
  } else if (vec4) {
    launch(std::false_type{}, std::integral_constant<int, 4>{});
  } else {
    launch(std::false_type{}, std::integral_constant<int, 1>{});
  }
}

unsigned int channel_warps_grid(int64_t channels) {
  return static_cast<unsigned int>((channels + kWarps - 1) / kWarps);
}

void launch_normalize(const BatchNormShape& s, const Tiling& g, const float* x,
                      const float* consts, float* y, cudaStream_t stream) {
  if (g.blocks() == 0) return;
  with_walk(s, g, {x, y}, [&](auto columns, auto width) {
    PK_LAUNCH(grid_of(g), kThreads, 0, stream, bn_normalize<columns(), width()>)(
        s, g.parts, x, consts, y);
  });
  check_launch("bn_normalize");
}

}  // namespace

int64_t batch_norm_workspace_bytes(const BatchNormShape& s) {
  const Tiling g = tiling_of(s);
  return s.channels * g.parts * kMoments * int64_t(sizeof(double)) +
         s.channels * kConsts * int64_t(sizeof(float));
}

void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* weight,
                              const float* bias, float* running_mean, float* running_var,
                              float momentum, float eps, float* y, float* save_mean,
                              float* save_invstd, void* workspace, cudaStream_t stream) {
  const Tiling g = tiling_of(s);
  if (s.channels == 0 || g.blocks() == 0) return;  // no values: nothing to compute
  const Workspace w = split_workspace(s, workspace);
  with_walk(s, g, {x}, [&](auto columns, auto width) {
    PK_LAUNCH(grid_of(g), kThreads, 0, stream, bn_tile_moments<columns(), width()>)(
        s, g.parts, x, w.tiles);
  });
  check_launch("bn_tile_moments");
  const TrainArgs args{weight, bias, running_mean, running_var, momentum, eps, save_mean,
                       save_invstd};
  PK_LAUNCH(channel_warps_grid(s.channels), kThreads, 0, stream, bn_finalize_train)(
      s, g.parts, w.tiles, args, w.consts);
  check_launch("bn_finalize_train");
  launch_normalize(s, g, x, w.consts, y, stream);
}

void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* weight,
                             const float* bias, const float* running_mean,
                             const float* running_var, float eps, float* y, float* save_mean,
                             float* save_invstd, void* workspace, cudaStream_t stream) {
  if (s.channels == 0) return;
  const Tiling g = tiling_of(s);
  const Workspace w = split_workspace(s, workspace);
  PK_LAUNCH(blocks_for(s.channels, kThreads, 1u << 30), kThreads, 0, stream, bn_finalize_eval)(
      s.channels, weight, bias, running_mean, running_var, eps, save_mean, save_invstd, w.consts);
  check_launch("bn_finalize_eval");
  launch_normalize(s, g, x, w.consts, y, stream);
}

void batch_norm_backward(const BatchNormShape& s, const float* dy, const float* x,
                         const float* weight, const float* save_mean, const float* save_invstd,
                         bool training, float* dx, float* dweight, float* dbias, void* workspace,
                         cudaStream_t stream) {
  if (s.channels == 0) return;
  const Tiling g = tiling_of(s);
  const Workspace w = split_workspace(s, workspace);
  if (g.blocks() > 0) {
    with_walk(s, g, {dy, x}, [&](auto columns, auto width) {
      PK_LAUNCH(grid_of(g), kThreads, 0, stream, bn_tile_grad_sums<columns(), width()>)(
          s, g.parts, dy, x, save_mean, w.tiles);
    });
    check_launch("bn_tile_grad_sums");
  }
  const GradArgs args{weight, save_mean, save_invstd, training, dweight, dbias};
  PK_LAUNCH(channel_warps_grid(s.channels), kThreads, 0, stream, bn_finalize_grad)(
      s, g.parts, w.tiles, args, w.consts);
  check_launch("bn_finalize_grad");
  if (g.blocks() == 0) return;
  with_walk(s, g, {dy, x, dx}, [&](auto columns, auto width) {
    if (training) {
      PK_LAUNCH(grid_of(g), kThreads, 0, stream, bn_grad_input<columns(), width(), true>)(
          s, g.parts, dy, x, w.consts, dx);
    } else {
      PK_LAUNCH(grid_of(g), kThreads, 0, stream, bn_grad_input<columns(), width(), false>)(
          s, g.parts, dy, x, w.consts, dx);
    }
  });
  check_launch("bn_grad_input");
}

}  // namespace pk::cuda

// The SGEMM ladder on the GPU: C = alpha * op(A) op(B) + beta * C, row-major,
// FP32 arithmetic on the CUDA cores. Each rung keeps the previous one's idea
// and adds one more:
//   naive       one thread per C element; consecutive threads walk down a
//               column of C, so neither the B reads nor the C writes coalesce;
//   coalesced   the same, but consecutive threads walk along a row of C;
//   smem        32x32 tiles of op(A) and op(B) go through shared memory, so
//               each global element is read once per tile instead of 32 times;
//   regblock    a 128x128 block tile, BK = 8; each thread keeps an 8x8 block
//               of C in registers and reuses each loaded value 8 times;
//   vectorized  regblock + float4 global loads + two shared-memory buffers, so
//               the next tile's loads are in flight while this one computes;
//   warptile    vectorized with BK = 16 and a warp-level layout: each warp owns
//               a 64x32 piece of C and each thread two 4x4 pieces of it, which
//               keeps the shared-memory reads of a warp conflict-free; blocks
//               inside C load their slices without bounds checks;
//   splitk      warptile with K cut into slabs, one per grid layer, for
//               products with too few 128x128 tiles to fill the GPU (an LSTM
//               step, 64 x 2048: 16 tiles for 132 SMs; a conv weight gradient,
//               64 x 363 with K in the tens of thousands: 3 tiles); the slabs'
//               partial products are summed in a fixed order by a second kernel.
//               `auto` takes it where a model of waves and of the sum's memory
//               traffic (choose_split) promises 10% or more.
// `auto` is warptile (split or not) with 64x128 tiles and 4 warps a block:
// three blocks share an SM where one 128x128 block has it alone.
// Beside the ladder, `tf32` runs warptile's tiles on the tensor cores with
// inputs rounded to TF32: faster, less exact, so only when asked for.
// Partial tiles are zero-filled on load and masked on store, so any M, N, K
// works, and all four transpose cases run through one loader (see TileLoader).
#include "gemm.cuh"
#include "splitk.cuh"

#ifdef PYKERNELS_CUDA_EMU
#include "emu/wmma_emu.h"
#else
#include <mma.h>
#endif

#include <algorithm>
#include <mutex>
#include <vector>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace pk::cuda {
namespace {

namespace wmma = nvcuda::wmma;

// op(A)(i, p) and op(B)(p, j) read straight from global memory (first rungs).
template <bool TRANS>
__device__ __forceinline__ float load_a(const float* a, int64_t lda, int64_t i, int64_t p) {
  return TRANS ? a[p * lda + i] : a[i * lda + p];
}
template <bool TRANS>
__device__ __forceinline__ float load_b(const float* b, int64_t ldb, int64_t p, int64_t j) {
  return TRANS ? b[j * ldb + p] : b[p * ldb + j];
}

// beta == 0 must not read C: it may hold NaN or be uninitialised.
__device__ __forceinline__ void store_c(float* c, int64_t ldc, int64_t i, int64_t j, float acc,
                                        float alpha, float beta) {
  float* out = c + i * ldc + j;
  *out = beta == 0.0f ? alpha * acc : alpha * acc + beta * *out;
}

// ---- rungs 1 and 2: one thread per element of C ---------------------------

template <bool TA, bool TB>
__global__ void sgemm_naive(int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                            int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                            int64_t ldc) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t j = int64_t(blockIdx.y) * blockDim.y + threadIdx.y;
  if (i >= m || j >= n) return;
  float acc = 0.0f;
  for (int64_t p = 0; p < k; ++p) acc += load_a<TA>(a, lda, i, p) * load_b<TB>(b, ldb, p, j);
  store_c(c, ldc, i, j, acc, alpha, beta);
}

template <bool TA, bool TB>
__global__ void sgemm_coalesced(int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                                int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                                int64_t ldc) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t i = int64_t(blockIdx.y) * blockDim.y + threadIdx.y;
  if (i >= m || j >= n) return;
  float acc = 0.0f;
  for (int64_t p = 0; p < k; ++p) acc += load_a<TA>(a, lda, i, p) * load_b<TB>(b, ldb, p, j);
  store_c(c, ldc, i, j, acc, alpha, beta);
}

// ---- rung 3: shared-memory tiles ------------------------------------------

constexpr int kSmemTile = 32;

// The only kernel launched with more than 256 threads: the bound caps it at
// 64 registers, so a 1024-thread block always fits an SM's 64 K registers.
template <bool TA, bool TB>
__global__ void __launch_bounds__(kSmemTile * kSmemTile)
    sgemm_smem(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  __shared__ float a_tile[kSmemTile][kSmemTile + 1];  // +1: transposed loads stay conflict-free
  __shared__ float b_tile[kSmemTile][kSmemTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t row0 = int64_t(blockIdx.y) * kSmemTile, col0 = int64_t(blockIdx.x) * kSmemTile;
  const int64_t i = row0 + ty, j = col0 + tx;
  float acc = 0.0f;
  for (int64_t k0 = 0; k0 < k; k0 += kSmemTile) {
    // For a transposed operand, swapping the roles of tx and ty keeps
    // consecutive threads on consecutive addresses.
    if (TA) {
      const int64_t ai = row0 + tx, ap = k0 + ty;
      a_tile[tx][ty] = ai < m && ap < k ? load_a<TA>(a, lda, ai, ap) : 0.0f;
    } else {
      a_tile[ty][tx] = i < m && k0 + tx < k ? load_a<TA>(a, lda, i, k0 + tx) : 0.0f;
    }
    if (TB) {
      const int64_t bj = col0 + ty, bp = k0 + tx;
      b_tile[tx][ty] = bj < n && bp < k ? load_b<TB>(b, ldb, bp, bj) : 0.0f;
    } else {
      b_tile[ty][tx] = k0 + ty < k && j < n ? load_b<TB>(b, ldb, k0 + ty, j) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int p = 0; p < kSmemTile; ++p) acc += a_tile[ty][p] * b_tile[p][tx];
    __syncthreads();
  }
  if (i < m && j < n) store_c(c, ldc, i, j, acc, alpha, beta);
}

// ---- shared pieces of rungs 4-6 -------------------------------------------

// Moves one BK-deep slice of op(A) (or op(B)) between global memory and a
// shared tile stored k-major, tile[p][outer], where `outer` runs along M (for
// A) or N (for B). In global memory either k is the contiguous index
// (K_CONTIGUOUS: A not transposed, or B transposed) or `outer` is. Each thread
// moves GROUPS runs of 4 floats along the contiguous index: a float4 load when
// VEC and the run is in range (alignment was checked on the host), else four
// bounds-checked scalar loads. Out-of-range elements become 0.
template <bool K_CONTIGUOUS, int OUTER, int BK, int THREADS, bool VEC>
struct TileLoader {
  static constexpr int GROUPS = OUTER * BK / (4 * THREADS);
  static constexpr int STRIDE = OUTER + 4;  // padding spreads transposed stores over banks
  static_assert(GROUPS >= 1 && OUTER * BK == GROUPS * 4 * THREADS, "tile not divisible");

  float4 staged[GROUPS];

  __device__ __forceinline__ void group_origin(int g, int& outer, int& p) const {
    const int group = threadIdx.x + g * THREADS;
    if (K_CONTIGUOUS) {
      outer = group / (BK / 4);
      p = (group % (BK / 4)) * 4;
    } else {
      p = group / (OUTER / 4);
      outer = (group % (OUTER / 4)) * 4;
    }
  }

  __device__ __forceinline__ void fetch(const float* src, int64_t ld, int64_t outer0,
                                        int64_t outer_limit, int64_t k0, int64_t k) {
#pragma unroll
    for (int g = 0; g < GROUPS; ++g) {
      int outer, p;
      group_origin(g, outer, p);
      const int64_t go = outer0 + outer, gp = k0 + p;
      float v[4];
      if (K_CONTIGUOUS) {
        const float* row = src + go * ld + gp;
        if (VEC && go < outer_limit && gp + 3 < k) {
          const float4 q = *reinterpret_cast<const float4*>(row);
          v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
        } else {
#pragma unroll
          for (int e = 0; e < 4; ++e) v[e] = go < outer_limit && gp + e < k ? row[e] : 0.0f;
        }
      } else {
        const float* row = src + gp * ld + go;
        if (VEC && gp < k && go + 3 < outer_limit) {
          const float4 q = *reinterpret_cast<const float4*>(row);
          v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
        } else {
#pragma unroll
          for (int e = 0; e < 4; ++e) v[e] = gp < k && go + e < outer_limit ? row[e] : 0.0f;
        }
      }
      staged[g] = make_float4(v[0], v[1], v[2], v[3]);
    }
  }

  // A block wholly inside op(A) or op(B) along `outer` loads its whole
  // slices (all but a partial last one) without bounds checks, from addresses
  // computed once per block (aim) instead of once per slice. Every issue
  // slot those checks took is one an FMA could have used: on sm_90 the
  // warptile rung's main loop issues 1138 instructions a slice this way,
  // 1184 with the checks, for 1024 FFMAs (tools/sass_loops.py).
  const float* run_start[GROUPS];

  __device__ __forceinline__ void aim(const float* src, int64_t ld, int64_t outer0) {
#pragma unroll
    for (int g = 0; g < GROUPS; ++g) {
      int outer, p;
      group_origin(g, outer, p);
      run_start[g] = K_CONTIGUOUS ? src + (outer0 + outer) * ld + p : src + p * ld + outer0 + outer;
    }
  }

  __device__ __forceinline__ void fetch_whole(int64_t ld, int64_t k0) {
    const int64_t offset = K_CONTIGUOUS ? k0 : k0 * ld;
#pragma unroll
    for (int g = 0; g < GROUPS; ++g) {
      const float* run = run_start[g] + offset;
      if (VEC) {
        staged[g] = *reinterpret_cast<const float4*>(run);
      } else {
        staged[g] = make_float4(run[0], run[1], run[2], run[3]);
      }
    }
  }

  __device__ __forceinline__ void commit(float* tile) const {
#pragma unroll
    for (int g = 0; g < GROUPS; ++g) {
      int outer, p;
      group_origin(g, outer, p);
      if (K_CONTIGUOUS) {
        tile[(p + 0) * STRIDE + outer] = staged[g].x;
        tile[(p + 1) * STRIDE + outer] = staged[g].y;
        tile[(p + 2) * STRIDE + outer] = staged[g].z;
        tile[(p + 3) * STRIDE + outer] = staged[g].w;
      } else {
        *reinterpret_cast<float4*>(&tile[p * STRIDE + outer]) = staged[g];
      }
    }
  }
};

// Rung 4 and 5 layout: a 16x16 grid of threads, thread (ty, tx) owns rows
// ty*8 .. ty*8+7 and columns tx*8 .. tx*8+7 of the 128x128 block tile.
struct BlockLayout {
  static constexpr int BM = 128, BN = 128, TM = 8, TN = 8, THREADS = 256;
  static constexpr bool kUncheckedInterior = false;  // see tile_product
  static constexpr int kMinBlocks = 1;                 // see WarpLayout
  __device__ static int row(int r) { return (threadIdx.x / 16) * TM + r; }
  __device__ static int col(int s) { return (threadIdx.x % 16) * TN + s; }
};

// Rung 6 layout: WARPS_M x 4 warps, each owning a 64x32 piece of C (the
// ladder's rung has 2 x 4 warps and a 128x128 tile; auto takes 1 x 4 and a
// 64x128 tile, see short_tiles). Inside a warp, lane (lr, lc) = (lane / 4,
// lane % 4) owns rows {lr*4 + 0..3} and {32 + lr*4 + 0..3} and columns
// {lc*4 + 0..3} and {16 + lc*4 + 0..3}: the float4 reads of a warp from a
// shared tile row then cover one contiguous span.
template <int WARPS_M>
struct WarpLayout {
  static constexpr int BM = 64 * WARPS_M, BN = 128, TM = 8, TN = 8, THREADS = 128 * WARPS_M;
  static constexpr int WM = 64, WN = 32;
  static constexpr bool kUncheckedInterior = true;  // see tile_product
  // Blocks per SM that __launch_bounds__ asks registers for: one 256-thread
  // block needs 140+ registers a thread anyway; three 128-thread ones fit in
  // 168 (ptxas: no spills), where unbounded they took up to 203 and two fit.
  static constexpr int kMinBlocks = WARPS_M == 1 ? 3 : 1;
  __device__ static int row(int r) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    return (warp / 4) * WM + (r / 4) * 32 + (lane / 4) * 4 + r % 4;
  }
  __device__ static int col(int s) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    return (warp % 4) * WN + (s / 4) * 16 + (lane % 4) * 4 + s % 4;
  }
};

using TallLayout = WarpLayout<2>;   // the warptile rung: 128x128, 8 warps
using ShortLayout = WarpLayout<1>;  // 64x128, 4 warps

// acc += the product of one BK-deep slice, read from the shared tiles. Rows
// and columns are taken 4 at a time: each group of 4 is contiguous in both
// layouts, so a float4 shared load fetches it.
template <class Layout, int BK, int A_STRIDE, int B_STRIDE>
__device__ __forceinline__ void multiply_slice(const float* a_tile, const float* b_tile,
                                               float (&acc)[Layout::TM][Layout::TN]) {
#pragma unroll
  for (int p = 0; p < BK; ++p) {
    float a_frag[Layout::TM], b_frag[Layout::TN];
#pragma unroll
    for (int r = 0; r < Layout::TM; r += 4) {
      const float4 q = *reinterpret_cast<const float4*>(&a_tile[p * A_STRIDE + Layout::row(r)]);
      a_frag[r] = q.x; a_frag[r + 1] = q.y; a_frag[r + 2] = q.z; a_frag[r + 3] = q.w;
    }
#pragma unroll
    for (int s = 0; s < Layout::TN; s += 4) {
      const float4 q = *reinterpret_cast<const float4*>(&b_tile[p * B_STRIDE + Layout::col(s)]);
      b_frag[s] = q.x; b_frag[s + 1] = q.y; b_frag[s + 2] = q.z; b_frag[s + 3] = q.w;
    }
#pragma unroll
    for (int r = 0; r < Layout::TM; ++r)
#pragma unroll
      for (int s = 0; s < Layout::TN; ++s) acc[r][s] += a_frag[r] * b_frag[s];
  }
}

template <class Layout>
__device__ __forceinline__ void store_block(float* c, int64_t ldc, int64_t m, int64_t n,
                                            int64_t row0, int64_t col0,
                                            const float (&acc)[Layout::TM][Layout::TN],
                                            float alpha, float beta) {
#pragma unroll
  for (int r = 0; r < Layout::TM; ++r) {
    const int64_t i = row0 + Layout::row(r);
    if (i >= m) continue;
#pragma unroll
    for (int s = 0; s < Layout::TN; ++s) {
      const int64_t j = col0 + Layout::col(s);
      if (j < n) store_c(c, ldc, i, j, acc[r][s], alpha, beta);
    }
  }
}

// The arithmetic of a block tile, apart from how the tiles reach shared
// memory: FP32 FMAs on the CUDA cores, each thread holding Layout's 8x8
// piece of C in registers (rungs 4-7).
template <class Layout>
struct CudaCoreMath {
  float acc[Layout::TM][Layout::TN] = {};

  template <int BK, int A_STRIDE, int B_STRIDE>
  __device__ __forceinline__ void multiply(const float* a_tile, const float* b_tile) {
    multiply_slice<Layout, BK, A_STRIDE, B_STRIDE>(a_tile, b_tile, acc);
  }
  __device__ __forceinline__ void store(float* c, int64_t ldc, int64_t m, int64_t n,
                                        int64_t row0, int64_t col0, float alpha, float beta) {
    store_block<Layout>(c, ldc, m, n, row0, col0, acc, alpha, beta);
  }
};

// ---- rungs 4-6: one kernel, three configurations --------------------------

// One block's Layout::BM x Layout::BN tile of C. DOUBLE_BUFFER: the next
// slice is fetched into registers before this slice is multiplied and
// committed to the other buffer after, so one barrier per slice suffices and
// global latency hides behind the arithmetic. Math does the multiplying
// (CUDA cores, or tensor cores for the TF32 rung).
template <class Layout, int BK, bool VEC, bool DOUBLE_BUFFER, bool TA, bool TB,
          class Math = CudaCoreMath<Layout>>
__device__ __forceinline__ void tile_product(int64_t m, int64_t n, int64_t k, float alpha,
                                             const float* a, int64_t lda, const float* b,
                                             int64_t ldb, float beta, float* c, int64_t ldc) {
  using ALoader = TileLoader<!TA, Layout::BM, BK, Layout::THREADS, VEC>;
  using BLoader = TileLoader<TB, Layout::BN, BK, Layout::THREADS, VEC>;
  constexpr int kBuffers = DOUBLE_BUFFER ? 2 : 1;
  // 32-byte alignment: tensor-core fragment loads need it.
  __shared__ __align__(32) float a_tiles[kBuffers][BK * ALoader::STRIDE];
  __shared__ __align__(32) float b_tiles[kBuffers][BK * BLoader::STRIDE];

  const int64_t row0 = int64_t(blockIdx.y) * Layout::BM;
  const int64_t col0 = int64_t(blockIdx.x) * Layout::BN;
  Math math;
  ALoader a_loader;
  BLoader b_loader;
  constexpr int AS = ALoader::STRIDE, BS = BLoader::STRIDE;

  // With the warp layouts (rung 6 on), a block wholly inside C reads its
  // whole slices through the unchecked loaders (TileLoader::aim); edge
  // blocks and a partial last slice use the checked ones. Rungs 4-5 keep
  // the checked ones throughout: the unchecked path's pointers would take the
  // vectorized rung past 128 registers, and its second block per SM with it.
  // `whole` is a std::bool_constant, so each loop below is compiled with one
  // of the two paths and no branch between them.
  const bool interior =
      Layout::kUncheckedInterior && row0 + Layout::BM <= m && col0 + Layout::BN <= n;
  const int64_t whole_end = interior ? k / BK * BK : 0;
  if (interior) {
    a_loader.aim(a, lda, row0);
    b_loader.aim(b, ldb, col0);
  }
  const auto fetch = [&](int64_t k0, auto whole) {
    if constexpr (decltype(whole)::value) {
      a_loader.fetch_whole(lda, k0);
      b_loader.fetch_whole(ldb, k0);
    } else {
      a_loader.fetch(a, lda, row0, m, k0, k);
      b_loader.fetch(b, ldb, col0, n, k0, k);
    }
  };
  const auto commit = [&](int buffer) {
    a_loader.commit(a_tiles[buffer]);
    b_loader.commit(b_tiles[buffer]);
  };

  int64_t k0 = 0;
  if constexpr (!DOUBLE_BUFFER) {
    const auto slice = [&](auto whole) {
      fetch(k0, whole);
      commit(0);
      __syncthreads();
      math.template multiply<BK, AS, BS>(a_tiles[0], b_tiles[0]);
      __syncthreads();
    };
    for (; k0 < whole_end; k0 += BK) slice(std::true_type{});
    for (; k0 < k; k0 += BK) slice(std::false_type{});
  } else {
    if (k <= 0) return math.store(c, ldc, m, n, row0, col0, alpha, beta);
    fetch(0, std::false_type{});
    commit(0);
    __syncthreads();
    int current = 0;
    const auto step = [&](bool more, auto next_whole) {
      if (more) fetch(k0 + BK, next_whole);
      math.template multiply<BK, AS, BS>(a_tiles[current], b_tiles[current]);
      if (more) commit(current ^ 1);
      __syncthreads();
      current ^= 1;
    };
    for (; k0 + BK < whole_end; k0 += BK) step(true, std::true_type{});
    for (; k0 < k; k0 += BK) step(k0 + BK < k, std::false_type{});
  }
  math.store(c, ldc, m, n, row0, col0, alpha, beta);
}

template <class Layout, int BK, bool VEC, bool DOUBLE_BUFFER, bool TA, bool TB,
          class Math = CudaCoreMath<Layout>>
__global__ void __launch_bounds__(Layout::THREADS, Layout::kMinBlocks)
    sgemm_tiled(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  tile_product<Layout, BK, VEC, DOUBLE_BUFFER, TA, TB, Math>(m, n, k, alpha, a, lda, b, ldb,
                                                             beta, c, ldc);
}

// ---- the TF32 rung: tensor cores, chosen explicitly, never by `auto` -------

// The warptile rung's tiles, loaders and double buffering, with each warp's
// 64x32 piece of C held as 4 x 2 tensor-core accumulators of 16x16 and each
// 8-deep step of a slice done by mma instructions. Inputs are rounded to
// TF32 (10 mantissa bits, the format behind PyTorch's allow_tf32); products
// are summed in FP32. The tiles are stored k-major, which is op(A)
// column-major and op(B) row-major with the tile stride as leading dimension.
#if defined(PYKERNELS_CUDA_EMU) || !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
struct TensorCoreMath {
  using Layout = TallLayout;
  static constexpr int kFrag = 16, kFragK = 8;
  static constexpr int kRows = Layout::WM / kFrag, kCols = Layout::WN / kFrag;
  using Acc = wmma::fragment<wmma::accumulator, kFrag, kFrag, kFragK, float>;
  using AFrag = wmma::fragment<wmma::matrix_a, kFrag, kFrag, kFragK, wmma::precision::tf32,
                               wmma::col_major>;
  using BFrag = wmma::fragment<wmma::matrix_b, kFrag, kFrag, kFragK, wmma::precision::tf32,
                               wmma::row_major>;
  Acc acc[kRows][kCols];

  __device__ static int warp_row0() { return (threadIdx.x / 32) / 4 * Layout::WM; }
  __device__ static int warp_col0() { return (threadIdx.x / 32) % 4 * Layout::WN; }

  template <class Frag>
  __device__ static void round_to_tf32(Frag& frag) {
#pragma unroll
    for (int e = 0; e < frag.num_elements; ++e) frag.x[e] = wmma::__float_to_tf32(frag.x[e]);
  }

  __device__ TensorCoreMath() {
#pragma unroll
    for (auto& row : acc)
#pragma unroll
      for (auto& frag : row) wmma::fill_fragment(frag, 0.0f);
  }

  template <int BK, int A_STRIDE, int B_STRIDE>
  __device__ __forceinline__ void multiply(const float* a_tile, const float* b_tile) {
    static_assert(BK % kFragK == 0, "slice depth must be a multiple of the mma depth");
#pragma unroll
    for (int p = 0; p < BK; p += kFragK) {
      AFrag a_frag[kRows];
      BFrag b_frag[kCols];
#pragma unroll
      for (int i = 0; i < kRows; ++i) {
        wmma::load_matrix_sync(a_frag[i], a_tile + p * A_STRIDE + warp_row0() + i * kFrag,
                               A_STRIDE);
        round_to_tf32(a_frag[i]);
      }
#pragma unroll
      for (int j = 0; j < kCols; ++j) {
        wmma::load_matrix_sync(b_frag[j], b_tile + p * B_STRIDE + warp_col0() + j * kFrag,
                               B_STRIDE);
        round_to_tf32(b_frag[j]);
      }
#pragma unroll
      for (int i = 0; i < kRows; ++i)
#pragma unroll
        for (int j = 0; j < kCols; ++j) wmma::mma_sync(acc[i][j], a_frag[i], b_frag[j], acc[i][j]);
    }
  }

  // Which element of an accumulator a lane holds is unspecified, so each
  // 16x16 accumulator goes through a per-warp shared staging tile, from
  // which the lanes apply alpha, beta and the bounds of C.
  __device__ void store(float* c, int64_t ldc, int64_t m, int64_t n, int64_t row0, int64_t col0,
                        float alpha, float beta) {
    __shared__ __align__(32) float staging[Layout::THREADS / 32][kFrag * kFrag];
    float* mine = staging[threadIdx.x / 32];
    const int lane = threadIdx.x % 32;
#pragma unroll
    for (int i = 0; i < kRows; ++i) {
#pragma unroll
      for (int j = 0; j < kCols; ++j) {
        wmma::store_matrix_sync(mine, acc[i][j], kFrag, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < kFrag * kFrag; e += 32) {
          const int64_t gi = row0 + warp_row0() + i * kFrag + e / kFrag;
          const int64_t gj = col0 + warp_col0() + j * kFrag + e % kFrag;
          if (gi < m && gj < n) store_c(c, ldc, gi, gj, mine[e], alpha, beta);
        }
        __syncwarp();  // the next store_matrix_sync overwrites `mine`
      }
    }
  }
};
#else
// Compiled for a GPU older than sm_80 (CUDAARCHS set so): no TF32 mma there.
// The host refuses the rung on such a device before launching.
struct TensorCoreMath {
  using Layout = TallLayout;
  template <int BK, int A_STRIDE, int B_STRIDE>
  __device__ void multiply(const float*, const float*) { __trap(); }
  __device__ void store(float*, int64_t, int64_t, int64_t, int64_t, int64_t, float, float) {}
};
#endif

// ---- rung 7: split-K, for products whose tiles do not fill the GPU ---------

constexpr int kSplitBK = 16;  // the warptile rung's slice depth

// Block (x, y, z) multiplies batch entry z % count over the (z / count)-th
// `depth`-deep slab of K, into c + z * strides.c (entry e's slab j at
// c + (j * count + e) * strides.c). One slab (depth >= k): a strided batched
// product; one entry: split-K's partial products. depth is a multiple of
// kSplitBK, so the offset operands keep the 16-byte alignment that the float4
// loads need (the callers check the strides for it).
template <class Layout, bool VEC, bool TA, bool TB>
__global__ void __launch_bounds__(Layout::THREADS, Layout::kMinBlocks)
    sgemm_strided(int64_t m, int64_t n, int64_t k, int64_t depth, int64_t count, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc, BatchStrides strides) {
  const int64_t entry = blockIdx.z % count, k0 = int64_t(blockIdx.z / count) * depth;
  const int64_t slab = k - k0 < depth ? k - k0 : depth;
  a += entry * strides.a + (TA ? k0 * lda : k0);
  b += entry * strides.b + (TB ? k0 : k0 * ldb);
  tile_product<Layout, kSplitBK, VEC, true, TA, TB>(m, n, slab, alpha, a, lda, b, ldb, beta,
                                                    c + int64_t(blockIdx.z) * strides.c, ldc);
}

// ---- tuning candidates: not rungs; `pykernels bench gemm-gpu` times them
// beside the rungs on a GPU, to choose the next step from measurements.
// Plain row-major A and B only (float4 loads where aligned, as the rungs).
//
// The warptile rung needs 148-167 registers a thread, so one 256-thread block
// fits an SM (8 warps) and every barrier idles it; capped at 128 registers
// with BK = 8 (ptxas: no spills, where BK = 16 spills), two blocks share it,
// for twice the barriers per K.
template <bool VEC>
__global__ void __launch_bounds__(256, 2)
    sgemm_warptile_2blocks(int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                           int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                           int64_t ldc) {
  tile_product<TallLayout, 8, VEC, true, false, false>(m, n, k, alpha, a, lda, b, ldb, beta, c,
                                                       ldc);
}

// C = alpha * (sum of the partial products, taken in slab order) + beta * C:
// a fixed order, so repeated runs on one GPU agree bit for bit.
__global__ void splitk_reduce(const float* partials, int64_t splits, int64_t m, int64_t n,
                              float alpha, float beta, float* c, int64_t ldc) {
  const int64_t total = m * n, step = int64_t(gridDim.x) * blockDim.x;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    store_c(c, ldc, e / n, e % n, Slabs{partials, splits, total}.sum(e), alpha, beta);
  }
}

// ---- host side: pick the kernel, check the grid, launch --------------------

using KernelFn = void (*)(int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                          int64_t, float, float*, int64_t);

template <template <bool, bool> class Rung>
KernelFn pick_transposes(bool ta, bool tb) {
  if (ta) return tb ? Rung<true, true>::fn() : Rung<true, false>::fn();
  return tb ? Rung<false, true>::fn() : Rung<false, false>::fn();
}

template <bool TA, bool TB> struct NaiveRung {
  static KernelFn fn() { return sgemm_naive<TA, TB>; }
};
template <bool TA, bool TB> struct CoalescedRung {
  static KernelFn fn() { return sgemm_coalesced<TA, TB>; }
};
template <bool TA, bool TB> struct SmemRung {
  static KernelFn fn() { return sgemm_smem<TA, TB>; }
};
// Rungs 4-6 and the split-K partial products: one template each, the
// transposes and (VEC) float4 loads chosen at run time. Operands that are not
// 16-byte aligned (an offset view, a leading dimension not a multiple of 4)
// take the scalar loads.
template <class Layout, int BK, bool VEC, bool DOUBLE_BUFFER, class Math = CudaCoreMath<Layout>>
KernelFn tiled_kernel(bool ta, bool tb) {
  if (ta) {
    return tb ? sgemm_tiled<Layout, BK, VEC, DOUBLE_BUFFER, true, true, Math>
              : sgemm_tiled<Layout, BK, VEC, DOUBLE_BUFFER, true, false, Math>;
  }
  return tb ? sgemm_tiled<Layout, BK, VEC, DOUBLE_BUFFER, false, true, Math>
            : sgemm_tiled<Layout, BK, VEC, DOUBLE_BUFFER, false, false, Math>;
}

template <class Layout, int BK, bool DOUBLE_BUFFER, class Math = CudaCoreMath<Layout>>
KernelFn tiled_kernel(bool vec, bool ta, bool tb) {
  return vec ? tiled_kernel<Layout, BK, true, DOUBLE_BUFFER, Math>(ta, tb)
             : tiled_kernel<Layout, BK, false, DOUBLE_BUFFER, Math>(ta, tb);
}

using StridedFn = void (*)(int64_t, int64_t, int64_t, int64_t, int64_t, float, const float*,
                           int64_t, const float*, int64_t, float, float*, int64_t, BatchStrides);

template <class Layout, bool VEC>
StridedFn strided_kernel(bool ta, bool tb) {
  if (ta) {
    return tb ? sgemm_strided<Layout, VEC, true, true> : sgemm_strided<Layout, VEC, true, false>;
  }
  return tb ? sgemm_strided<Layout, VEC, false, true> : sgemm_strided<Layout, VEC, false, false>;
}

template <class Layout>
StridedFn strided_kernel(bool vec, bool ta, bool tb) {
  return vec ? strided_kernel<Layout, true>(ta, tb) : strided_kernel<Layout, false>(ta, tb);
}

struct LaunchPlan {
  KernelFn kernel;
  dim3 grid, block;
  const char* name;
};

bool float4_loads_ok(const float* a, int64_t lda, const float* b, int64_t ldb) {
  return aligned16(a) && aligned16(b) && lda % 4 == 0 && ldb % 4 == 0;
}

unsigned int ceil_div(int64_t a, int64_t b, const char* what) {
  const int64_t blocks = (a + b - 1) / b;
  if (blocks > 65535 && what != nullptr)
    throw std::invalid_argument(std::string("sgemm: ") + what + " too large for this rung's grid");
  return static_cast<unsigned int>(blocks);
}

// Auto's tile height: 64 rows (WarpLayout<1>, three blocks per SM), unless M
// needs more row blocks than a grid has (gridDim.y). Measured on an H200
// against the rung's 128x128 tiles (one block per SM, which every barrier
// idles): 1.70x at n = 1024 (twice the blocks, so 128 of 132 SMs busy
// instead of 64), 1.02x at 2048, 1.13x at 4096, 1.16x at 8192.
bool short_tiles(int64_t m) {
  constexpr int64_t kMaxRowBlocks = 65535;  // gridDim.y
  return (m + 63) / 64 <= kMaxRowBlocks;
}

// The warptile rung's launch; Math puts its products on the CUDA cores, or
// (the TF32 rung) on the tensor cores.
template <class Layout, class Math = CudaCoreMath<Layout>>
LaunchPlan warptile_plan(bool vec, bool ta, bool tb, int64_t m, int64_t n,
                         const char* name = "sgemm_warptile") {
  return {tiled_kernel<Layout, 16, true, Math>(vec, ta, tb),
          dim3(ceil_div(n, Layout::BN, nullptr), ceil_div(m, Layout::BM, "m")),
          dim3(Layout::THREADS), name};
}

void require_tf32_tensor_cores() {
  int device = 0, major = 0, minor = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
        "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device),
        "cudaDeviceGetAttribute");
  if (major < 8) {
    throw std::invalid_argument("sgemm: algo 'tf32' needs TF32 tensor cores (compute capability "
                                "8.0 or newer); this GPU has " + std::to_string(major) + "." +
                                std::to_string(minor));
  }
}

LaunchPlan plan(GemmAlgo algo, bool ta, bool tb, int64_t m, int64_t n, const float* a,
                int64_t lda, const float* b, int64_t ldb) {
  const bool vec = float4_loads_ok(a, lda, b, ldb);
  switch (algo) {
    case GemmAlgo::Naive:
      return {pick_transposes<NaiveRung>(ta, tb),
              dim3(ceil_div(m, 16, nullptr), ceil_div(n, 16, "n")), dim3(16, 16), "sgemm_naive"};
    case GemmAlgo::Coalesced:
      return {pick_transposes<CoalescedRung>(ta, tb),
              dim3(ceil_div(n, 32, nullptr), ceil_div(m, 8, "m")), dim3(32, 8), "sgemm_coalesced"};
    case GemmAlgo::Smem:
      return {pick_transposes<SmemRung>(ta, tb),
              dim3(ceil_div(n, kSmemTile, nullptr), ceil_div(m, kSmemTile, "m")),
              dim3(kSmemTile, kSmemTile), "sgemm_smem"};
    case GemmAlgo::RegBlock:
      return {tiled_kernel<BlockLayout, 8, false, false>(ta, tb),
              dim3(ceil_div(n, 128, nullptr), ceil_div(m, 128, "m")), dim3(256), "sgemm_regblock"};
    case GemmAlgo::Vectorized:
      return {tiled_kernel<BlockLayout, 8, true>(vec, ta, tb),
              dim3(ceil_div(n, 128, nullptr), ceil_div(m, 128, "m")), dim3(256),
              "sgemm_vectorized"};
    case GemmAlgo::WarpTile:
      return warptile_plan<TallLayout>(vec, ta, tb, m, n);
    case GemmAlgo::Tf32:
      require_tf32_tensor_cores();
      return warptile_plan<TensorCoreMath::Layout, TensorCoreMath>(vec, ta, tb, m, n,
                                                                   "sgemm_tf32");
    case GemmAlgo::Auto:
    case GemmAlgo::SplitK:  // when K is not split
      return short_tiles(m) ? warptile_plan<ShortLayout>(vec, ta, tb, m, n)
                            : warptile_plan<TallLayout>(vec, ta, tb, m, n);
  }
  throw std::invalid_argument("sgemm: unknown algo " + std::to_string(int(algo)));
}

// ---- split-K: when to cut K, and the two launches --------------------------

// Time of a product cut into `splits` slabs, in units of the unsplit
// product's time on a full GPU: blocks run in waves of `resident` (one
// 128-row block per SM; two 64-row ones, which have one 128-row block's warps
// and FMAs between them: a third fits too, see WarpLayout::kMinBlocks, but
// adds latency hiding rather than arithmetic; register use in
// docs/RESULTS.md), each block doing 1/splits of the work; plus the sum, which
// reads splits + 1 floats per element of C where the product spent 2K flops
// on it (kSumCost ~ 2 x FP32 rate / memory bandwidth in floats: about
// 2 x 40 TFLOP/s / (4.3 TB/s / 4 B) on an H200, rounded down).
double modeled_time(int64_t tiles, int64_t resident, int64_t splits, int64_t k) {
  constexpr double kSumCost = 16.0;
  const int64_t waves = (tiles * splits + resident - 1) / resident;
  const double sum = splits > 1 ? kSumCost * double(splits + 1) / double(k) : 0.0;
  return double(waves) / double(splits) + sum;
}

// How many K slabs. Auto takes the count that minimises modeled_time, and
// splits only where that promises at least kMinGain over the unsplit wave
// count (so a grid that fills the GPU several times over stays whole); slabs
// are at least kAutoMinDepth deep and the partial products within
// kMaxPartialFloats. An explicit algo="splitk" always splits, into enough
// slabs to fill the GPU once, down to one 16-deep slice per slab.
SgemmSplit choose_split(int64_t m, int64_t n, int64_t k, bool forced) {
  constexpr int64_t kAutoMinDepth = 64, kMaxSplits = 64;
  constexpr int64_t kMaxPartialFloats = int64_t{16} << 20;  // 64 MiB
  constexpr double kMinGain = 0.9;
  const bool short_layout = short_tiles(m);
  const int64_t tile_rows = short_layout ? ShortLayout::BM : TallLayout::BM;
  const int64_t tiles = ((m + tile_rows - 1) / tile_rows) * ((n + 127) / 128);
  const int64_t resident = int64_t(multiprocessor_count()) * (short_layout ? 2 : 1);
  const int64_t most = std::min({kMaxSplits, k / (forced ? kSplitBK : kAutoMinDepth),
                                 kMaxPartialFloats / (m * n)});
  int64_t splits = 1;
  if (forced) {
    splits = std::min(most, std::max<int64_t>(2, resident / tiles));
  } else {
    double best = kMinGain * modeled_time(tiles, resident, 1, k);
    for (int64_t s = 2; s <= most; ++s) {
      const double t = modeled_time(tiles, resident, s, k);
      if (t < best) {
        best = t;
        splits = s;
      }
    }
  }
  if (splits < 2) return {};
  return sgemm_split_into(k, splits);
}

// Scratch (StreamScratch: split-K's partial products) lives in stream-ordered
// memory (cudaMallocAsync) from the device's current pool. A pool with the default release threshold (0)
// hands its memory back to the driver at every synchronisation, so each call
// would map it afresh; once per device, a threshold lets the pool keep up to
// kKeep. (A pool that another library installed and tuned keeps any larger
// threshold it had.)
// Slabs of `depth` (a whole number of kSplitBK slices) that cover K with none empty.
bool is_split_of(const SgemmSplit& split, int64_t k) {
  return split.depth >= 1 && split.depth % kSplitBK == 0 && (split.splits - 1) * split.depth < k &&
         split.splits * split.depth >= k;
}

void keep_pool_memory() {
  constexpr std::uint64_t kKeep = std::uint64_t{256} << 20;
  static std::mutex mutex;
  static std::vector<int> done;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  const std::lock_guard<std::mutex> lock(mutex);
  if (std::find(done.begin(), done.end(), device) != done.end()) return;
  done.push_back(device);
  cudaMemPool_t pool;
  std::uint64_t threshold = 0, keep = kKeep;
  if (cudaDeviceGetMemPool(&pool, device) != cudaSuccess ||
      cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold) !=
          cudaSuccess ||
      (threshold < keep &&
       cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) != cudaSuccess)) {
    cudaGetLastError();  // no pool attributes here: allocations still work
  }
}

// Grid z is entries x slabs: (count * splits) layers of sgemm_strided.
void launch_strided(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const SgemmSplit& split,
                    int64_t count, float alpha, const float* a, int64_t lda, const float* b,
                    int64_t ldb, float beta, float* c, int64_t ldc, BatchStrides strides,
                    cudaStream_t stream) {
  constexpr int64_t kMaxLayers = 65535;  // gridDim.z
  const int64_t splits = std::max<int64_t>(1, split.splits);
  if (count > kMaxLayers / splits) {
    throw std::invalid_argument("sgemm: " + std::to_string(count) + " products x " +
                                std::to_string(splits) + " slabs exceed the grid's 65535 layers");
  }
  const bool vec = float4_loads_ok(a, lda, b, ldb) && strides.a % 4 == 0 && strides.b % 4 == 0;
  const bool short_layout = short_tiles(m);
  const int tile_rows = short_layout ? ShortLayout::BM : TallLayout::BM;
  const int threads = short_layout ? ShortLayout::THREADS : TallLayout::THREADS;
  const StridedFn kernel = short_layout ? strided_kernel<ShortLayout>(vec, ta, tb)
                                        : strided_kernel<TallLayout>(vec, ta, tb);
  const dim3 grid(ceil_div(n, 128, nullptr), ceil_div(m, tile_rows, "m"),
                  unsigned(count * splits));
  const int64_t depth = splits > 1 ? split.depth : std::max<int64_t>(k, 1);
  PK_LAUNCH(grid, dim3(threads), 0, stream, kernel)(m, n, k, depth, count, alpha, a, lda, b, ldb,
                                                    beta, c, ldc, strides);
  check_launch("sgemm_strided");
}

void launch_partials(const SgemmSplit& split, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                     const float* a, int64_t lda, const float* b, int64_t ldb, float* partials,
                     cudaStream_t stream) {
  launch_strided(ta, tb, m, n, k, split, 1, 1.0f, a, lda, b, ldb, 0.0f, partials, n,
                 {0, 0, m * n}, stream);
}

// false when no memory could be had for the partial products (then nothing
// was launched, and the caller runs the product unsplit, with other rounding:
// results are bitwise repeatable while memory suffices).
bool sgemm_split(const SgemmSplit& split, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                 float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                 float beta, float* c, int64_t ldc, cudaStream_t stream) {
  const StreamScratch partials(split.splits * m * n, stream);
  if (partials.data() == nullptr) return false;
  launch_partials(split, ta, tb, m, n, k, a, lda, b, ldb, partials.data(), stream);
  constexpr int kReduceThreads = 256;
  PK_LAUNCH(blocks_for(m * n, kReduceThreads, 65535u), kReduceThreads, 0, stream,
            splitk_reduce)(partials.data(), split.splits, m, n, alpha, beta, c, ldc);
  check_launch("splitk_reduce");
  return true;
}

}  // namespace

StreamScratch::StreamScratch(int64_t floats, cudaStream_t stream) : stream_(stream) {
  if (floats <= 0) return;
  keep_pool_memory();
  void* p = nullptr;
  if (cudaMallocAsync(&p, sizeof(float) * std::size_t(floats), stream) != cudaSuccess) {
    cudaGetLastError();  // no memory: the caller takes its path without scratch
    return;
  }
  data_ = static_cast<float*>(p);
}

StreamScratch::~StreamScratch() {
  if (data_ != nullptr) cudaFreeAsync(data_, stream_);
}

SgemmSplit sgemm_split_into(int64_t k, int64_t splits) {
  splits = std::clamp<int64_t>(splits, 1, std::max<int64_t>(1, k / kSplitBK));
  if (splits < 2) return {};
  const int64_t per_slab = (k + splits - 1) / splits;
  const int64_t depth = (per_slab + kSplitBK - 1) / kSplitBK * kSplitBK;
  return {(k + depth - 1) / depth, depth};
}

SgemmSplit sgemm_auto_split(int64_t m, int64_t n, int64_t k) {
  if (m == 0 || n == 0) return {};
  return choose_split(m, n, k, false);
}

void sgemm_partials(const SgemmSplit& split, bool trans_a, bool trans_b, int64_t m, int64_t n,
                    int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                    float* partials, cudaStream_t stream) {
  // Slabs a multiple of the slice deep (the float4 loads' alignment), none
  // empty, together covering K.
  if (split.splits < 2 || !is_split_of(split, k)) {
    throw std::invalid_argument("sgemm_partials: not a split of K = " + std::to_string(k));
  }
  if (m == 0 || n == 0) return;
  launch_partials(split, trans_a, trans_b, m, n, k, a, lda, b, ldb, partials, stream);
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                   int64_t ldc, int64_t count, BatchStrides strides, const SgemmSplit& split,
                   cudaStream_t stream) {
  if (split.splits > 1 && !is_split_of(split, k)) {
    throw std::invalid_argument("sgemm_batched: not a split of K = " + std::to_string(k));
  }
  if (m == 0 || n == 0 || count == 0) return;
  launch_strided(trans_a, trans_b, m, n, k, split, count, alpha, a, lda, b, ldb, beta, c, ldc,
                 strides, stream);
}

std::vector<std::string> sgemm_tuning_variants() { return {"warptile-bk8-2blocks"}; }

void sgemm_tuning(const std::string& variant, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc, cudaStream_t stream) {
  const bool vec = float4_loads_ok(a, lda, b, ldb);
  LaunchPlan p{};
  if (variant == "warptile-bk8-2blocks") {
    p = {vec ? sgemm_warptile_2blocks<true> : sgemm_warptile_2blocks<false>,
         dim3(ceil_div(n, 128, nullptr), ceil_div(m, 128, "m")), dim3(256),
         "sgemm_warptile_2blocks"};
  } else {
    throw std::invalid_argument("sgemm_tuning: unknown variant '" + variant + "'");
  }
  if (m == 0 || n == 0) return;
  PK_LAUNCH(p.grid, p.block, 0, stream, p.kernel)(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  check_launch(p.name);
}

int64_t sgemm_split_count(GemmAlgo algo, int64_t m, int64_t n, int64_t k) {
  if (m == 0 || n == 0 || (algo != GemmAlgo::Auto && algo != GemmAlgo::SplitK)) return 1;
  return choose_split(m, n, k, algo == GemmAlgo::SplitK).splits;
}

void sgemm(GemmAlgo algo, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
           float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
           float* c, int64_t ldc, cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  if (algo == GemmAlgo::Auto || algo == GemmAlgo::SplitK) {
    const SgemmSplit split = choose_split(m, n, k, algo == GemmAlgo::SplitK);
    if (split.splits > 1 && sgemm_split(split, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                                        beta, c, ldc, stream)) {
      return;
    }
  }
  const LaunchPlan p = plan(algo, trans_a, trans_b, m, n, a, lda, b, ldb);
  PK_LAUNCH(p.grid, p.block, 0, stream, p.kernel)(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  check_launch(p.name);
}

}  // namespace pk::cuda

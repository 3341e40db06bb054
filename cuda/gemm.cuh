#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.cuh"

namespace pk::cuda {

// The SGEMM ladder, slowest to fastest; each rung is in cuda/gemm.cu.
enum class GemmAlgo : int {
  Auto = 0,
  Naive = 1,       // one thread per C element, threads along rows: uncoalesced
  Coalesced = 2,   // one thread per C element, threads along columns
  Smem = 3,        // 32x32 tiles of A and B staged in shared memory
  RegBlock = 4,    // 128x128 block tile, 8x8 outputs per thread in registers
  Vectorized = 5,  // RegBlock + float4 global loads + double-buffered tiles
  WarpTile = 6,    // Vectorized + a warp-level 64x32 tile layout, BK = 16
  SplitK = 7,      // WarpTile with K split across blocks, then a fixed-order sum
  Tf32 = 8,        // WarpTile's tiles on tensor cores: TF32 inputs, FP32 sums; never auto
};

// Row-major C = alpha * op(A) op(B) + beta * C, the CPU sgemm's semantics
// (csrc/include/pykernels/gemm.h): op(A) is M x K, op(B) is K x N; with
// trans_a, A is stored K x M. beta == 0 never reads C. Device pointers; the
// work is queued on `stream`. Throws CudaError on a failed launch.
void sgemm(GemmAlgo algo, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
           float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
           float* c, int64_t ldc, cudaStream_t stream);

// How many K slabs sgemm cuts this product into on the current device (1:
// none), before it knows whether the partial products' memory can be had.
int64_t sgemm_split_count(GemmAlgo algo, int64_t m, int64_t n, int64_t k);

// The K slabs of auto's split for this product on the current device:
// `splits` of them (1: not split), each `depth` deep but the last.
struct SgemmSplit {
  int64_t splits = 1, depth = 0;
};
SgemmSplit sgemm_auto_split(int64_t m, int64_t n, int64_t k);

// Split-K without its sum: slab z's product op(A) op(B) (row-major M x N)
// into partials + z * M * N, which holds split.splits * M * N floats. For a
// kernel that adds the slabs up itself (Slabs in splitk.cuh, in sgemm's own
// order, so bit for bit sgemm's result) and so saves sgemm's summing launch.
void sgemm_partials(const SgemmSplit& split, bool trans_a, bool trans_b, int64_t m, int64_t n,
                    int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                    float* partials, cudaStream_t stream);

// K cut into `splits` slabs (at least 1, at most one per kSplitBK-deep
// slice), each a whole number of slices deep: depends on k and splits only.
SgemmSplit sgemm_split_into(int64_t k, int64_t splits);

// Element offsets between consecutive products of a batch.
struct BatchStrides {
  int64_t a = 0, b = 0, c = 0;
};

// `count` products in one launch, C_e = alpha op(A_e) op(B_e) + beta C_e with
// A_e = a + e * strides.a (likewise B_e, C_e), each as sgemm's auto without
// its split. With split.splits > 1 (a split of K from sgemm_split_into), slab j
// of product e is written, alpha and beta applied, to c + (j * count + e) *
// strides.c: the caller adds the slabs up (Slabs in splitk.cuh), in order.
// Operand strides that are multiples of 4 keep the float4 loads.
void sgemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                   int64_t ldc, int64_t count, BatchStrides strides, const SgemmSplit& split,
                   cudaStream_t stream);

// Scratch floats in stream-ordered memory (cudaMallocAsync from the device's
// pool), handed back on the stream when it goes out of scope. data() is null
// when `floats` is 0 or the memory cannot be had: callers then take a path
// that needs none.
class StreamScratch {
 public:
  StreamScratch(int64_t floats, cudaStream_t stream);
  ~StreamScratch();
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  float* data() const { return data_; }

 private:
  float* data_ = nullptr;
  cudaStream_t stream_;
};

// Tuning candidates (not rungs of the ladder): kernels the GPU benchmark
// times beside the rungs, for C = alpha * A B + beta * C with plain row-major
// A and B. Throws std::invalid_argument for another variant name.
std::vector<std::string> sgemm_tuning_variants();
void sgemm_tuning(const std::string& variant, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc, cudaStream_t stream);

}  // namespace pk::cuda

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

// Tuning candidates (not rungs of the ladder): kernels the GPU benchmark
// times beside the rungs, for C = alpha * A B + beta * C with plain row-major
// A and B. Throws std::invalid_argument for another variant name.
std::vector<std::string> sgemm_tuning_variants();
void sgemm_tuning(const std::string& variant, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc, cudaStream_t stream);

}  // namespace pk::cuda

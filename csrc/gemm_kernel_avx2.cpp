// AVX2 + FMA SGEMM micro-kernel (built with -mavx2 -mfma).
//
// Register tile: 6 x 16 of row-major C in 12 ymm accumulators. Each k step
// loads two 8-float vectors of the packed B row b[p*16 ..] and broadcasts the
// six packed A values a[p*6 + i]: 12 independent FMAs per step, with 2 B
// vectors and 1 broadcast that is 15 of the 16 ymm registers.
//
// Packing uses the portable packer in gemm.cpp. Only intrinsics and functions
// local to this file appear here, so nothing compiled with AVX2 can be shared
// with (and run by) portable code.
#include <immintrin.h>

#include <cstdint>

#include "pykernels/gemm_kernels.h"

namespace pk {
namespace gemm {
namespace {

constexpr int kRows = 6;
constexpr int kVecs = 2;

// Row p of B starts at b_row_at(p): 16 floats apart in a packed panel,
// anywhere for the shifted kernel.
template <typename BRow>
void tile_6x16(int64_t kc, const float* __restrict a, BRow b_row_at, float* c, int64_t ldc,
               float alpha, float beta) {
  // Fetch the C tile (rows ldc apart) early so it arrives while the FMAs run.
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 8 * kVecs - 1), _MM_HINT_T0);
  }
  __m256 acc[kRows][kVecs];
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) {
    acc[i][0] = _mm256_setzero_ps();
    acc[i][1] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < kc; ++p) {
    const float* b = b_row_at(p);
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 8
    for (int i = 0; i < kRows; ++i) {
      const __m256 a_i = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(a_i, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a_i, b1, acc[i][1]);
    }
    a += kRows;
  }
  const __m256 alpha_v = _mm256_set1_ps(alpha);
  const __m256 beta_v = _mm256_set1_ps(beta);
#pragma GCC unroll 8
  for (int i = 0; i < kRows; ++i) {
#pragma GCC unroll 2
    for (int v = 0; v < kVecs; ++v) {
      float* out = c + i * ldc + 8 * v;
      // beta == 0 must not read C: it may hold NaN.
      const __m256 scaled_c = beta == 0.0f ? _mm256_setzero_ps() : _mm256_mul_ps(beta_v, _mm256_loadu_ps(out));
      _mm256_storeu_ps(out, beta == 0.0f ? _mm256_mul_ps(alpha_v, acc[i][v])
                                         : _mm256_fmadd_ps(alpha_v, acc[i][v], scaled_c));
    }
  }
}

void kernel_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                 float beta) {
  tile_6x16(kc, a, [b](int64_t p) { return b + p * 8 * kVecs; }, c, ldc, alpha, beta);
}

// (one width: a tile is two vectors, and `cols` <= 16 is always both)
void shifted_6x16(int64_t kc, const float* a, const float* b, const int64_t* offsets, float* c,
                  int64_t ldc, float alpha, float beta, int64_t /*cols*/) {
  tile_6x16(kc, a, [b, offsets](int64_t p) { return b + offsets[p]; }, c, ldc, alpha, beta);
}

}  // namespace

// kc: the B micro-panel (kc * 64 bytes = 16 KiB) stays in L1 with room for
// the A stream; mc: the A block (~0.5 MiB) sits in L2; nc: the B block in L3.
extern const MicroKernel kAvx2Kernel = {
    kRows, 8 * kVecs, kernel_6x16, nullptr, shifted_6x16, nullptr, nullptr, 256, 480, 4096,
};

}  // namespace gemm
}  // namespace pk

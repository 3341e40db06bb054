// Portable SGEMM micro-kernel: plain C++, built without ISA flags (on x86-64
// the compiler may use SSE2, the baseline every CPU has).
//
// Register tile: 4 x 8 of row-major C. acc[i][j] += a[p*4 + i] * b[p*8 + j]
// over the packed panels; the j loop is two 4-wide SSE vectors per row, so
// the 8 accumulator vectors, 2 B vectors and a broadcast fit in 16 xmm.
#include <cstdint>

#include "pykernels/gemm_kernels.h"

namespace pk {
namespace gemm {
namespace {

constexpr int kRows = 4;
constexpr int kCols = 8;

// Row p of B starts at b_row_at(p): kCols floats apart in a packed panel,
// anywhere for the shifted kernel.
template <typename BRow>
void tile_4x8(int64_t kc, const float* __restrict a, BRow b_row_at, float* c, int64_t ldc,
              float alpha, float beta) {
  float acc[kRows][kCols] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const float* b = b_row_at(p);
    for (int i = 0; i < kRows; ++i) {
      for (int j = 0; j < kCols; ++j) acc[i][j] += a[i] * b[j];
    }
    a += kRows;
  }
  for (int i = 0; i < kRows; ++i) {
    float* out = c + i * ldc;
    for (int j = 0; j < kCols; ++j) {
      // beta == 0 must not read C: it may hold NaN.
      out[j] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * out[j];
    }
  }
}

void kernel_4x8(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                float beta) {
  tile_4x8(kc, a, [b](int64_t p) { return b + p * kCols; }, c, ldc, alpha, beta);
}

void shifted_4x8(int64_t kc, const float* a, const float* b, const int64_t* offsets, float* c,
                 int64_t ldc, float alpha, float beta, int64_t /*cols*/) {
  tile_4x8(kc, a, [b, offsets](int64_t p) { return b + offsets[p]; }, c, ldc, alpha, beta);
}

}  // namespace

// kc: the B micro-panel (kc * 32 bytes = 8 KiB) stays in L1; mc: the A block
// (~256 KiB) fits any L2; nc: the B block goes to L3.
extern const MicroKernel kGenericKernel = {
    kRows, kCols, kernel_4x8, nullptr, shifted_4x8, nullptr, nullptr, 256, 256, 4096,
};

}  // namespace gemm
}  // namespace pk

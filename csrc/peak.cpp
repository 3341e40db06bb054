// Peak probes. FMA throughput: enough independent accumulator chains per
// thread to cover the FMA latency on every port (latency 4 x 2 ports = 8
// chains minimum on current x86 cores; the loops use 12-16), so the loop runs
// at the issue rate and flops / time is the core's peak for that ISA.
// Read bandwidth: a parallel sum over an array much larger than the caches.
// Triad (STREAM's): a[i] = b[i] + s * c[i], two reads and one write per
// element, static schedule so each thread streams one contiguous slice.
#include "pykernels/peak.h"

#include <omp.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <algorithm>
#include <stdexcept>

namespace pk {

double peak::fma_loop_generic(int64_t iterations) {
  // Baseline x86-64 has no FMA: SSE mulps + addps on 16 chains is the honest
  // peak of the portable kernels. The empty asm pins each chain in a register
  // so the compiler cannot reason its way out of the loop (gcc 12 does).
  constexpr int kChains = 16;
#ifdef __SSE2__
  __m128 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm_set1_ps(1.0f + 0.001f * i);
  const __m128 mul = _mm_set1_ps(0.9999999f), add = _mm_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) {
      acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], mul), add);
      __asm__("" : "+x"(acc[i]));
    }
  }
  __m128 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm_add_ps(sum, acc[i]);
  volatile float sink = _mm_cvtss_f32(sum);
  (void)sink;
  return 2.0 * 4 * kChains * static_cast<double>(iterations);
#else
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = 1.0f + 0.001f * i;
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * 0.9999999f + 1e-7f;
    __asm__ volatile("" ::: "memory");
  }
  volatile float sink = acc[0];
  (void)sink;
  return 2.0 * kChains * static_cast<double>(iterations);
#endif
}

double fma_peak_flops(Isa isa, int64_t iterations, int threads) {
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
    throw std::invalid_argument(std::string("isa '") + isa_name(isa) + "' is not supported here");
  }
  double total = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    switch (isa) {
      case Isa::Avx512: total += peak::fma_loop_avx512(iterations); break;
      case Isa::Avx2: total += peak::fma_loop_avx2(iterations); break;
      default: total += peak::fma_loop_generic(iterations); break;
    }
  }
  return total;
}

double read_sum(const float* x, int64_t n) {
  // 32 float lanes per block keep eight independent SSE add chains busy, so
  // the loop is limited by memory, not by add latency; blocks of 4096 keep
  // the float partial sums short enough to stay accurate.
  constexpr int64_t kBlock = 4096;
  constexpr int kLanes = 32;
  const int64_t nblocks = (n + kBlock - 1) / kBlock;
  double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
  for (int64_t block = 0; block < nblocks; ++block) {
    const float* p = x + block * kBlock;
    const int64_t len = std::min(kBlock, n - block * kBlock);
    float lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= len; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) lanes[j] += p[i + j];
    }
    for (; i < len; ++i) lanes[0] += p[i];
    double block_sum = 0.0;
    for (int j = 0; j < kLanes; ++j) block_sum += lanes[j];
    total += block_sum;
  }
  return total;
}

void triad(float* a, const float* b, const float* c, float s, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

}  // namespace pk

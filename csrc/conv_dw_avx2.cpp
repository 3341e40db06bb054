// The weight gradient's dot tile (conv_dw_tile.inc) for AVX2: 2 output
// channels x 6 taps in 12 ymm sums (of 16 registers: two dy rows, the live
// mask and a tap's vector take the rest), 8 grid positions a step; dead
// positions are cleared by AND with the lane mask.
#include <immintrin.h>

#include "pykernels/conv_kernels.h"

namespace {
struct Lanes {
  using Vec = __m256;
  static constexpr int kWidth = 8;
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static Vec live(pk::conv_detail::LiveMask m, int64_t q) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(m.lanes + q));
  }
  static Vec load_live(Vec keep, const float* p) { return _mm256_and_ps(keep, _mm256_loadu_ps(p)); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(Vec v) {
    const __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 pair = _mm_add_ps(half, _mm_movehl_ps(half, half));
    return _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)));
  }
};
}  // namespace

#include "conv_dw_tile.inc"

namespace pk::conv_detail {
const DotTileKernel kDotTileAvx2 = {2, 6, &dot_tile<2, 6>};
}  // namespace pk::conv_detail

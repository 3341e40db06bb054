// Masked row copy of the implicit im2col for AVX2 (see conv_kernels.h):
// vmaskmovps does not fault on cleared lanes either.
#include <immintrin.h>

#include "pykernels/conv_kernels.h"

namespace pk::conv_detail {
namespace {

// Lane l of the result is all ones when bit l of `bits` is set.
__m256i lane_mask(uint32_t bits) {
  const __m256i lane_bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i spread = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), lane_bits);
  return _mm256_cmpeq_epi32(spread, lane_bits);
}

}  // namespace

void masked_copy_avx2(const float* src, uint64_t mask, int64_t count, float* dst) {
  for (int64_t v = 0; v < count; v += 8) {
    const int64_t left = count - v;
    const uint32_t lanes = left >= 8 ? 0xffu : (1u << left) - 1u;
    const uint32_t valid = static_cast<uint32_t>(mask >> v) & lanes;
    _mm256_maskstore_ps(dst + v, lane_mask(lanes), _mm256_maskload_ps(src + v, lane_mask(valid)));
  }
}

}  // namespace pk::conv_detail

// Masked row copy of the implicit im2col for AVX-512 (see conv_kernels.h):
// masked loads do not fault on cleared lanes, so the padding around an image
// costs nothing and is never read.
#include <immintrin.h>

#include "pykernels/conv_kernels.h"

namespace pk::conv_detail {

void masked_copy_avx512(const float* src, uint64_t mask, int64_t count, float* dst) {
  for (int64_t v = 0; v < count; v += 16) {
    const int64_t left = count - v;
    const __mmask16 lanes = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1u);
    const __mmask16 valid = __mmask16(mask >> v) & lanes;
    _mm512_mask_storeu_ps(dst + v, lanes, _mm512_maskz_loadu_ps(valid, src + v));
  }
}

}  // namespace pk::conv_detail

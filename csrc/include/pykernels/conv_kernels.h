// Internal contract between the convolution (conv.cpp) and its per-ISA
// pieces (conv_copy_<isa>.cpp): the masked row copy behind the implicit
// im2col, which packs GEMM panels straight from the input image.
//
// As in gemm_kernels.h, this header must stay free of inline code: the ISA
// files are compiled with ISA flags.
#pragma once

#include <cstdint>

namespace pk::conv_detail {

// dst[j] = (bit j of mask) ? src[j] : 0.0f for j < count (count <= 64). src[j]
// is never read where the bit is clear: those addresses are the zero padding
// around an image and may lie outside the input array.
using MaskedCopyFn = void (*)(const float* src, uint64_t mask, int64_t count, float* dst);

void masked_copy_generic(const float* src, uint64_t mask, int64_t count, float* dst);
void masked_copy_avx2(const float* src, uint64_t mask, int64_t count, float* dst);
void masked_copy_avx512(const float* src, uint64_t mask, int64_t count, float* dst);

}  // namespace pk::conv_detail

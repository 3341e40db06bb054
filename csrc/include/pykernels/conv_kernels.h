// Internal contract between the convolution (conv.cpp) and its per-ISA
// pieces: the masked row copy behind the implicit im2col, which packs GEMM
// panels straight from the input image (conv_copy_<isa>.cpp), and the dot
// tile of the weight gradient on shifted rows (conv_dw_<isa>.cpp).
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

// Which grid positions of the weight gradient's dot tiles count (the others
// are the dropped columns and rows of the shifted-rows grid): lanes[q] is ~0u
// where position q is live, 0 where it is dead.
struct LiveMask {
  const uint32_t* lanes;
};

// out[i * nt + t] = sum over q < count of dy[i * ldd + q] * x[offsets[t] + q],
// the terms at dead positions taken as zero whatever x holds there (a NaN
// pixel that a dead position happens to read adds nothing), for i < mr and
// t < nt. count is a multiple of 16; every dy row holds count floats, and
// every x + offsets[t] row count readable floats (dead ones included: a tile
// may load them before it masks them off).
using DotTileFn = void (*)(int64_t count, const float* dy, int64_t ldd, const float* x,
                           const int64_t* offsets, LiveMask live, float* out);

struct DotTileKernel {
  int mr;  // dy rows (output channels) of a tile
  int nt;  // taps (weight-gradient columns) of a tile
  DotTileFn tile;
};

// (AVX-512 CPUs run the AVX2 tile: a 16-lane tile has not yet been run on
// an AVX-512 machine.)
extern const DotTileKernel kDotTileGeneric;
extern const DotTileKernel kDotTileAvx2;

}  // namespace pk::conv_detail

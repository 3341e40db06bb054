// Internal contract between the packed SGEMM driver (gemm.cpp) and the
// per-ISA micro-kernels (gemm_kernel_<isa>.cpp).
//
// Packed panels: the driver copies MR rows of op(A) into an "A panel" stored
// k-major, a[p * MR + i], and NR columns of op(B) into a "B panel",
// b[p * NR + j], zero-padding rows/columns past the matrix edge. A
// micro-kernel then computes one MR x NR tile of row-major C:
//   C[i][j] = alpha * sum_p a[p*MR+i] * b[p*NR+j] + beta * C[i][j]
// summing p in increasing order (so results do not depend on threading),
// and never reading C when beta == 0.
//
// Each ISA file defines one MicroKernel constant. Those files are compiled
// with ISA flags, so this header must stay free of inline code: an inline
// function instantiated there could be the copy the linker keeps for
// everyone, and then run on a CPU without that ISA.
#pragma once

#include <cstdint>

namespace pk {
namespace gemm {

using MicroKernelFn = void (*)(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                               int64_t ldc, float alpha, float beta);

// A micro-kernel for the last column panel: computes at least the first
// `cols` columns of the tile (the ISA's vector granularity), same arithmetic.
using EdgeKernelFn = void (*)(int64_t kc, const float* a_panel, const float* b_panel, float* c,
                              int64_t ldc, float alpha, float beta, int64_t cols);

// The kernel's tile with B read in place rather than packed: row p of the
// tile's B is the nr (or, for `cols` < nr, at least `cols`) floats at
// b + offsets[p], unaligned. A stride-1 convolution's column matrix is the
// padded image read at a shift per tap (conv.cpp, "shifted rows"), so it
// needs no packing at all. Same arithmetic, per element, as `kernel`.
using ShiftedKernelFn = void (*)(int64_t kc, const float* a_panel, const float* b,
                                 const int64_t* offsets, float* c, int64_t ldc, float alpha,
                                 float beta, int64_t cols);

// Packs a kc-deep block of `extent` columns into ceil(extent / width)
// panels: column j of the block lands in panel q = j / width, stored at
// dst + q * width * kc as dst[p * width + j % width], with the value
//   src[p * ld + j]   (strided == false: a panel row is a contiguous run), or
//   src[j * ld + p]   (strided == true: read down columns, a transpose),
// and zeros past `extent` in the last panel. Working on whole blocks lets a
// packer read each source row once, front to back, which is what hardware
// prefetchers and the TLB like.
using PackFn = void (*)(const float* src, int64_t ld, bool strided, int64_t extent, int64_t kc,
                        int width, float* dst);

struct MicroKernel {
  int mr;                // rows of the register tile (A panel width)
  int nr;                // columns of the register tile (B panel width)
  MicroKernelFn kernel;  // needs mr * nr <= 4096
  EdgeKernelFn edge;     // partial column panels; nullptr = the full kernel
  ShiftedKernelFn shifted;  // B rows in place at per-row offsets
  PackFn pack_a;         // packs A panels of width mr; nullptr = portable packer
  PackFn pack_b;         // packs B panels of width nr; nullptr = portable packer
  int kc;                // depth of one packed block: B panel kc x nr stays in L1
  int mc;                // rows of a packed A block, kept in L2
  int nc;                // columns of a packed B block, kept in L3
};

extern const MicroKernel kGenericKernel;
extern const MicroKernel kAvx2Kernel;
extern const MicroKernel kAvx512Kernel;

}  // namespace gemm
}  // namespace pk

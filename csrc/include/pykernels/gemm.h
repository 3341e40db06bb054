// Single-precision GEMM on row-major matrices, BLAS semantics:
//   C = alpha * op(A) * op(B) + beta * C,   op(A) is M x K, op(B) is K x N.
// With trans_a, A is stored K x M (row-major, leading dimension lda), else
// M x K. Likewise B. beta == 0 overwrites C without reading it (NaN in C is
// ignored). All sizes may be zero. Callers validate shapes; this layer does not.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "pykernels/isa.h"

namespace pk {

enum class GemmAlgo : int { Auto = 0, Naive = 1, Blocked = 2, Packed = 3 };

void sgemm(GemmAlgo algo, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
           float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
           float* c, int64_t ldc);

// One operand of many products, packed once into the micro-kernel's panel
// layout: a convolution's weights across its image chunks, an LSTM's
// recurrent weights across time steps. The packed GEMM otherwise repacks
// op(A) or op(B) on every call (for AlexNet conv4 that copy was 8% of the
// forward pass). A product with a packed operand is bitwise the plain packed
// sgemm's: the same blocks, kernel and summation order.
class PackedOperand {
 public:
  enum class Side { A, B };

  // op(A) (m x k) as the A of later products, or op(B) (k x n) as their B.
  static PackedOperand pack_a(bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda);
  static PackedOperand pack_b(bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb);

  // Floats a packing of this size holds, for the active ISA.
  static int64_t floats(Side side, int64_t outer, int64_t depth);

  Side side() const { return side_; }
  int64_t outer() const { return outer_; }  // m for A, n for B
  int64_t depth() const { return depth_; }  // k
  Isa isa() const { return isa_; }          // whose micro-kernel layout it holds
  // Start of the panels of block [p0, p0 + kc) from row (A) or column (B) `at`.
  const float* panels(int64_t p0, int64_t at) const;

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  PackedOperand(Side side, int64_t outer, int64_t depth);

  Side side_;
  int64_t outer_, depth_;
  Isa isa_;
  int64_t padded_outer_ = 0, kc_ = 1;
  std::unique_ptr<float, Free> data_;
};

// An op(B) that packs its own panels instead of being read from memory: a
// convolution packs them straight from its input image ("implicit im2col"),
// so the column matrix is never written out and read back.
class BPanelSource {
 public:
  virtual ~BPanelSource() = default;
  // Rows [p0, p0 + kc) of columns [j0, j0 + cols) of op(B) as ceil(cols / nr)
  // panels: entry (p, j) lands at dst[q * nr * kc + (p - p0) * nr + (j - j0) % nr]
  // with q = (j - j0) / nr, zeros past `cols` in the last panel. nr <= 64 (the
  // widest register tile is 48). Called from the GEMM's threads concurrently
  // (for disjoint dst), so it must be thread-safe.
  virtual void pack(int64_t p0, int64_t kc, int64_t j0, int64_t cols, int nr, float* dst) const = 0;
};

// C = alpha * A * B + beta * C with A packed and B (k x n) from `b`.
void sgemm(const PackedOperand& a, const BPanelSource& b, int64_t n, float alpha, float beta,
           float* c, int64_t ldc);
// C = alpha * op(A) * B + beta * C with op(A) (m x k) from `a` and B (k x n)
// from `b`: bitwise the plain packed sgemm of the same matrices.
void sgemm(bool trans_a, int64_t m, int64_t k, float alpha, const float* a, int64_t lda,
           const BPanelSource& b, int64_t n, float beta, float* c, int64_t ldc);

// The active ISA's B packer, for a BPanelSource that stages its values first:
// panels of `width` columns from src as the kernels' packers lay them out
// (gemm_kernels.h's PackFn: src[p * ld + j], or src[j * ld + p] when strided).
void pack_b_panels(const float* src, int64_t ld, bool strided, int64_t extent, int64_t kc,
                   int width, float* dst);

// The register tile of a packing's micro-kernel: rows of A and columns of B
// one kernel call computes.
struct RegisterTile {
  int64_t rows, cols;
};
RegisterTile register_tile(Isa isa);

// C[:, j0:j1) = A @ B[:, j0:j1) with A packed (m = a.outer(), k = a.depth())
// and row p of B the floats b[offsets[p] + j], read in place ("shifted
// rows": a stride-1 convolution reads each tap's row of its column matrix
// from the padded image at one shift, conv.cpp). Single-threaded; bitwise the
// packed sgemm of the same matrices (alpha 1, beta 0). Whole register tiles
// are computed: C must have room for m rounded up to the tile's rows, and
// columns up to j1 rounded up to its columns (j0 a multiple of them), and B
// must be readable that far; what lands past m and j1 is not the product.
void sgemm_shifted_rows(const PackedOperand& a, const float* b, const int64_t* offsets,
                        int64_t j0, int64_t j1, float* c, int64_t ldc);

// C = alpha * A * op(B) + beta * C with A packed (m = a.outer(), k = a.depth()).
void sgemm(const PackedOperand& a, bool trans_b, int64_t n, float alpha, const float* b,
           int64_t ldb, float beta, float* c, int64_t ldc);
// C = alpha * op(A) * B + beta * C with B packed (n = b.outer(), k = b.depth()).
void sgemm(bool trans_a, int64_t m, float alpha, const float* a, int64_t lda,
           const PackedOperand& b, float beta, float* c, int64_t ldc);

}  // namespace pk

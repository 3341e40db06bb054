// Single-precision GEMM on row-major matrices, BLAS semantics:
//   C = alpha * op(A) * op(B) + beta * C,   op(A) is M x K, op(B) is K x N.
// With trans_a, A is stored K x M (row-major, leading dimension lda), else
// M x K. Likewise B. beta == 0 overwrites C without reading it (NaN in C is
// ignored). All sizes may be zero. Callers validate shapes; this layer does not.
#pragma once

#include <cstdint>

namespace pk {

enum class GemmAlgo : int { Auto = 0, Naive = 1, Blocked = 2, Packed = 3 };

void sgemm(GemmAlgo algo, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
           float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
           float* c, int64_t ldc);

}  // namespace pk

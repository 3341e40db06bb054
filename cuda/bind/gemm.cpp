#include <algorithm>
#include <string>

#include <pybind11/stl.h>

#include "bind/common.h"
#include "gemm.cuh"

namespace pk::cuda::bind {
namespace {

// Leading dimensions are checked against the stored shapes here, because a
// too-small one would make the kernel read or write past an operand.
void check_leading_dimension(const char* name, int64_t ld, int64_t stored_cols) {
  if (ld < std::max<int64_t>(1, stored_cols)) {
    throw std::invalid_argument(std::string("sgemm: ") + name + "=" + std::to_string(ld) +
                                " is smaller than the stored row length " +
                                std::to_string(stored_cols));
  }
}

void check_algo(int algo) {
  if (algo < int(GemmAlgo::Auto) || algo > int(GemmAlgo::Tf32)) {
    throw std::invalid_argument("sgemm: unknown algo " + std::to_string(algo));
  }
}

int64_t split_count_binding(int algo, int64_t m, int64_t n, int64_t k) {
  check_algo(algo);
  if (m < 0 || n < 0 || k < 0) throw std::invalid_argument("sgemm: sizes must be >= 0");
  return sgemm_split_count(GemmAlgo(algo), m, n, k);
}

void sgemm_binding(int algo, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                   float alpha, std::uintptr_t a, int64_t lda, std::uintptr_t b, int64_t ldb,
                   float beta, std::uintptr_t c, int64_t ldc, std::uintptr_t stream) {
  if (m < 0 || n < 0 || k < 0) {
    throw std::invalid_argument("sgemm: sizes must be >= 0, got m=" + std::to_string(m) +
                                " n=" + std::to_string(n) + " k=" + std::to_string(k));
  }
  check_algo(algo);
  check_leading_dimension("lda", lda, trans_a ? m : k);
  check_leading_dimension("ldb", ldb, trans_b ? k : n);
  check_leading_dimension("ldc", ldc, n);
  check_pointers(m * n, {c});
  check_pointers(m * n * k, {a, b});
  py::gil_scoped_release release;
  sgemm(GemmAlgo(algo), trans_a, trans_b, m, n, k, alpha, cptr(a), lda, cptr(b), ldb, beta,
        mptr(c), ldc, as_stream(stream));
}

void tuning_binding(const std::string& variant, int64_t m, int64_t n, int64_t k, float alpha,
                    std::uintptr_t a, int64_t lda, std::uintptr_t b, int64_t ldb, float beta,
                    std::uintptr_t c, int64_t ldc, std::uintptr_t stream) {
  if (m < 0 || n < 0 || k < 0) throw std::invalid_argument("sgemm_tuning: sizes must be >= 0");
  check_leading_dimension("lda", lda, k);
  check_leading_dimension("ldb", ldb, n);
  check_leading_dimension("ldc", ldc, n);
  check_pointers(m * n, {c});
  check_pointers(m * n * k, {a, b});
  py::gil_scoped_release release;
  sgemm_tuning(variant, m, n, k, alpha, cptr(a), lda, cptr(b), ldb, beta, mptr(c), ldc,
               as_stream(stream));
}

}  // namespace

void register_gemm(py::module_& m) {
  m.def("sgemm", &sgemm_binding, py::arg("algo"), py::arg("trans_a"), py::arg("trans_b"),
        py::arg("m"), py::arg("n"), py::arg("k"), py::arg("alpha"), py::arg("a"), py::arg("lda"),
        py::arg("b"), py::arg("ldb"), py::arg("beta"), py::arg("c"), py::arg("ldc"),
        py::arg("stream"));
  m.def("sgemm_tuning_variants", &sgemm_tuning_variants);
  m.def("sgemm_tuning", &tuning_binding, py::arg("variant"), py::arg("m"), py::arg("n"),
        py::arg("k"), py::arg("alpha"), py::arg("a"), py::arg("lda"), py::arg("b"),
        py::arg("ldb"), py::arg("beta"), py::arg("c"), py::arg("ldc"), py::arg("stream"),
        "A tuning candidate (not a rung): C = alpha A B + beta C, row-major A and B");
  m.def("sgemm_split_count", &split_count_binding, py::arg("algo"), py::arg("m"), py::arg("n"),
        py::arg("k"));
}

}  // namespace pk::cuda::bind

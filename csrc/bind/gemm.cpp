// gemm binding. Python (functional.gemm) turns transposed views into the
// transpose flags; here every operand is a 2-D float32 array whose rows are
// contiguous (unit column stride) with a row stride >= its width, i.e. a
// row-major matrix with a leading dimension. That contract is re-checked so a
// direct call can never make the kernel read or write outside an array.
#include <string>

#include "common.h"
#include "pykernels/gemm.h"

namespace pk::bind {
namespace {

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// Leading dimension (in floats) of a row-major 2-D view; throws if the view
// is not one.
int64_t leading_dim(const py::array& a, const char* name) {
  if (a.ndim() != 2) {
    throw std::invalid_argument(std::string(name) + " must be 2-D, got shape " + shape_str(a));
  }
  if (!py::isinstance<py::array_t<float>>(a) || a.itemsize() != 4 || a.dtype().kind() != 'f') {
    throw py::type_error(std::string(name) + " must be a float32 array");
  }
  const int64_t rows = a.shape(0), cols = a.shape(1);
  if (rows == 0 || cols == 0) return cols > 0 ? cols : 1;  // nothing is addressed
  if (cols > 1 && a.strides(1) != 4) {
    throw std::invalid_argument(std::string(name) + " must have contiguous rows");
  }
  if (rows <= 1) return cols > 0 ? cols : 1;
  if (a.strides(0) % 4 != 0 || a.strides(0) / 4 < cols) {
    throw std::invalid_argument(std::string(name) + " has a row stride smaller than its width");
  }
  return a.strides(0) / 4;
}

GemmAlgo parse_algo(const std::string& algo) {
  if (algo == "auto") return GemmAlgo::Auto;
  if (algo == "naive") return GemmAlgo::Naive;
  if (algo == "blocked") return GemmAlgo::Blocked;
  if (algo == "packed") return GemmAlgo::Packed;
  throw std::invalid_argument("algo must be 'auto', 'naive', 'blocked' or 'packed', got '" +
                              algo + "'");
}

void gemm(const py::array& a, const py::array& b, py::array& c, float alpha, float beta,
          bool trans_a, bool trans_b, const std::string& algo_name) {
  const GemmAlgo algo = parse_algo(algo_name);
  const int64_t lda = leading_dim(a, "a"), ldb = leading_dim(b, "b"), ldc = leading_dim(c, "c");
  const int64_t m = trans_a ? a.shape(1) : a.shape(0);
  const int64_t k = trans_a ? a.shape(0) : a.shape(1);
  const int64_t kb = trans_b ? b.shape(1) : b.shape(0);
  const int64_t n = trans_b ? b.shape(0) : b.shape(1);
  if (k != kb) {
    throw std::invalid_argument("inner dimensions do not match: a " + shape_str(a) + " and b " +
                                shape_str(b) + " (trans_a=" + std::to_string(trans_a) +
                                ", trans_b=" + std::to_string(trans_b) + ")");
  }
  if (c.shape(0) != m || c.shape(1) != n) {
    throw std::invalid_argument("c has shape " + shape_str(c) + ", expected (" +
                                std::to_string(m) + ", " + std::to_string(n) + ")");
  }
  if (!c.writeable()) throw std::invalid_argument("c is read-only");
  const float* ap = static_cast<const float*>(a.data());
  const float* bp = static_cast<const float*>(b.data());
  float* cp = static_cast<float*>(c.mutable_data());
  py::gil_scoped_release release;
  sgemm(algo, trans_a, trans_b, m, n, k, alpha, ap, lda, bp, ldb, beta, cp, ldc);
}

}  // namespace

void register_gemm(py::module_& m) {
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("alpha"),
        py::arg("beta"), py::arg("trans_a"), py::arg("trans_b"), py::arg("algo"),
        "c = alpha * op(a) @ op(b) + beta * c on row-major views, in place");
}

}  // namespace pk::bind

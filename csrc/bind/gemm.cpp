// gemm binding. Python (functional.gemm) turns transposed views into the
// transpose flags; here every operand is a 2-D float32 array whose rows are
// contiguous (unit column stride) with a row stride >= its width, i.e. a
// row-major matrix with a leading dimension. That contract is re-checked so a
// direct call can never make the kernel read or write outside an array.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

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

// Bytes [first, last) that a row-major view with leading dimension ld spans.
std::pair<const char*, const char*> span(const py::array& a, int64_t ld) {
  const char* first = static_cast<const char*>(a.data());
  if (a.size() == 0) return {first, first};
  return {first, first + ((a.shape(0) - 1) * ld + a.shape(1)) * sizeof(float)};
}

bool overlaps(const py::array& c, int64_t ldc, const py::array& x, int64_t ldx) {
  const auto [c0, c1] = span(c, ldc);
  const auto [x0, x1] = span(x, ldx);
  return c0 < x1 && x0 < c1;
}

// A dense copy of a row-major view; returns its data and sets its ld.
const float* copy_rows(const py::array& a, int64_t ld, std::vector<float>* out,
                       int64_t* ld_out) {
  const int64_t rows = a.shape(0), cols = a.shape(1);
  const float* src = static_cast<const float*>(a.data());
  out->resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(src + r * ld, src + r * ld + cols, out->data() + r * cols);
  }
  *ld_out = cols > 0 ? cols : 1;
  return out->data();
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
  // The kernel writes C while it still reads A and B: an input that overlaps
  // the output is read from a private copy instead.
  std::vector<float> a_copy, b_copy;
  int64_t lda_used = lda, ldb_used = ldb;
  if (overlaps(c, ldc, a, lda)) ap = copy_rows(a, lda, &a_copy, &lda_used);
  if (overlaps(c, ldc, b, ldb)) bp = copy_rows(b, ldb, &b_copy, &ldb_used);
  py::gil_scoped_release release;
  sgemm(algo, trans_a, trans_b, m, n, k, alpha, ap, lda_used, bp, ldb_used, beta, cp, ldc);
}

}  // namespace

void register_gemm(py::module_& m) {
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("alpha"),
        py::arg("beta"), py::arg("trans_a"), py::arg("trans_b"), py::arg("algo"),
        "c = alpha * op(a) @ op(b) + beta * c on row-major views, in place");
}

}  // namespace pk::bind

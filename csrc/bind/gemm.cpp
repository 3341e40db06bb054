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

// x's data, or a dense copy of it when it overlaps c: the kernel writes C
// while it still reads A and B. Sets *ld_used to the leading dimension read.
const float* unaliased(const py::array& x, int64_t ld, const py::array& c, int64_t ldc,
                       std::vector<float>* copy, int64_t* ld_used) {
  *ld_used = ld;
  if (overlaps(c, ldc, x, ld)) return copy_rows(x, ld, copy, ld_used);
  return static_cast<const float*>(x.data());
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
  std::vector<float> a_copy, b_copy;
  int64_t lda_used, ldb_used;
  const float* ap = unaliased(a, lda, c, ldc, &a_copy, &lda_used);
  const float* bp = unaliased(b, ldb, c, ldc, &b_copy, &ldb_used);
  float* cp = static_cast<float*>(c.mutable_data());
  py::gil_scoped_release release;
  sgemm(algo, trans_a, trans_b, m, n, k, alpha, ap, lda_used, bp, ldb_used, beta, cp, ldc);
}

// "a" or "b" -> the side a packed operand will take in later products.
PackedOperand::Side parse_side(const std::string& side) {
  if (side == "a") return PackedOperand::Side::A;
  if (side == "b") return PackedOperand::Side::B;
  throw std::invalid_argument("side must be 'a' or 'b', got '" + side + "'");
}

PackedOperand gemm_pack(const py::array& x, const std::string& side_name, bool trans) {
  const PackedOperand::Side side = parse_side(side_name);
  const int64_t ld = leading_dim(x, "x");
  const float* xp = static_cast<const float*>(x.data());
  const int64_t rows = trans ? x.shape(1) : x.shape(0), cols = trans ? x.shape(0) : x.shape(1);
  py::gil_scoped_release release;
  return side == PackedOperand::Side::A ? PackedOperand::pack_a(trans, rows, cols, xp, ld)
                                        : PackedOperand::pack_b(trans, rows, cols, xp, ld);
}

std::string packed_str(const PackedOperand& p) {
  const bool is_a = p.side() == PackedOperand::Side::A;
  return std::string("packed ") + (is_a ? "a (" : "b (") +
         std::to_string(is_a ? p.outer() : p.depth()) + ", " +
         std::to_string(is_a ? p.depth() : p.outer()) + ")";
}

// c = alpha * P @ op(x) + beta * c with P packed as A (side "a"), or
// c = alpha * op(x) @ P + beta * c with P packed as B (side "b").
void gemm_packed(const PackedOperand& packed, const std::string& side_name, const py::array& x,
                 py::array& c, float alpha, float beta, bool trans_x) {
  const bool packed_is_a = parse_side(side_name) == PackedOperand::Side::A;
  if ((packed.side() == PackedOperand::Side::A) != packed_is_a) {
    throw std::invalid_argument(packed_str(packed) + " was packed for the other side of a product");
  }
  const int64_t ldx = leading_dim(x, packed_is_a ? "b" : "a"), ldc = leading_dim(c, "c");
  const int64_t x_rows = trans_x ? x.shape(1) : x.shape(0);
  const int64_t x_cols = trans_x ? x.shape(0) : x.shape(1);
  if (packed.depth() != (packed_is_a ? x_rows : x_cols)) {
    throw std::invalid_argument("inner dimensions do not match: " + packed_str(packed) + " and " +
                                shape_str(x) + " (trans=" + std::to_string(trans_x) + ")");
  }
  const int64_t m = packed_is_a ? packed.outer() : x_rows;
  const int64_t n = packed_is_a ? x_cols : packed.outer();
  if (c.shape(0) != m || c.shape(1) != n) {
    throw std::invalid_argument("c has shape " + shape_str(c) + ", expected (" +
                                std::to_string(m) + ", " + std::to_string(n) + ")");
  }
  if (!c.writeable()) throw std::invalid_argument("c is read-only");
  std::vector<float> x_copy;
  int64_t ldx_used;
  const float* xp = unaliased(x, ldx, c, ldc, &x_copy, &ldx_used);
  float* cp = static_cast<float*>(c.mutable_data());
  py::gil_scoped_release release;
  if (packed_is_a) {
    sgemm(packed, trans_x, n, alpha, xp, ldx_used, beta, cp, ldc);
  } else {
    sgemm(trans_x, m, alpha, xp, ldx_used, packed, beta, cp, ldc);
  }
}

}  // namespace

void register_gemm(py::module_& m) {
  // module_local: another build of this module in the same process (the CUDA
  // emulator in tests, an A/B benchmark of two builds) registers its own.
  py::class_<PackedOperand>(m, "PackedOperand", py::module_local(),
                            "op(x) packed once for the GEMM micro-kernel (see gemm_pack)")
      .def_property_readonly("side", [](const PackedOperand& p) {
        return p.side() == PackedOperand::Side::A ? "a" : "b";
      })
      .def_property_readonly("shape", [](const PackedOperand& p) {
        return p.side() == PackedOperand::Side::A ? py::make_tuple(p.outer(), p.depth())
                                                  : py::make_tuple(p.depth(), p.outer());
      })
      .def_property_readonly("isa", [](const PackedOperand& p) { return isa_name(p.isa()); })
      .def("__repr__",
           [](const PackedOperand& p) { return "<PackedOperand " + packed_str(p) + ">"; });
  m.def("gemm_pack", &gemm_pack, py::arg("x"), py::arg("side"), py::arg("trans"),
        "op(x) packed as the A or B operand of later products");
  m.def("gemm_packed", &gemm_packed, py::arg("packed"), py::arg("side"), py::arg("x"),
        py::arg("c"), py::arg("alpha"), py::arg("beta"), py::arg("trans_x"),
        "c = alpha * P @ op(x) + beta * c (side 'a') or alpha * op(x) @ P + beta * c ('b')");
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("alpha"),
        py::arg("beta"), py::arg("trans_a"), py::arg("trans_b"), py::arg("algo"),
        "c = alpha * op(a) @ op(b) + beta * c on row-major views, in place");
}

}  // namespace pk::bind

// Dropout bindings: x / y / dy / dx float32 C-contiguous, mask uint8
// C-contiguous, all of one size; p in [0, 1]; seed a uint64.
#include <cstdint>
#include <string>

#include "common.h"
#include "pykernels/dropout.h"

namespace pk::bind {
namespace {

void require_probability(double p) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw std::invalid_argument("p must lie in [0, 1], got " + std::to_string(p));
  }
}

uint8_t* mask_ptr(const py::array& a, bool writable) {
  if (!py::isinstance<py::array_t<uint8_t>>(a) || a.dtype().kind() != 'u' || a.itemsize() != 1) {
    throw py::type_error("mask must be a uint8 array");
  }
  if (!(a.flags() & py::array::c_style)) throw std::invalid_argument("mask must be C-contiguous");
  if (writable && !a.writeable()) throw std::invalid_argument("mask is read-only");
  return static_cast<uint8_t*>(const_cast<void*>(a.data()));
}

}  // namespace

void register_dropout(py::module_& m) {
  m.def(
      "dropout_forward",
      [](const py::array& x, py::array& y, py::array& mask, double p, uint64_t seed) {
        require_probability(p);
        require_same_size(x, y, "x", "y");
        require_same_size(x, mask, "x", "mask");
        const float* xp = in_ptr(x, "x");
        float* yp = out_ptr(y, "y");
        uint8_t* mp = mask_ptr(mask, true);
        const int64_t n = x.size();
        py::gil_scoped_release release;
        dropout_forward(xp, yp, mp, n, p, seed);
      },
      py::arg("x"), py::arg("y"), py::arg("mask"), py::arg("p"), py::arg("seed"));
  m.def(
      "dropout_backward",
      [](const py::array& dy, const py::array& mask, py::array& dx, double p) {
        require_probability(p);
        require_same_size(dy, dx, "dy", "dx");
        require_same_size(dy, mask, "dy", "mask");
        const float* dyp = in_ptr(dy, "dy");
        const uint8_t* mp = mask_ptr(mask, false);
        float* dxp = out_ptr(dx, "dx");
        const int64_t n = dy.size();
        py::gil_scoped_release release;
        dropout_backward(dyp, mp, dxp, n, p);
      },
      py::arg("dy"), py::arg("mask"), py::arg("dx"), py::arg("p"));
}

}  // namespace pk::bind

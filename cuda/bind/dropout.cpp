// Dropout on raw device pointers: x / y / dy / dx float32 and mask uint8,
// all of n elements; p in [0, 1]; seed a uint64. Python validates shapes and
// dtypes; here only what a raw pointer allows is checked.
#include <string>

#include "bind/common.h"
#include "dropout.cuh"

namespace pk::cuda::bind {
namespace {

void require_probability(double p) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw std::invalid_argument("p must lie in [0, 1], got " + std::to_string(p));
  }
}

const uint8_t* mask_cptr(std::uintptr_t p) { return reinterpret_cast<const uint8_t*>(p); }
uint8_t* mask_mptr(std::uintptr_t p) { return reinterpret_cast<uint8_t*>(p); }

}  // namespace

void register_dropout(py::module_& m) {
  m.def(
      "dropout_forward",
      [](std::uintptr_t x, std::uintptr_t y, std::uintptr_t mask, int64_t n, double p,
         uint64_t seed, std::uintptr_t stream) {
        require_probability(p);
        check_pointers(n, {x, y, mask});
        py::gil_scoped_release release;
        dropout_forward(cptr(x), mptr(y), mask_mptr(mask), n, p, seed, as_stream(stream));
      },
      py::arg("x"), py::arg("y"), py::arg("mask"), py::arg("n"), py::arg("p"), py::arg("seed"),
      py::arg("stream"));
  m.def(
      "dropout_backward",
      [](std::uintptr_t dy, std::uintptr_t mask, std::uintptr_t dx, int64_t n, double p,
         std::uintptr_t stream) {
        require_probability(p);
        check_pointers(n, {dy, mask, dx});
        py::gil_scoped_release release;
        dropout_backward(cptr(dy), mask_cptr(mask), mptr(dx), n, p, as_stream(stream));
      },
      py::arg("dy"), py::arg("mask"), py::arg("dx"), py::arg("n"), py::arg("p"),
      py::arg("stream"));
}

}  // namespace pk::cuda::bind

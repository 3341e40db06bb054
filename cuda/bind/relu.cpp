#include "activation.cuh"
#include "bind/common.h"

namespace pk::cuda::bind {

void register_relu(py::module_& m) {
  m.def(
      "relu_forward",
      [](std::uintptr_t x, std::uintptr_t y, int64_t n, std::uintptr_t stream) {
        check_pointers(n, {x, y});
        py::gil_scoped_release release;
        relu_forward(cptr(x), mptr(y), n, as_stream(stream));
      },
      py::arg("x"), py::arg("y"), py::arg("n"), py::arg("stream"));
  m.def(
      "relu_backward",
      [](std::uintptr_t dy, std::uintptr_t y, std::uintptr_t dx, int64_t n, std::uintptr_t stream) {
        check_pointers(n, {dy, y, dx});
        py::gil_scoped_release release;
        relu_backward(cptr(dy), cptr(y), mptr(dx), n, as_stream(stream));
      },
      py::arg("dy"), py::arg("y"), py::arg("dx"), py::arg("n"), py::arg("stream"));
}

}  // namespace pk::cuda::bind

#include "common.h"
#include "pykernels/activation.h"

namespace pk::bind {

void register_relu(py::module_& m) {
  m.def(
      "relu_forward",
      [](const py::array& x, py::array& y) {
        require_same_size(x, y, "x", "y");
        const float* xp = in_ptr(x, "x");
        float* yp = out_ptr(y, "y");
        const int64_t n = x.size();
        py::gil_scoped_release release;
        relu_forward(xp, yp, n);
      },
      py::arg("x"), py::arg("y"), "y = relu(x) into a preallocated float32 array");
  m.def(
      "relu_backward",
      [](const py::array& dy, const py::array& y, py::array& dx) {
        require_same_size(dy, y, "dy", "y");
        require_same_size(dy, dx, "dy", "dx");
        const float* dyp = in_ptr(dy, "dy");
        const float* yp = in_ptr(y, "y");
        float* dxp = out_ptr(dx, "dx");
        const int64_t n = dy.size();
        py::gil_scoped_release release;
        relu_backward(dyp, yp, dxp, n);
      },
      py::arg("dy"), py::arg("y"), py::arg("dx"), "dx = relu_backward(dy, y) into dx");
}

}  // namespace pk::bind

// SGD step binding: param, grad and velocity float32 C-contiguous arrays of
// one size, param and velocity written in place; velocity may be None when
// momentum is 0. The hyperparameters were checked in Python.
#include <string>

#include "common.h"
#include "pykernels/sgd.h"

namespace pk::bind {

namespace {

// The kernel reads each array's element i before writing param's and
// velocity's: overlapping arrays would see each other's writes mid-step.
void require_disjoint(const float* a, const float* b, int64_t n, const char* what) {
  if (a != nullptr && b != nullptr && n > 0 && a < b + n && b < a + n) {
    throw std::invalid_argument(std::string(what) + " must not share memory");
  }
}

}  // namespace

void register_sgd(py::module_& m) {
  m.def(
      "sgd_step",
      [](py::array& param, const py::array& grad, const py::object& velocity, double lr,
         double momentum, double dampening, double weight_decay, bool nesterov,
         bool first_step) {
        const sgd::Hyper h = sgd::make_hyper(lr, momentum, dampening, weight_decay, nesterov);
        require_same_size(param, grad, "param", "grad");
        float* w = out_ptr(param, "param");
        const float* g = in_ptr(grad, "grad");
        const int64_t n = param.size();
        float* v = nullptr;
        if (h.momentum != 0.0f) {
          if (!py::isinstance<py::array>(velocity)) {
            throw py::type_error("momentum != 0 needs a float32 velocity array");
          }
          py::array velocity_array = velocity.cast<py::array>();
          require_same_size(param, velocity_array, "param", "velocity");
          v = out_ptr(velocity_array, "velocity");
          require_disjoint(w, v, n, "param and velocity");
          require_disjoint(g, v, n, "grad and velocity");
        }
        require_disjoint(w, g, n, "param and grad");
        py::gil_scoped_release release;
        sgd_step(w, g, v, n, h, first_step);
      },
      py::arg("param"), py::arg("grad"), py::arg("velocity"), py::arg("lr"),
      py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
      py::arg("first_step"), "One SGD step on param (and velocity) in place");
  m.def(
      "zero_fill",
      [](py::array& x) {
        float* xp = out_ptr(x, "x");
        const int64_t n = x.size();
        py::gil_scoped_release release;
        zero_fill(xp, n);
      },
      py::arg("x"), "x[...] = 0 for a C-contiguous float32 array, on every thread");
}

}  // namespace pk::bind

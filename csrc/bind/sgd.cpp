// SGD step binding: param, grad and velocity float32 C-contiguous arrays of
// one size, param and velocity written in place; velocity may be None when
// momentum is 0. The hyperparameters were checked in Python.
#include "common.h"
#include "pykernels/sgd.h"

namespace pk::bind {

void register_sgd(py::module_& m) {
  m.def(
      "sgd_step",
      [](py::array& param, const py::array& grad, const py::object& velocity, double lr,
         double momentum, double dampening, double weight_decay, bool nesterov,
         bool first_step) {
        require_same_size(param, grad, "param", "grad");
        float* w = out_ptr(param, "param");
        const float* g = in_ptr(grad, "grad");
        float* v = nullptr;
        if (momentum != 0.0) {
          if (velocity.is_none() || !py::isinstance<py::array>(velocity)) {
            throw std::invalid_argument("momentum != 0 needs a velocity array");
          }
          py::array velocity_array = velocity.cast<py::array>();
          require_same_size(param, velocity_array, "param", "velocity");
          v = out_ptr(velocity_array, "velocity");
        }
        // 1 - dampening in double, then rounded once: what NumPy does with
        // the Python float in the reference.
        const sgd::Hyper h{float(lr), float(momentum), float(1.0 - dampening),
                           float(weight_decay), nesterov};
        const int64_t n = param.size();
        py::gil_scoped_release release;
        sgd_step(w, g, v, n, h, first_step);
      },
      py::arg("param"), py::arg("grad"), py::arg("velocity"), py::arg("lr"),
      py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
      py::arg("first_step"), "One SGD step on param (and velocity) in place");
}

}  // namespace pk::bind

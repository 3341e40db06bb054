// SGD step on raw device pointers: param, grad and velocity float32 buffers of
// n elements (velocity 0 when momentum is 0). Python validates shapes, dtypes
// and the hyperparameters; here only what a raw pointer allows is checked.
#include "bind/common.h"
#include "sgd.cuh"

namespace pk::cuda::bind {

void register_sgd(py::module_& m) {
  m.def(
      "sgd_step",
      [](std::uintptr_t param, std::uintptr_t grad, std::uintptr_t velocity, int64_t n,
         double lr, double momentum, double dampening, double weight_decay, bool nesterov,
         bool first_step, std::uintptr_t stream) {
        const sgd::Hyper h = sgd::make_hyper(lr, momentum, dampening, weight_decay, nesterov);
        if (h.momentum != 0.0f) {
          check_pointers(n, {param, grad, velocity});
        } else {
          check_pointers(n, {param, grad});
          velocity = 0;
        }
        py::gil_scoped_release release;
        sgd_step(mptr(param), cptr(grad), mptr(velocity), n, h, first_step, as_stream(stream));
      },
      py::arg("param"), py::arg("grad"), py::arg("velocity"), py::arg("n"), py::arg("lr"),
      py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
      py::arg("first_step"), py::arg("stream"));
}

}  // namespace pk::cuda::bind

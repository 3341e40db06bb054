// Cross-entropy bindings: raw device pointers to logits / probs / dlogits
// (n, classes) float32, labels (n,) int64, and for the forward a scratch of
// n + 1 doubles whose last entry receives the mean loss. Labels are range
// checked in Python before the launch (the kernels cannot raise).
#include <string>

#include "bind/common.h"
#include "loss.cuh"

namespace pk::cuda::bind {
namespace {

void check_sizes(int64_t n, int64_t classes) {
  if (n < 0 || classes < 1) {
    throw std::invalid_argument("cross_entropy: need n >= 0 and classes >= 1, got n=" +
                                std::to_string(n) + " classes=" + std::to_string(classes));
  }
}

}  // namespace

void register_loss(py::module_& m) {
  m.def(
      "cross_entropy_forward",
      [](std::uintptr_t logits, std::uintptr_t labels, std::uintptr_t probs,
         std::uintptr_t workspace, int64_t n, int64_t classes, std::uintptr_t stream) {
        check_sizes(n, classes);
        check_pointers(n * classes, {logits, labels, probs});
        check_pointers(1, {workspace});
        if (workspace % alignof(double) != 0) {
          throw std::invalid_argument("cross_entropy: workspace must be 8-byte aligned");
        }
        py::gil_scoped_release release;
        cross_entropy_forward(reinterpret_cast<const float*>(logits),
                              reinterpret_cast<const int64_t*>(labels), n, classes, mptr(probs),
                              reinterpret_cast<double*>(workspace), as_stream(stream));
      },
      py::arg("logits"), py::arg("labels"), py::arg("probs"), py::arg("workspace"), py::arg("n"),
      py::arg("classes"), py::arg("stream"),
      "probs filled; workspace (n + 1 doubles) gets the row losses and, last, the mean loss");
  m.def(
      "cross_entropy_backward",
      [](std::uintptr_t probs, std::uintptr_t labels, std::uintptr_t dlogits, int64_t n,
         int64_t classes, std::uintptr_t stream) {
        check_sizes(n, classes);
        check_pointers(n * classes, {probs, labels, dlogits});
        py::gil_scoped_release release;
        cross_entropy_backward(cptr(probs), reinterpret_cast<const int64_t*>(labels), n, classes,
                               mptr(dlogits), as_stream(stream));
      },
      py::arg("probs"), py::arg("labels"), py::arg("dlogits"), py::arg("n"), py::arg("classes"),
      py::arg("stream"));
}

}  // namespace pk::cuda::bind

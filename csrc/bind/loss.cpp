// Cross-entropy bindings: logits / probs / dlogits (N, C) float32
// C-contiguous, labels (N,) int64 C-contiguous. A label outside [0, C) is
// reported as a ValueError; the kernels never index with it.
#include <string>

#include "common.h"
#include "pykernels/loss.h"

namespace pk::bind {
namespace {

void require_matrix(const py::array& a, const char* name) {
  if (a.ndim() != 2) {
    throw std::invalid_argument(std::string(name) + " must be 2-D (N, C), got " +
                                std::to_string(a.ndim()) + "-D");
  }
}

const int64_t* labels_ptr(const py::array& labels, int64_t n) {
  if (!py::isinstance<py::array_t<int64_t>>(labels) || labels.dtype().kind() != 'i' ||
      labels.itemsize() != 8) {
    throw py::type_error("labels must be an int64 array");
  }
  if (!(labels.flags() & py::array::c_style)) {
    throw std::invalid_argument("labels must be C-contiguous");
  }
  if (labels.ndim() != 1 || labels.shape(0) != n) {
    throw std::invalid_argument("labels must have shape (" + std::to_string(n) + ",)");
  }
  return static_cast<const int64_t*>(labels.data());
}

void require_same_matrix(const py::array& a, const py::array& b, const char* a_name,
                         const char* b_name) {
  require_matrix(a, a_name);
  require_matrix(b, b_name);
  if (a.shape(0) != b.shape(0) || a.shape(1) != b.shape(1)) {
    throw std::invalid_argument(std::string(a_name) + " and " + b_name +
                                " must have the same shape");
  }
}

void report_bad_label(int64_t row, const int64_t* labels, int64_t classes) {
  if (row >= 0) {
    throw std::invalid_argument("labels[" + std::to_string(row) + "] = " +
                                std::to_string(labels[row]) + " is outside [0, " +
                                std::to_string(classes) + ")");
  }
}

}  // namespace

void register_loss(py::module_& m) {
  m.def(
      "cross_entropy_forward",
      [](const py::array& logits, const py::array& labels, py::array& probs) {
        require_same_matrix(logits, probs, "logits", "probs");
        const int64_t n = logits.shape(0), classes = logits.shape(1);
        const int64_t* lp = labels_ptr(labels, n);
        const float* zp = in_ptr(logits, "logits");
        float* pp = out_ptr(probs, "probs");
        int64_t bad;
        double loss;
        {
          py::gil_scoped_release release;
          loss = cross_entropy_forward(zp, lp, n, classes, pp, &bad);
        }
        report_bad_label(bad, lp, classes);
        return loss;
      },
      py::arg("logits"), py::arg("labels"), py::arg("probs"), "mean loss; probs filled");
  m.def(
      "cross_entropy_backward",
      [](const py::array& probs, const py::array& labels, py::array& dlogits) {
        require_same_matrix(probs, dlogits, "probs", "dlogits");
        const int64_t n = probs.shape(0), classes = probs.shape(1);
        const int64_t* lp = labels_ptr(labels, n);
        const float* pp = in_ptr(probs, "probs");
        float* dp = out_ptr(dlogits, "dlogits");
        int64_t bad;
        {
          py::gil_scoped_release release;
          cross_entropy_backward(pp, lp, n, classes, dp, &bad);
        }
        report_bad_label(bad, lp, classes);
      },
      py::arg("probs"), py::arg("labels"), py::arg("dlogits"));
}

}  // namespace pk::bind

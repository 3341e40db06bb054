#include <string>

#include "bind/common.h"
#include "lstm.cuh"

namespace pk::cuda::bind {
namespace {

// n rows of h hidden units: the element count of a state, checked first so a
// negative size never reaches a kernel as a huge unsigned grid.
int64_t state_elements(int64_t n, int64_t h) {
  if (n < 0 || h < 0) {
    throw std::invalid_argument("lstm: n and h must be >= 0, got n=" + std::to_string(n) +
                                " h=" + std::to_string(h));
  }
  return n * h;
}

void forward(std::uintptr_t gates, std::uintptr_t bias, std::uintptr_t c, std::uintptr_t c1,
             std::uintptr_t h1, int64_t n, int64_t h, std::uintptr_t stream) {
  check_pointers(state_elements(n, h), {gates, bias, c, c1, h1});
  py::gil_scoped_release release;
  lstm_pointwise_forward(n, h, mptr(gates), cptr(bias), cptr(c), mptr(c1), mptr(h1),
                         as_stream(stream));
}

// dh_rec == 0 means "no recurrent gradient", as None does on the CPU.
void backward(std::uintptr_t dh1, std::uintptr_t dh_rec, std::uintptr_t dc,
              std::uintptr_t gates, std::uintptr_t c, std::uintptr_t dgates, int64_t n,
              int64_t h, std::uintptr_t stream) {
  check_pointers(state_elements(n, h), {dh1, dc, gates, c, dgates});
  py::gil_scoped_release release;
  lstm_pointwise_backward(n, h, cptr(dh1), dh_rec ? cptr(dh_rec) : nullptr, mptr(dc),
                          cptr(gates), cptr(c), mptr(dgates), as_stream(stream));
}

}  // namespace

void register_lstm(py::module_& m) {
  m.def("lstm_pointwise_forward", &forward, py::arg("gates"), py::arg("bias"), py::arg("c"),
        py::arg("c1"), py::arg("h1"), py::arg("n"), py::arg("h"), py::arg("stream"),
        "Activate (N, 4H) gates in place (adding bias) and write c1, h1");
  m.def("lstm_pointwise_backward", &backward, py::arg("dh1"), py::arg("dh_rec"), py::arg("dc"),
        py::arg("gates"), py::arg("c"), py::arg("dgates"), py::arg("n"), py::arg("h"),
        py::arg("stream"),
        "Write d(pre-activation gates); dc is updated in place to dL/dc (dh_rec 0: none)");
}

}  // namespace pk::cuda::bind

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

void recurrence_forward(int64_t steps, int64_t n, int64_t h, std::uintptr_t gates,
                        std::uintptr_t w_hh, std::uintptr_t bias, std::uintptr_t h0,
                        std::uintptr_t c0, std::uintptr_t y, std::uintptr_t cells,
                        std::uintptr_t stream) {
  if (steps < 0) throw std::invalid_argument("lstm: steps must be >= 0");
  check_pointers(steps * state_elements(n, h), {gates, w_hh, bias, h0, c0, y, cells});
  py::gil_scoped_release release;
  lstm_recurrence_forward(steps, n, h, mptr(gates), cptr(w_hh), cptr(bias), cptr(h0), cptr(c0),
                          mptr(y), mptr(cells), as_stream(stream));
}

void recurrence_backward(int64_t steps, int64_t n, int64_t h, std::uintptr_t dy,
                         std::uintptr_t dh, std::uintptr_t dc, std::uintptr_t gates,
                         std::uintptr_t cells, std::uintptr_t c0, std::uintptr_t w_hh,
                         std::uintptr_t dgates, std::uintptr_t stream) {
  if (steps < 0) throw std::invalid_argument("lstm: steps must be >= 0");
  check_pointers(steps * state_elements(n, h), {dy, dh, dc, gates, cells, c0, w_hh, dgates});
  py::gil_scoped_release release;
  lstm_recurrence_backward(steps, n, h, cptr(dy), mptr(dh), mptr(dc), cptr(gates), cptr(cells),
                           cptr(c0), cptr(w_hh), mptr(dgates), as_stream(stream));
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
  m.def("lstm_recurrence_forward", &recurrence_forward, py::arg("steps"), py::arg("n"),
        py::arg("h"), py::arg("gates"), py::arg("w_hh"), py::arg("bias"), py::arg("h0"),
        py::arg("c0"), py::arg("y"), py::arg("cells"), py::arg("stream"),
        "All T steps of the forward recurrence: gates (T, N, 4H) += h W_hh^T, activate, "
        "write cells and y");
  m.def("lstm_recurrence_backward", &recurrence_backward, py::arg("steps"), py::arg("n"),
        py::arg("h"), py::arg("dy"), py::arg("dh"), py::arg("dc"), py::arg("gates"),
        py::arg("cells"), py::arg("c0"), py::arg("w_hh"), py::arg("dgates"), py::arg("stream"),
        "Backward through time: dgates for every step; dh, dc from step T's to step 0's");
}

}  // namespace pk::cuda::bind

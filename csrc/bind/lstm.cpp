#include "common.h"
#include "pykernels/lstm.h"

namespace pk::bind {
namespace {

// (rows, 4H) gates: returns {rows, H}.
std::pair<int64_t, int64_t> gate_dims(const py::array& gates) {
  if (gates.ndim() != 2 || gates.shape(1) % 4 != 0) {
    throw std::invalid_argument("gates must be 2-D (N, 4*H)");
  }
  return {gates.shape(0), gates.shape(1) / 4};
}

void require_size(const py::array& a, int64_t size, const char* name) {
  if (a.size() != size) {
    throw std::invalid_argument(std::string(name) + " has " + std::to_string(a.size()) +
                                " elements, expected " + std::to_string(size));
  }
}

void forward(py::array& gates, const py::array& bias, const py::array& c, py::array& c1,
             py::array& h1) {
  const auto [n, h] = gate_dims(gates);
  require_size(bias, 4 * h, "bias");
  require_size(c, n * h, "c");
  require_size(c1, n * h, "c1");
  require_size(h1, n * h, "h1");
  float* gp = out_ptr(gates, "gates");
  const float* bp = in_ptr(bias, "bias");
  const float* cp = in_ptr(c, "c");
  float* c1p = out_ptr(c1, "c1");
  float* h1p = out_ptr(h1, "h1");
  py::gil_scoped_release release;
  lstm_pointwise_forward(n, h, gp, bp, cp, c1p, h1p);
}

void backward(const py::array& dh1, const py::object& dh_rec, py::array& dc,
              const py::array& gates, const py::array& c, py::array& dgates) {
  const auto [n, h] = gate_dims(gates);
  require_size(dh1, n * h, "dh1");
  require_size(dc, n * h, "dc");
  require_size(c, n * h, "c");
  require_size(dgates, n * 4 * h, "dgates");
  const float* dh_rec_p = nullptr;
  if (!dh_rec.is_none()) {
    const auto dh_rec_arr = dh_rec.cast<py::array>();
    require_size(dh_rec_arr, n * h, "dh_rec");
    dh_rec_p = in_ptr(dh_rec_arr, "dh_rec");
  }
  const float* dh1p = in_ptr(dh1, "dh1");
  float* dcp = out_ptr(dc, "dc");
  const float* gp = in_ptr(gates, "gates");
  const float* cp = in_ptr(c, "c");
  float* dgp = out_ptr(dgates, "dgates");
  py::gil_scoped_release release;
  lstm_pointwise_backward(n, h, dh1p, dh_rec_p, dcp, gp, cp, dgp);
}

}  // namespace

void register_lstm(py::module_& m) {
  m.def("lstm_pointwise_forward", &forward, py::arg("gates"), py::arg("bias"), py::arg("c"),
        py::arg("c1"), py::arg("h1"),
        "Activate gates in place (adding bias) and write c1, h1");
  m.def("lstm_pointwise_backward", &backward, py::arg("dh1"), py::arg("dh_rec"), py::arg("dc"),
        py::arg("gates"), py::arg("c"), py::arg("dgates"),
        "Write d(pre-activation gates); dc is updated in place to dL/dc");
}

}  // namespace pk::bind

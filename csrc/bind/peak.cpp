#include "common.h"
#include "pykernels/peak.h"

namespace pk::bind {

void register_peak(py::module_& m) {
  m.def(
      "fma_peak_flops",
      [](const std::string& isa, int64_t iterations, int threads) {
        if (iterations < 0 || threads < 1) {
          throw std::invalid_argument("iterations must be >= 0 and threads >= 1");
        }
        const Isa chosen = parse_isa(isa);
        py::gil_scoped_release release;
        return fma_peak_flops(chosen, iterations, threads);
      },
      py::arg("isa"), py::arg("iterations"), py::arg("threads"),
      "Run the FMA probe; returns the flops it performed");
  m.def(
      "read_sum",
      [](const py::array& x) {
        const float* p = in_ptr(x, "x");
        const int64_t n = x.size();
        py::gil_scoped_release release;
        return read_sum(p, n);
      },
      py::arg("x"), "Sum of a float32 array with all threads (read-bandwidth probe)");
  m.def(
      "triad",
      [](py::array& a, const py::array& b, const py::array& c, float s) {
        require_same_size(a, b, "a", "b");
        require_same_size(a, c, "a", "c");
        float* ap = out_ptr(a, "a");
        const float* bp = in_ptr(b, "b");
        const float* cp = in_ptr(c, "c");
        const int64_t n = a.size();
        py::gil_scoped_release release;
        triad(ap, bp, cp, s, n);
      },
      py::arg("a"), py::arg("b"), py::arg("c"), py::arg("s"),
      "STREAM triad a = b + s * c with all threads (bandwidth probe)");
}

}  // namespace pk::bind

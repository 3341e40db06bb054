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
}

}  // namespace pk::bind

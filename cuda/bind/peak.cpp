#include "bind/common.h"
#include "peak.cuh"

namespace pk::cuda::bind {

void register_peak(py::module_& m) {
  m.def(
      "fma_peak",
      [](std::uintptr_t sink, int64_t blocks, int64_t iterations, std::uintptr_t stream) {
        if (blocks < 0 || iterations < 0)
          throw std::invalid_argument("fma_peak: blocks and iterations must be >= 0");
        check_pointers(blocks, {sink});
        py::gil_scoped_release release;
        fma_peak(mptr(sink), blocks, iterations, as_stream(stream));
      },
      py::arg("sink"), py::arg("blocks"), py::arg("iterations"), py::arg("stream"));
  m.def("multiprocessor_count", &multiprocessor_count);
}

}  // namespace pk::cuda::bind

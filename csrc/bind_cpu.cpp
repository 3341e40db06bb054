// The _cpu extension module: build facts, thread and ISA control, and the
// per-op bindings registered from csrc/bind/. No math lives here.
#include <omp.h>
#include <pthread.h>

#include "bind/common.h"
#include "pykernels/isa.h"

#ifndef PYKERNELS_VERSION
#define PYKERNELS_VERSION "0+unknown"
#endif

namespace py = pybind11;

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "pykernels CPU kernels (C++, OpenMP, SIMD)";
  m.attr("__version__") = PYKERNELS_VERSION;
  m.attr("compiler") = __VERSION__;
  m.attr("openmp_version") = _OPENMP;

  // A forked child inherits libgomp's pool state but not its threads: its
  // first multi-threaded region would wait forever (multiprocessing "fork",
  // DataLoader-style workers). The child therefore runs single-threaded, as
  // PyTorch does; raising the count there again is not safe.
  pthread_atfork(nullptr, nullptr, [] { omp_set_num_threads(1); });

  m.def("get_num_threads", [] { return omp_get_max_threads(); },
        "Threads the next OpenMP parallel region of the calling thread may use");
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw std::invalid_argument("num_threads must be >= 1, got " + std::to_string(n));
        omp_set_num_threads(n);
      },
      py::arg("n"));
  m.def("num_procs", [] { return omp_get_num_procs(); });

  m.def("detected_isa", [] { return std::string(pk::isa_name(pk::detected_isa())); });
  m.def("get_isa", [] { return std::string(pk::isa_name(pk::active_isa())); });
  m.def(
      "set_isa", [](const std::string& name) { pk::set_active_isa(pk::parse_isa(name)); },
      py::arg("name"), "Use `name` (generic, avx2, avx512) for the SIMD kernels");

  pk::bind::register_relu(m);
  pk::bind::register_gemm(m);
  pk::bind::register_peak(m);
  pk::bind::register_conv(m);
  pk::bind::register_pool(m);
  pk::bind::register_batchnorm(m);
  pk::bind::register_dropout(m);
  pk::bind::register_loss(m);
  pk::bind::register_lstm(m);
  pk::bind::register_sgd(m);
}

// Shared by the _cuda binding files. Python passes raw device pointers
// (CuPy's .data.ptr) and a stream handle; bindings only unpack them, check
// what a raw pointer allows, release the GIL and call the launch wrapper.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "common.cuh"

namespace pk::cuda::bind {

namespace py = pybind11;

inline const float* cptr(std::uintptr_t p) { return reinterpret_cast<const float*>(p); }
inline float* mptr(std::uintptr_t p) { return reinterpret_cast<float*>(p); }

// A negative count, or a null pointer with work to do, is refused on the host
// before any launch; nothing more can be checked about a raw pointer.
inline void check_pointers(int64_t n, std::initializer_list<std::uintptr_t> ptrs) {
  if (n < 0) throw std::invalid_argument("element count must be >= 0, got " + std::to_string(n));
  if (n == 0) return;
  for (std::uintptr_t p : ptrs) {
    if (p == 0) throw std::invalid_argument("null device pointer for a non-empty array");
  }
}

// One function per op file registers that op's functions on the module.
void register_relu(py::module_& m);
void register_gemm(py::module_& m);
void register_peak(py::module_& m);
void register_conv(py::module_& m);
void register_pool(py::module_& m);
void register_batchnorm(py::module_& m);
void register_dropout(py::module_& m);
void register_loss(py::module_& m);
void register_lstm(py::module_& m);
void register_sgd(py::module_& m);

}  // namespace pk::cuda::bind

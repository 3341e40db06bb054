// Argument plumbing shared by the per-op binding files. The Python layer
// (pykernels.functional) validates and allocates; these checks are the last
// line of defence so that a direct call into _cpu can never hand a kernel a
// pointer of the wrong type, layout or size.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace pk::bind {

namespace py = pybind11;

inline void require_float32_contiguous(const py::array& a, const char* name) {
  if (!py::isinstance<py::array_t<float>>(a) || a.dtype().kind() != 'f' || a.itemsize() != 4) {
    throw py::type_error(std::string(name) + " must be a float32 array");
  }
  if (!(a.flags() & py::array::c_style)) {
    throw std::invalid_argument(std::string(name) + " must be C-contiguous");
  }
}

inline const float* in_ptr(const py::array& a, const char* name) {
  require_float32_contiguous(a, name);
  return static_cast<const float*>(a.data());
}

inline float* out_ptr(py::array& a, const char* name) {
  require_float32_contiguous(a, name);
  if (!a.writeable()) throw std::invalid_argument(std::string(name) + " is read-only");
  return static_cast<float*>(a.mutable_data());
}

inline void require_same_size(const py::array& a, const py::array& b, const char* a_name,
                              const char* b_name) {
  if (a.size() != b.size()) {
    throw std::invalid_argument(std::string(a_name) + " has " + std::to_string(a.size()) +
                                " elements but " + b_name + " has " +
                                std::to_string(b.size()));
  }
}

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

}  // namespace pk::bind

// The _cuda extension module. Python passes raw device pointers (CuPy's
// .data.ptr) and CuPy's current stream handle; this file only unpacks them,
// releases the GIL and translates CUDA failures into pykernels.CudaError.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "activation.cuh"
#include "common.cuh"

namespace py = pybind11;
using pk::cuda::as_stream;

namespace {

// Checked before any launch: a raw pointer cannot be validated further, but a
// negative count or a null pointer with work to do is refused here, on the host.
void check_elementwise(int64_t n, std::initializer_list<std::uintptr_t> ptrs) {
  if (n < 0) throw std::invalid_argument("element count must be >= 0, got " + std::to_string(n));
  if (n == 0) return;
  for (std::uintptr_t p : ptrs) {
    if (p == 0) throw std::invalid_argument("null device pointer for a non-empty array");
  }
}

const float* cptr(std::uintptr_t p) { return reinterpret_cast<const float*>(p); }
float* mptr(std::uintptr_t p) { return reinterpret_cast<float*>(p); }

// Never throws: a machine without a driver or GPU simply has zero devices.
int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  return count;
}

py::dict device_info(int device) {
  cudaDeviceProp prop{};
  pk::cuda::check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  py::dict info;
  info["name"] = std::string(prop.name);
  info["compute_capability"] = py::make_tuple(prop.major, prop.minor);
  info["total_memory"] = static_cast<std::uint64_t>(prop.totalGlobalMem);
  info["multiprocessors"] = prop.multiProcessorCount;
  return info;
}

void translate_cuda_error(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const pk::cuda::CudaError& e) {
    py::object cls = py::module_::import("pykernels._errors").attr("CudaError");
    PyErr_SetString(cls.ptr(), e.what());
  }
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "pykernels CUDA kernels";
  py::register_local_exception_translator(&translate_cuda_error);

  int runtime_version = 0;
  cudaRuntimeGetVersion(&runtime_version);
  m.attr("runtime_version") = runtime_version;
  m.def("device_count", &device_count);
  m.def("device_info", &device_info, py::arg("device") = 0);
  m.def("driver_version", [] {
    int v = 0;
    return cudaDriverGetVersion(&v) == cudaSuccess ? v : 0;
  });

  m.def(
      "relu_forward",
      [](std::uintptr_t x, std::uintptr_t y, int64_t n, std::uintptr_t stream) {
        check_elementwise(n, {x, y});
        py::gil_scoped_release release;
        pk::cuda::relu_forward(cptr(x), mptr(y), n, as_stream(stream));
      },
      py::arg("x"), py::arg("y"), py::arg("n"), py::arg("stream"));
  m.def(
      "relu_backward",
      [](std::uintptr_t dy, std::uintptr_t y, std::uintptr_t dx, int64_t n, std::uintptr_t stream) {
        check_elementwise(n, {dy, y, dx});
        py::gil_scoped_release release;
        pk::cuda::relu_backward(cptr(dy), cptr(y), mptr(dx), n, as_stream(stream));
      },
      py::arg("dy"), py::arg("y"), py::arg("dx"), py::arg("n"), py::arg("stream"));
}

// The _cuda extension module: device queries, the CudaError translation, and
// each op's functions registered from cuda/bind/<op>.cpp. Built a second time
// as _cuda_emu by tests/cuda_emu.py, on the CPU emulator (emu/cuda_emu.h).
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "bind/common.h"
#include "common.cuh"

#ifndef PYKERNELS_CUDA_MODULE_NAME
#define PYKERNELS_CUDA_MODULE_NAME _cuda
#endif

namespace py = pybind11;

namespace {

// Never throws: a machine without a driver or GPU simply has zero devices.
int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the error so later calls start clean
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

PYBIND11_MODULE(PYKERNELS_CUDA_MODULE_NAME, m) {
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
  m.def("synchronize", [](std::uintptr_t stream) {
    py::gil_scoped_release release;
    pk::cuda::check(cudaStreamSynchronize(pk::cuda::as_stream(stream)), "cudaStreamSynchronize");
  }, py::arg("stream"));

#ifdef PYKERNELS_CUDA_EMU
  m.def("emu_launch_count", [] { return pk_emu::launch_count.load(); },
        "Kernels the emulator has launched (emulator builds only)");
#endif

  pk::cuda::bind::register_relu(m);
  pk::cuda::bind::register_gemm(m);
  pk::cuda::bind::register_peak(m);
  pk::cuda::bind::register_conv(m);
  pk::cuda::bind::register_pool(m);
  pk::cuda::bind::register_batchnorm(m);
  pk::cuda::bind::register_dropout(m);
  pk::cuda::bind::register_loss(m);
  pk::cuda::bind::register_lstm(m);
  pk::cuda::bind::register_sgd(m);
}

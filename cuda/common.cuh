// Shared CUDA plumbing: every runtime call and every launch is checked, and a
// failure becomes pk::cuda::CudaError naming the kernel or call, which the
// binding layer turns into pykernels.CudaError (a RuntimeError).
#pragma once

#ifdef PYKERNELS_CUDA_EMU
#include "emu/cuda_emu.h"
// Every launch goes through this macro so that the CPU emulator (see
// emu/cuda_emu.h) can run the same kernels: PK_LAUNCH(grid, block, smem,
// stream, kernel<...>)(args...).
#define PK_LAUNCH(grid, block, smem, stream, ...) ::pk_emu::launch(grid, block, __VA_ARGS__)
#else
#include <cuda_runtime.h>
#define PK_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<grid, block, smem, stream>>>
#endif

#include <cstdint>
#include <stdexcept>
#include <string>

namespace pk::cuda {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw CudaError(std::string(what) + ": " + cudaGetErrorName(status) + " (" +
                    cudaGetErrorString(status) + ")");
  }
}

// Call right after a <<<...>>> launch: catches bad configurations at once;
// asynchronous faults surface at the next checked call on the stream.
inline void check_launch(const char* kernel_name) { check(cudaGetLastError(), kernel_name); }

inline cudaStream_t as_stream(std::uintptr_t handle) {
  return reinterpret_cast<cudaStream_t>(handle);
}

// float4 loads and stores need 16-byte alignment.
inline bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0; }

inline unsigned int blocks_for(int64_t work_items, int threads_per_block, unsigned int cap) {
  const int64_t blocks = (work_items + threads_per_block - 1) / threads_per_block;
  if (blocks < 1) return 1;
  return blocks > cap ? cap : static_cast<unsigned int>(blocks);
}

// Number of streaming multiprocessors of the current device: how many blocks
// fill the GPU.
inline int multiprocessor_count() {
  int device = 0, count = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device),
        "cudaDeviceGetAttribute");
  return count;
}

}  // namespace pk::cuda

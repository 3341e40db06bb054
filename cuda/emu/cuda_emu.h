// A CPU stand-in for the small part of CUDA that pykernels' kernels use, so
// that their indexing, tiling and bounds logic is tested on machines with no
// GPU (CI has none). Compiled only with -DPYKERNELS_CUDA_EMU by g++ (C++20),
// never into the wheel; tests/cuda_emu.py builds the emulated module.
//
// Model: a launch runs its blocks one after another; the threads of a block
// are real std::threads (reused from block to block), so __syncthreads and
// warp shuffles are real barriers and a missing barrier shows up as a wrong
// answer, as on a GPU. __shared__ becomes `static`, which is one copy per
// kernel instantiation: right because only one block runs at a time. What
// it cannot show: timing, memory coalescing, bank conflicts, and limits
// such as shared-memory size.
#pragma once

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
  unsigned int x = 1, y = 1, z = 1;
  constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1)
      : x(x_), y(y_), z(z_) {}
};
using uint3 = dim3;

struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) float2 { float x, y; };
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }

using cudaStream_t = struct CUstream_st*;
using cudaEvent_t = struct CUevent_st*;
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
};
enum cudaMemcpyKind { cudaMemcpyDefault = 4 };

namespace pk_emu {

struct BlockState {
  explicit BlockState(unsigned int threads)
      : block_barrier(threads), gone(std::make_unique<std::atomic<std::uint32_t>[]>(
                                    (threads + 31) / 32)) {
    const unsigned int warps = (threads + 31) / 32;
    for (unsigned int w = 0; w < warps; ++w) {
      const unsigned int lanes = std::min(32u, threads - 32 * w);
      warp_barriers.push_back(std::make_unique<std::barrier<>>(lanes));
      gone[w] = lanes == 32 ? 0u : ~0u << lanes;  // a partial warp's missing lanes
    }
    exchange.resize(std::size_t(warps) * 32);
  }
  std::barrier<> block_barrier;
  std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
  std::vector<std::uint64_t> exchange;  // one slot per lane for shuffles
  // Per warp, the lanes that have exited or do not exist: a warp collective
  // must not name them.
  std::unique_ptr<std::atomic<std::uint32_t>[]> gone;
};

inline thread_local dim3 thread_index, block_index;
inline thread_local BlockState* block_state = nullptr;
inline thread_local unsigned int linear_thread = 0;
inline dim3 block_dim, grid_dim;
inline cudaError_t last_error = cudaSuccess;
// Kernels launched so far (valid or not): tests count the launches of a code
// path whose speed on a GPU is launch latency (an LSTM time step).
inline std::atomic<std::uint64_t> launch_count{0};
inline std::mutex atomic_mutex;

// A fault inside a kernel (a misaligned address, say), which the GPU would
// report at the next checked call; any thread of the launch may raise it.
inline void fault(cudaError_t error) {
  std::lock_guard<std::mutex> lock(atomic_mutex);
  last_error = error;
}

inline std::barrier<>& warp_barrier() { return *block_state->warp_barriers[linear_thread / 32]; }

// The lane rules of the warp collectives, whose breach is undefined on a GPU
// (compute-sanitizer's synccheck reports some): the calling lane must be in
// the mask; lanes in it that have exited are not waited for, but a shuffle
// that reads one, or a lane that a partial warp lacks, or one outside the
// mask, gets an undefined value; a wmma call needs the whole warp. The
// emulator fails the launch instead. Every live lane of the warp takes part
// in each collective here, whatever the mask.
inline std::uint32_t lane_bit(unsigned int lane) { return 1u << (lane % 32); }
inline std::uint32_t gone_lanes() { return block_state->gone[linear_thread / 32].load(); }

// The whole warp meets, and `defined()` is asked between the two phases:
// then every live lane has arrived and none can have left since.
template <class Defined>
void warp_meet(Defined defined) {
  warp_barrier().arrive_and_wait();
  if (!defined()) fault(cudaErrorIllegalInstruction);
  warp_barrier().arrive_and_wait();
}

inline void whole_warp() {
  warp_meet([] { return gone_lanes() == 0; });
}

// Every lane of the warp publishes its value, then reads its partner's.
template <class T>
T shuffle_from(unsigned int mask, T value, unsigned int source_lane) {
  static_assert(sizeof(T) <= sizeof(std::uint64_t));
  const unsigned int warp_base = (linear_thread / 32) * 32;
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  block_state->exchange[linear_thread] = bits;
  warp_barrier().arrive_and_wait();
  const std::uint32_t source_bit = lane_bit(source_lane), own_bit = lane_bit(linear_thread);
  if (!(mask & own_bit) || !(mask & source_bit) || (gone_lanes() & source_bit)) {
    fault(cudaErrorIllegalInstruction);
  }
  T result = value;
  const unsigned int source = warp_base + source_lane;
  std::memcpy(&result, &block_state->exchange[source], sizeof(T));
  warp_barrier().arrive_and_wait();
  return result;
}

inline bool valid_config(dim3 grid, dim3 block) {
  const std::uint64_t threads = std::uint64_t(block.x) * block.y * block.z;
  return threads >= 1 && threads <= 1024 && block.z <= 64 && grid.x >= 1 && grid.y >= 1 &&
         grid.z >= 1 && grid.y <= 65535 && grid.z <= 65535;
}

// The order blocks run in. A GPU promises none, so a kernel whose answer
// depends on it (two blocks writing one element, a block reading what
// another wrote) is wrong; PYKERNELS_EMU_BLOCK_ORDER=reverse or =shuffle (a
// new permutation each launch) runs the tests under other orders to show it.
// Empty: the natural order.
inline std::vector<std::uint64_t> block_order(std::uint64_t blocks) {
  const char* kind = std::getenv("PYKERNELS_EMU_BLOCK_ORDER");
  if (kind == nullptr || *kind == '\0') return {};
  std::vector<std::uint64_t> order(blocks);
  for (std::uint64_t b = 0; b < blocks; ++b) order[b] = b;
  if (std::strcmp(kind, "reverse") == 0) {
    std::reverse(order.begin(), order.end());
  } else if (std::strcmp(kind, "shuffle") == 0) {
    static std::atomic<std::uint64_t> launches{0};
    std::mt19937_64 generator(0x9e3779b97f4a7c15ull + launches++);
    std::shuffle(order.begin(), order.end(), generator);
  }
  return order;
}

template <class... Params>
struct Launch {
  dim3 grid, block;
  void (*kernel)(Params...);

  // One OS thread per GPU thread of a block, created once per launch and
  // reused for every block: thread creation would otherwise dominate.
  template <class... Args>
  void operator()(Args&&... args) const {
    ++launch_count;
    if (!valid_config(grid, block)) {
      last_error = cudaErrorInvalidConfiguration;
      return;
    }
    block_dim = block;
    grid_dim = grid;
    const unsigned int threads = block.x * block.y * block.z;
    const std::uint64_t blocks = std::uint64_t(grid.x) * grid.y * grid.z;
    const std::vector<std::uint64_t> order = block_order(blocks);
    std::unique_ptr<BlockState> state = std::make_unique<BlockState>(threads);
    std::barrier<> between_blocks(threads);
    std::vector<std::thread> workers;
    workers.reserve(threads);
    for (unsigned int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        linear_thread = t;
        thread_index = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
        for (std::uint64_t i = 0; i < blocks; ++i) {
          const std::uint64_t b = order.empty() ? i : order[i];
          block_state = state.get();
          block_index = dim3(unsigned(b % grid.x), unsigned((b / grid.x) % grid.y),
                             unsigned(b / (std::uint64_t(grid.x) * grid.y)));
          kernel(args...);
          state->gone[t / 32] |= 1u << (t % 32);
          // An exited thread no longer holds back barriers, as on the GPU.
          state->block_barrier.arrive_and_drop();
          warp_barrier().arrive_and_drop();
          between_blocks.arrive_and_wait();  // the whole block is done
          if (t == 0) state = std::make_unique<BlockState>(threads);
          between_blocks.arrive_and_wait();  // everyone sees the fresh state
        }
      });
    }
    for (auto& w : workers) w.join();
  }
};

template <class... Params>
Launch<Params...> launch(dim3 grid, dim3 block, void (*kernel)(Params...)) {
  return {grid, block, kernel};
}

}  // namespace pk_emu

#define threadIdx ::pk_emu::thread_index
#define blockIdx ::pk_emu::block_index
#define blockDim ::pk_emu::block_dim
#define gridDim ::pk_emu::grid_dim

inline void __syncthreads() { pk_emu::block_state->block_barrier.arrive_and_wait(); }
inline void __syncwarp(unsigned int mask = 0xffffffffu) {
  pk_emu::warp_meet([mask] { return (mask & pk_emu::lane_bit(pk_emu::linear_thread)) != 0; });
}

template <class T>
T __shfl_sync(unsigned int mask, T value, int source_lane, int width = 32) {
  const unsigned int lane = pk_emu::linear_thread % 32;
  const unsigned int base = lane - lane % width;
  return pk_emu::shuffle_from(mask, value, base + unsigned(source_lane) % width);
}
template <class T>
T __shfl_xor_sync(unsigned int mask, T value, int lane_mask, int width = 32) {
  const unsigned int lane = pk_emu::linear_thread % 32;
  const unsigned int base = lane - lane % width;
  return pk_emu::shuffle_from(mask, value, base + ((lane % width) ^ unsigned(lane_mask)) % width);
}
template <class T>
T __shfl_down_sync(unsigned int mask, T value, unsigned int delta, int width = 32) {
  const unsigned int lane = pk_emu::linear_thread % 32;
  const unsigned int in_segment = lane % width;
  const unsigned int source = in_segment + delta < unsigned(width) ? lane + delta : lane;
  return pk_emu::shuffle_from(mask, value, source);
}

template <class T>
T atomicAdd(T* address, T value) {
  std::lock_guard<std::mutex> lock(pk_emu::atomic_mutex);
  const T old = *address;
  *address = old + value;
  return old;
}

template <class T>
T __ldg(const T* p) { return *p; }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline unsigned int __float_as_uint(float x) { unsigned int u; std::memcpy(&u, &x, 4); return u; }
inline float __uint_as_float(unsigned int u) { float x; std::memcpy(&x, &u, 4); return x; }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }

// Host API: only what the launch wrappers and bindings call.
inline cudaError_t cudaGetLastError() {
  const cudaError_t e = pk_emu::last_error;
  pk_emu::last_error = cudaSuccess;
  return e;
}
inline cudaError_t cudaPeekAtLastError() { return pk_emu::last_error; }
inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorIllegalInstruction: return "cudaErrorIllegalInstruction";
    case cudaErrorMisalignedAddress: return "cudaErrorMisalignedAddress";
  }
  return "cudaErrorUnknown";
}
inline const char* cudaGetErrorString(cudaError_t e) {
  if (e == cudaErrorIllegalInstruction) {
    return "emulator: a warp collective broke its lane rules (a shuffle read a lane that had "
           "exited, does not exist or is outside the mask; the caller was outside the mask; or a "
           "wmma call lacked part of its warp), undefined on a GPU";
  }
  return cudaGetErrorName(e);
}
inline cudaError_t cudaGetDeviceCount(int* count) { *count = 0; return cudaErrorNoDevice; }
inline cudaError_t cudaGetDevice(int* device) { *device = 0; return cudaSuccess; }
inline cudaError_t cudaRuntimeGetVersion(int* v) { *v = 0; return cudaSuccess; }
inline cudaError_t cudaDriverGetVersion(int* v) { *v = 0; return cudaSuccess; }
struct cudaDeviceProp {
  char name[256];
  int major, minor, multiProcessorCount, clockRate;
  std::size_t totalGlobalMem;
};
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp*, int) { return cudaErrorNoDevice; }
enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
};
// Two "multiprocessors", so launches sized by SM count stay small here;
// PYKERNELS_EMU_SMS overrides it, so tests can reach the choices that a
// larger GPU makes (how many K slices a split-K product gets, say).
// The compute capability is an H100's (9.0), or PYKERNELS_EMU_CC_MAJOR's.
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  if (attr == cudaDevAttrComputeCapabilityMajor || attr == cudaDevAttrComputeCapabilityMinor) {
    const char* major = std::getenv("PYKERNELS_EMU_CC_MAJOR");
    const int major_value = major != nullptr ? std::atoi(major) : 9;
    *value = attr == cudaDevAttrComputeCapabilityMinor ? 0 : major_value;
    return cudaSuccess;
  }
  const char* sms = std::getenv("PYKERNELS_EMU_SMS");
  *value = sms != nullptr && std::atoi(sms) > 0 ? std::atoi(sms) : 2;
  return cudaSuccess;
}
// Stream-ordered allocation: plain host memory here, since launches run at
// once, filled with NaN bytes as a pool's recycled block holds garbage (a
// kernel that reads scratch it never wrote then fails its test).
// PYKERNELS_EMU_MALLOC_FAIL=1 makes it fail as a full GPU would, so the
// tests reach the callers' fallbacks.
inline cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t) {
  const char* fail = std::getenv("PYKERNELS_EMU_MALLOC_FAIL");
  *p = fail != nullptr && std::atoi(fail) != 0 ? nullptr : std::malloc(bytes == 0 ? 1 : bytes);
  if (*p == nullptr) {
    pk_emu::last_error = cudaErrorMemoryAllocation;
    return cudaErrorMemoryAllocation;
  }
  std::memset(*p, 0xff, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaFreeAsync(void* p, cudaStream_t) {
  std::free(p);
  return cudaSuccess;
}
using cudaMemPool_t = struct CUmemPool_st*;
enum cudaMemPoolAttr { cudaMemPoolAttrReleaseThreshold = 4 };
inline cudaError_t cudaDeviceGetMemPool(cudaMemPool_t* pool, int) {
  *pool = nullptr;
  return cudaSuccess;
}
inline cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t, cudaMemPoolAttr, void* value) {
  *static_cast<std::uint64_t*>(value) = 0;
  return cudaSuccess;
}
inline cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr, void*) {
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void* p, int value, std::size_t bytes, cudaStream_t) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind,
                                   cudaStream_t) {
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

// Controls for the emulator's checks: each kernel has a planted fault and a
// fixed twin; tools/emu_sanitize.sh builds the first three with a sanitizer,
// which must report the fault and stay quiet on the twin, and
// tests/test_cuda_emulator.py builds ORDER and LANES. If a planted fault is
// not caught, the emulator no longer shows that class of bug, and a clean
// run of the tests would mean nothing.
//   RACE / SYNC (ThreadSanitizer): each thread writes its slot of a shared
//     array, then reads its neighbour's; only SYNC puts a barrier between.
//   MISALIGNED / ALIGNED (UndefinedBehaviorSanitizer): a float4 load one
//     float past a 16-byte boundary, which faults on a GPU, or on it.
//   OUT_OF_BOUNDS / IN_BOUNDS (AddressSanitizer): each thread copies one
//     float of a 64-float heap buffer; the planted last thread reads one past
//     its end, which memcheck reports on a GPU.
//   ORDER (no sanitizer): every block writes its index to one element, so
//     the last block to run wins; the answer must change when
//     PYKERNELS_EMU_BLOCK_ORDER=reverse, or block orders are not varied.
//   LANES (no sanitizer): a full-warp shuffle sum with every lane live, then
//     with half the lanes gone before it (returned early, or missing from a
//     48-thread block), whose values it reads: the emulator must fail those
//     two launches, but not a full-mask __syncwarp after lanes returned
//     (it waits for the live lanes only, which is defined).
#include <cstdio>
#include <cstdlib>

#include "emu/cuda_emu.h"

// The planted variant of a pair, or its fixed twin.
#if defined(RACE) || defined(MISALIGNED) || defined(OUT_OF_BOUNDS)
constexpr bool kPlanted = true;
#else
constexpr bool kPlanted = false;
#endif

__global__ void read_neighbour(const float* in, float* out) {
  __shared__ float slots[64];
  slots[threadIdx.x] = in[threadIdx.x];
  if (!kPlanted) __syncthreads();
  out[threadIdx.x] = slots[(threadIdx.x + 1) % 64];
}

__global__ void load_quad(const float* in, float* out, int offset) {
  const float4 q = *reinterpret_cast<const float4*>(in + offset + 4 * threadIdx.x);
  out[threadIdx.x] = q.x + q.y + q.z + q.w;
}

__global__ void warp_sum(const float* in, float* out, unsigned int leave_from) {
  if (threadIdx.x >= leave_from) return;
  float v = in[threadIdx.x];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  out[threadIdx.x] = v;
}

__global__ void copy_shifted(const float* in, float* out, int shift) {
  out[threadIdx.x] = in[threadIdx.x + shift];
}

__global__ void sync_after_exit(float* out, unsigned int leave_from) {
  if (threadIdx.x >= leave_from) return;
  out[threadIdx.x] = 1.0f;
  __syncwarp();
}

__global__ void last_block_wins(float* out) {
  if (threadIdx.x == 0) out[0] = float(blockIdx.x);
}

int main() {
  alignas(16) float in[8 * 64 + 8];
  float out[64] = {};
  for (int i = 0; i < 8 * 64 + 8; ++i) in[i] = float(i + 1);
#if defined(RACE) || defined(SYNC)
  pk_emu::launch(dim3(4), dim3(64), read_neighbour)(in, out);
#elif defined(OUT_OF_BOUNDS) || defined(IN_BOUNDS)
  float* heap = static_cast<float*>(std::malloc(64 * sizeof(float)));
  for (int i = 0; i < 64; ++i) heap[i] = float(i);
  pk_emu::launch(dim3(1), dim3(64), copy_shifted)(heap, out, kPlanted ? 1 : 0);
  std::free(heap);
#elif defined(LANES)
  const char* cases[] = {"all lanes", "lanes 16-31 returned", "a 48-thread block"};
  const unsigned int threads[] = {32, 32, 48}, leave_from[] = {32, 16, 48};
  for (int c = 0; c < 3; ++c) {
    pk_emu::launch(dim3(1), dim3(threads[c]), warp_sum)(in, out, leave_from[c]);
    std::printf("%s: %s\n", cases[c], cudaGetErrorName(cudaGetLastError()));
  }
  pk_emu::launch(dim3(1), dim3(32), sync_after_exit)(out, 16);
  std::printf("__syncwarp after lanes 16-31 returned: %s\n",
              cudaGetErrorName(cudaGetLastError()));
#elif defined(ORDER)
  pk_emu::launch(dim3(8), dim3(32), last_block_wins)(out);
  std::printf("last block to run: %g\n", out[0]);
#else
  pk_emu::launch(dim3(2), dim3(64), load_quad)(in, out, kPlanted ? 1 : 4);
#endif
  std::printf("out[63] = %g\n", out[63]);
  return 0;
}

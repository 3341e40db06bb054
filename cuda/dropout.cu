// Inverted dropout on the GPU, forward and backward, on flat float32 buffers.
//   forward:  mask[i] = draw(seed, i) >= round(p * 2^32),  y[i] = x[i] * (mask[i] ? 1/(1-p) : 0)
//   backward: dx[i] = dy[i] * (mask[i] ? 1/(1-p) : 0)
// The draw is the CPU's counter-based generator (pykernels/counter_rng.h):
// one splitmix64 hash per element pair (2j, 2j + 1), low half for the even
// element, high half for the odd one, so a seed gives the same mask here as
// in csrc/dropout.cpp whatever the launch shape.
// Memory-bound (9 bytes moved per element; two 64-bit multiplies per pair of
// elements are far below the integer throughput). When x, y and mask are
// 16/16/4-byte aligned, each thread of a grid-stride loop takes 4 elements:
// a float4 in, a float4 and one 32-bit word of 4 mask bytes out, and two
// hashes; the scalar loop takes unaligned buffers and the tail.
#include "dropout.cuh"

#include "pykernels/counter_rng.h"

namespace pk::cuda {
namespace {

constexpr int kThreads = 256;
constexpr unsigned int kMaxBlocks = 65535u * 4u;

__device__ __forceinline__ uint8_t keep_at(uint64_t key, uint64_t threshold, uint64_t i) {
  return rng::keep_bit(rng::pair_draw(rng::hash_pair(key, i / 2), i), threshold);
}

__device__ __forceinline__ float masked(float v, uint32_t keep, float scale) {
  return v * (keep ? scale : 0.0f);
}

__global__ void dropout_forward_scalar(const float* __restrict__ x, float* __restrict__ y,
                                       uint8_t* __restrict__ mask, int64_t begin, int64_t n,
                                       uint64_t key, uint64_t threshold, float scale) {
  for (int64_t i = begin + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const uint8_t keep = keep_at(key, threshold, uint64_t(i));
    mask[i] = keep;
    y[i] = masked(x[i], keep, scale);
  }
}

// Quad q holds elements 4q .. 4q + 3: pairs 2q and 2q + 1. The mask bytes are
// packed little-endian into one word, element 4q in the lowest byte.
__global__ void dropout_forward_vec4(const float4* __restrict__ x, float4* __restrict__ y,
                                     uint32_t* __restrict__ mask, int64_t quads, uint64_t key,
                                     uint64_t threshold, float scale) {
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < quads;
       q += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t h0 = rng::hash_pair(key, uint64_t(2 * q));
    const uint64_t h1 = rng::hash_pair(key, uint64_t(2 * q + 1));
    const uint32_t k0 = rng::keep_bit(rng::pair_draw(h0, 0), threshold);
    const uint32_t k1 = rng::keep_bit(rng::pair_draw(h0, 1), threshold);
    const uint32_t k2 = rng::keep_bit(rng::pair_draw(h1, 0), threshold);
    const uint32_t k3 = rng::keep_bit(rng::pair_draw(h1, 1), threshold);
    const float4 v = x[q];
    y[q] = make_float4(masked(v.x, k0, scale), masked(v.y, k1, scale), masked(v.z, k2, scale),
                       masked(v.w, k3, scale));
    mask[q] = k0 | (k1 << 8) | (k2 << 16) | (k3 << 24);
  }
}

__global__ void dropout_backward_scalar(const float* __restrict__ dy,
                                        const uint8_t* __restrict__ mask, float* __restrict__ dx,
                                        int64_t begin, int64_t n, float scale) {
  for (int64_t i = begin + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = masked(dy[i], mask[i], scale);
}

__global__ void dropout_backward_vec4(const float4* __restrict__ dy,
                                      const uint32_t* __restrict__ mask, float4* __restrict__ dx,
                                      int64_t quads, float scale) {
  for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q < quads;
       q += int64_t(gridDim.x) * blockDim.x) {
    const float4 g = dy[q];
    const uint32_t m = mask[q];
    dx[q] = make_float4(masked(g.x, m & 0xFFu, scale), masked(g.y, (m >> 8) & 0xFFu, scale),
                        masked(g.z, (m >> 16) & 0xFFu, scale), masked(g.w, m >> 24, scale));
  }
}

bool aligned(const void* p, std::uintptr_t bytes) {
  return (reinterpret_cast<std::uintptr_t>(p) & (bytes - 1)) == 0;
}

}  // namespace

void dropout_forward(const float* x, float* y, uint8_t* mask, int64_t n, double p, uint64_t seed,
                     cudaStream_t stream) {
  if (n <= 0) return;
  const uint64_t key = rng::dropout_key(seed);
  const uint64_t threshold = rng::drop_threshold(p);
  const float scale = rng::keep_scale(p);
  int64_t done = 0;
  if (aligned(x, 16) && aligned(y, 16) && aligned(mask, 4) && n >= 4) {
    const int64_t quads = n / 4;
    PK_LAUNCH(blocks_for(quads, kThreads, kMaxBlocks), kThreads, 0, stream, dropout_forward_vec4)(
        reinterpret_cast<const float4*>(x), reinterpret_cast<float4*>(y),
        reinterpret_cast<uint32_t*>(mask), quads, key, threshold, scale);
    check_launch("dropout_forward_vec4");
    done = quads * 4;
  }
  if (done < n) {
    PK_LAUNCH(blocks_for(n - done, kThreads, kMaxBlocks), kThreads, 0, stream,
              dropout_forward_scalar)(x, y, mask, done, n, key, threshold, scale);
    check_launch("dropout_forward_scalar");
  }
}

void dropout_backward(const float* dy, const uint8_t* mask, float* dx, int64_t n, double p,
                      cudaStream_t stream) {
  if (n <= 0) return;
  const float scale = rng::keep_scale(p);
  int64_t done = 0;
  if (aligned(dy, 16) && aligned(dx, 16) && aligned(mask, 4) && n >= 4) {
    const int64_t quads = n / 4;
    PK_LAUNCH(blocks_for(quads, kThreads, kMaxBlocks), kThreads, 0, stream, dropout_backward_vec4)(
        reinterpret_cast<const float4*>(dy), reinterpret_cast<const uint32_t*>(mask),
        reinterpret_cast<float4*>(dx), quads, scale);
    check_launch("dropout_backward_vec4");
    done = quads * 4;
  }
  if (done < n) {
    PK_LAUNCH(blocks_for(n - done, kThreads, kMaxBlocks), kThreads, 0, stream,
              dropout_backward_scalar)(dy, mask, dx, done, n, scale);
    check_launch("dropout_backward_scalar");
  }
}

}  // namespace pk::cuda

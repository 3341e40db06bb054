// ReLU on the GPU, forward and backward.
//   forward:  y  = x < 0 ? 0 : x      (NaN and -0.0 pass, as torch.relu)
//   backward: dx = y <= 0 ? 0 : dy
// Memory-bound grid-stride loops. When every pointer is 16-byte aligned the
// loop moves float4s (fewer, wider transactions); the scalar loop handles
// unaligned views and the tail.
#include "activation.cuh"

namespace pk::cuda {
namespace {

constexpr int kThreads = 256;
constexpr unsigned int kMaxBlocks = 65535u * 4u;

__device__ __forceinline__ float relu1(float x) { return x < 0.0f ? 0.0f : x; }
__device__ __forceinline__ float relu_grad1(float dy, float y) { return y <= 0.0f ? 0.0f : dy; }

__global__ void relu_forward_scalar(const float* __restrict__ x, float* __restrict__ y,
                                   int64_t begin, int64_t n) {
  for (int64_t i = begin + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = relu1(x[i]);
}

__global__ void relu_forward_vec4(const float4* __restrict__ x, float4* __restrict__ y,
                                  int64_t n4) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float4 v = x[i];
    y[i] = make_float4(relu1(v.x), relu1(v.y), relu1(v.z), relu1(v.w));
  }
}

__global__ void relu_backward_scalar(const float* __restrict__ dy, const float* __restrict__ y,
                                     float* __restrict__ dx, int64_t begin, int64_t n) {
  for (int64_t i = begin + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = relu_grad1(dy[i], y[i]);
}

__global__ void relu_backward_vec4(const float4* __restrict__ dy, const float4* __restrict__ y,
                                   float4* __restrict__ dx, int64_t n4) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n4;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float4 g = dy[i];
    const float4 v = y[i];
    dx[i] = make_float4(relu_grad1(g.x, v.x), relu_grad1(g.y, v.y), relu_grad1(g.z, v.z),
                        relu_grad1(g.w, v.w));
  }
}

}  // namespace

void relu_forward(const float* x, float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  int64_t done = 0;
  if (aligned16(x) && aligned16(y) && n >= 4) {
    const int64_t n4 = n / 4;
    PK_LAUNCH(blocks_for(n4, kThreads, kMaxBlocks), kThreads, 0, stream, relu_forward_vec4)(
        reinterpret_cast<const float4*>(x), reinterpret_cast<float4*>(y), n4);
    check_launch("relu_forward_vec4");
    done = n4 * 4;
  }
  if (done < n) {
    PK_LAUNCH(blocks_for(n - done, kThreads, kMaxBlocks), kThreads, 0, stream, relu_forward_scalar)(
        x, y, done, n);
    check_launch("relu_forward_scalar");
  }
}

void relu_backward(const float* dy, const float* y, float* dx, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  int64_t done = 0;
  if (aligned16(dy) && aligned16(y) && aligned16(dx) && n >= 4) {
    const int64_t n4 = n / 4;
    PK_LAUNCH(blocks_for(n4, kThreads, kMaxBlocks), kThreads, 0, stream, relu_backward_vec4)(
        reinterpret_cast<const float4*>(dy), reinterpret_cast<const float4*>(y),
        reinterpret_cast<float4*>(dx), n4);
    check_launch("relu_backward_vec4");
    done = n4 * 4;
  }
  if (done < n) {
    PK_LAUNCH(blocks_for(n - done, kThreads, kMaxBlocks), kThreads, 0, stream, relu_backward_scalar)(
        dy, y, dx, done, n);
    check_launch("relu_backward_scalar");
  }
}

}  // namespace pk::cuda

// Softmax cross-entropy on the GPU over the rows of (N, C) logits, mean over
// rows, as csrc/loss.cpp:
//   forward:  m = max_j z_j, s = sum_j exp(z_j - m) (in double),
//             probs_j = exp(z_j - m) * (1 / s), loss_i = (m - z_label) + log s
//             in double (finite for any finite logits: 1e4 or 3e38 included),
//             loss = sum_i loss_i / N.
//   backward: dlogits = (probs - onehot(label)) / N.
// Parallelisation: a warp per row, lanes striding over the classes
// (coalesced), max and sum by xor-shuffles. The row losses go to a buffer and
// one block adds them in a fixed order (thread-strided in double, then warp
// shuffles, then the warp totals in warp order), so the loss is bitwise
// repeatable. Bounds: memory (logits read twice, the second an L1/L2 hit;
// probs written then rescaled by the same thread) for large C; for the usual
// C = 10..1000 the kernels are tiny and launch-bound.
#include "loss.cuh"

#include <cmath>

namespace pk::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__global__ void __launch_bounds__(kThreads)
    softmax_rows(const float* __restrict__ logits, const int64_t* __restrict__ labels, int64_t n,
                 int64_t classes, float* __restrict__ probs, double* __restrict__ row_loss) {
  const int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= n) return;  // whole warps leave together
  const float* z = logits + row * classes;
  float* p = probs + row * classes;
  float m = -INFINITY;
  for (int64_t j = lane; j < classes; j += 32) m = fmaxf(m, z[j]);
  m = warp_max(m);
  double s = 0.0;
  for (int64_t j = lane; j < classes; j += 32) {
    const float e = expf(z[j] - m);
    p[j] = e;
    s += e;
  }
  s = warp_sum(s);
  const float inv = static_cast<float>(1.0 / s);
  for (int64_t j = lane; j < classes; j += 32) p[j] *= inv;  // this lane's own writes
  if (lane == 0) {
    const int64_t label = labels[row];
    row_loss[row] = (label >= 0 && label < classes)
                        ? (static_cast<double>(m) - static_cast<double>(z[label])) + log(s)
                        : NAN;
  }
}

// One block: out[0] = sum of values[0..n) / n in a fixed order.
__global__ void __launch_bounds__(kThreads)
    mean_of(const double* __restrict__ values, int64_t n, double* __restrict__ out) {
  __shared__ double warp_totals[kWarps];
  double v = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) v += values[i];
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) warp_totals[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x != 0) return;
  double total = 0.0;
  for (int w = 0; w < kWarps; ++w) total += warp_totals[w];
  out[0] = total / static_cast<double>(n);
}

__global__ void __launch_bounds__(kThreads)
    softmax_rows_backward(const float* __restrict__ probs, const int64_t* __restrict__ labels,
                          int64_t n, int64_t classes, float inv_n, float* __restrict__ dlogits) {
  const int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (row >= n) return;
  const int64_t label = labels[row];
  const float* p = probs + row * classes;
  float* d = dlogits + row * classes;
  for (int64_t j = threadIdx.x % 32; j < classes; j += 32) {
    d[j] = (j == label ? p[j] - 1.0f : p[j]) * inv_n;
  }
}

unsigned int row_warps_grid(int64_t n) { return static_cast<unsigned int>((n + kWarps - 1) / kWarps); }

}  // namespace

void cross_entropy_forward(const float* logits, const int64_t* labels, int64_t n,
                           int64_t classes, float* probs, double* workspace, cudaStream_t stream) {
  if (n > 0) {
    PK_LAUNCH(row_warps_grid(n), kThreads, 0, stream, softmax_rows)(logits, labels, n, classes,
                                                                    probs, workspace);
    check_launch("softmax_rows");
  }
  PK_LAUNCH(1, kThreads, 0, stream, mean_of)(workspace, n, workspace + n);  // n == 0: 0 / 0 = NaN
  check_launch("mean_of");
}

void cross_entropy_backward(const float* probs, const int64_t* labels, int64_t n,
                            int64_t classes, float* dlogits, cudaStream_t stream) {
  if (n <= 0 || classes <= 0) return;
  const float inv_n = static_cast<float>(1.0 / n);
  PK_LAUNCH(row_warps_grid(n), kThreads, 0, stream, softmax_rows_backward)(
      probs, labels, n, classes, inv_n, dlogits);
  check_launch("softmax_rows_backward");
}

}  // namespace pk::cuda

// The FP32 roofline ceiling: a kernel that does nothing but FMAs. Eight
// independent chains per thread cover the FMA pipeline latency, so the
// measured rate is the issue rate, the number GEMM fractions are quoted
// against (measured, not the datasheet's).
#include "peak.cuh"

namespace pk::cuda {
namespace {

constexpr int kPeakThreads = 256;
constexpr int kChains = 8;

__global__ void __launch_bounds__(kPeakThreads) fma_chains(float* sink, int64_t iterations) {
  float v[kChains];
  const float seed = float(threadIdx.x) * 1e-3f;
#pragma unroll
  for (int c = 0; c < kChains; ++c) v[c] = seed + float(c);
  // Multiplier just under 1 and a small addend: values stay finite forever.
  const float mul = 0.999999f, add = 1e-7f;
  for (int64_t it = 0; it < iterations; ++it) {
#pragma unroll
    for (int c = 0; c < kChains; ++c) v[c] = fmaf(v[c], mul, add);
  }
  float total = 0.0f;
#pragma unroll
  for (int c = 0; c < kChains; ++c) total += v[c];
  sink[int64_t(blockIdx.x) * kPeakThreads + threadIdx.x] = total;
}

}  // namespace

void fma_peak(float* sink, int64_t blocks, int64_t iterations, cudaStream_t stream) {
  if (blocks <= 0) return;
  PK_LAUNCH(dim3(unsigned(blocks)), kPeakThreads, 0, stream, fma_chains)(sink, iterations);
  check_launch("fma_chains");
}

}  // namespace pk::cuda

// Reading the partial products of a split-K sgemm on the device.
#pragma once

#include <cstdint>

namespace pk::cuda {

// `count` (>= 1) row-major slabs of `stride` floats each, from
// sgemm_partials, or count 1 for a plain array. sum(e) adds element e of every
// slab in slab order; sgemm's own reduction uses it, so a kernel that folds
// the sum into its pass computes sgemm's result bit for bit.
struct Slabs {
  const float* data = nullptr;
  int64_t count = 0, stride = 0;

  __device__ __forceinline__ float sum(int64_t e) const {
    float total = data[e];
    for (int64_t z = 1; z < count; ++z) total += data[z * stride + e];
    return total;
  }
};

}  // namespace pk::cuda

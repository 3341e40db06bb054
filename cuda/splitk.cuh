// Reading the partial products of a split-K sgemm on the device.
#pragma once

#include <cstdint>

#include "common.cuh"

namespace pk::cuda {

// `count` (>= 2) row-major slabs of `stride` floats each, from
// sgemm_partials, or count 1 for a plain array. sum(e) adds element e of every
// slab in slab order, from +0 as an unsplit product's accumulator starts;
// sgemm's own reduction uses it, so a kernel that folds the sum into its pass
// computes sgemm's result bit for bit. A plain array's element comes back as
// it is (-0 stays -0).
struct Slabs {
  const float* data = nullptr;
  int64_t count = 0, stride = 0;

  __device__ __forceinline__ float sum(int64_t e) const {
    if (count == 1) return data[e];
    float total = 0.0f;
    for (int64_t z = 0; z < count; ++z) total += data[z * stride + e];
    return total;
  }
};

}  // namespace pk::cuda

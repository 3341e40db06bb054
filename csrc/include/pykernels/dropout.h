#pragma once

#include <cstdint>

namespace pk {

// mask[i] = 1 with probability 1 - p, from a counter-based hash of (seed, i):
// the same seed gives the same mask whatever the thread count or chunking.
// y = x * (mask ? 1 / (1 - p) : 0). p must lie in [0, 1] (checked by callers).
void dropout_forward(const float* x, float* y, uint8_t* mask, int64_t n, double p,
                     uint64_t seed);

// dx = dy * (mask ? 1 / (1 - p) : 0); p == 1 gives dx = dy * 0.
void dropout_backward(const float* dy, const uint8_t* mask, float* dx, int64_t n, double p);

}  // namespace pk

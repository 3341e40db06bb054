#pragma once

#include <cstdint>

namespace pk {

// y = x < 0 ? 0 : x   (NaN and -0.0 pass through, as torch.relu)
void relu_forward(const float* x, float* y, int64_t n);

// dx = y <= 0 ? 0 : dy   (NaN in y passes dy, as torch's threshold_backward)
void relu_backward(const float* dy, const float* y, float* dx, int64_t n);

}  // namespace pk

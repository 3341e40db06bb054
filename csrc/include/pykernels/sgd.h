#pragma once

#include <cstdint>

#include "pykernels/sgd_update.h"

namespace pk {

// One SGD step over n parameters in place (see sgd_update.h). velocity is
// read and written when h.momentum != 0 (may be null otherwise); with
// first_step its old contents are ignored. The arrays must not overlap.
void sgd_step(float* param, const float* grad, float* velocity, int64_t n, const sgd::Hyper& h,
              bool first_step);

// x[0, n) = +0.0f, one contiguous chunk per thread: an optimiser's zero_grad
// over a large model (AlexNet's 61M gradients) runs at the memory's speed
// rather than one core's.
void zero_fill(float* x, int64_t n);

}  // namespace pk

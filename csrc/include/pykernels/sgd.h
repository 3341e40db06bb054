#pragma once

#include <cstdint>

#include "pykernels/sgd_update.h"

namespace pk {

// One SGD step over n parameters in place (see sgd_update.h). velocity is
// read and written when h.momentum != 0 (may be null otherwise); with
// first_step its old contents are ignored. The arrays must not overlap.
void sgd_step(float* param, const float* grad, float* velocity, int64_t n, const sgd::Hyper& h,
              bool first_step);

}  // namespace pk

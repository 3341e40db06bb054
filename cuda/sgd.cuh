#pragma once

#include <cstdint>

#include "common.cuh"
#include "pykernels/sgd_update.h"

namespace pk::cuda {

// One SGD step over n parameters in place, the CPU's rule and rounding
// (pykernels/sgd_update.h): a seed-free elementwise pass, bit for bit the
// CPU's result. velocity is used when h.momentum != 0; first_step ignores its
// old contents. Device pointers; work is queued on `stream`.
void sgd_step(float* param, const float* grad, float* velocity, int64_t n, const sgd::Hyper& h,
              bool first_step, cudaStream_t stream);

}  // namespace pk::cuda

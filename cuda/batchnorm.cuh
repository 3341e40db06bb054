#pragma once

#include <cstdint>

#include "common.cuh"
#include "pykernels/batchnorm.h"

namespace pk::cuda {

// Same semantics, layouts and argument meanings as the CPU kernels in
// csrc/batchnorm.cpp (x viewed as (batch, channels, spatial)); all pointers
// are device pointers, work is queued on `stream`. weight, bias and the
// running statistics may be null as on the CPU; dweight / dbias too.
//
// `workspace` is scratch of batch_norm_workspace_bytes(s) bytes, 8-byte
// aligned, owned by the caller (CuPy's pool), used by one call at a time.
int64_t batch_norm_workspace_bytes(const BatchNormShape& s);

void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* weight,
                              const float* bias, float* running_mean, float* running_var,
                              float momentum, float eps, float* y, float* save_mean,
                              float* save_invstd, void* workspace, cudaStream_t stream);

void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* weight,
                             const float* bias, const float* running_mean,
                             const float* running_var, float eps, float* y, float* save_mean,
                             float* save_invstd, void* workspace, cudaStream_t stream);

void batch_norm_backward(const BatchNormShape& s, const float* dy, const float* x,
                         const float* weight, const float* save_mean, const float* save_invstd,
                         bool training, float* dx, float* dweight, float* dbias, void* workspace,
                         cudaStream_t stream);

}  // namespace pk::cuda

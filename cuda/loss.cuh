#pragma once

#include <cstdint>

#include "common.cuh"

namespace pk::cuda {

// Same semantics as the CPU kernels in csrc/loss.cpp; all pointers are device
// pointers, work is queued on `stream`. Labels are int64 and must lie in
// [0, classes): Python checks them before the launch (the forward kernel
// gives a NaN row loss for a bad label rather than read out of bounds; the
// backward kernel never indexes with a label).
//
// Forward: probs = row-wise softmax(logits); `workspace` holds n + 1 doubles:
// the row losses, then the mean loss in workspace[n] (NaN for n == 0).
void cross_entropy_forward(const float* logits, const int64_t* labels, int64_t n,
                           int64_t classes, float* probs, double* workspace, cudaStream_t stream);

// dlogits = (probs - onehot(labels)) / n.
void cross_entropy_backward(const float* probs, const int64_t* labels, int64_t n,
                            int64_t classes, float* dlogits, cudaStream_t stream);

}  // namespace pk::cuda

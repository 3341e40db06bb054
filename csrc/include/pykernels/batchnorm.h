#pragma once

#include <cstdint>

namespace pk {

// x viewed as (batch, channels, spatial): NCHW has spatial = H * W, (N, C)
// has spatial = 1. Pointers that may be null are marked.
struct BatchNormShape {
  int64_t batch, channels, spatial;
};

// Training: per-channel batch mean and biased variance (two passes, shifted,
// fixed-order partial sums), y = (x - mean) * invstd * weight + bias; writes
// save_mean / save_invstd; if running_mean/var are non-null, updates them in
// place with `momentum` and the unbiased variance. weight/bias may be null.
void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* weight,
                              const float* bias, float* running_mean, float* running_var,
                              float momentum, float eps, float* y, float* save_mean,
                              float* save_invstd);

// Eval: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias;
// writes save_mean = running_mean and save_invstd = 1 / sqrt(running_var + eps).
void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* weight,
                             const float* bias, const float* running_mean,
                             const float* running_var, float eps, float* y, float* save_mean,
                             float* save_invstd);

// Gradients. training: the mean and invstd depended on x (full formula);
// otherwise they were constants (dx = dy * weight * invstd). dweight/dbias
// may be null (not wanted); weight may be null (affine off).
void batch_norm_backward(const BatchNormShape& s, const float* dy, const float* x,
                         const float* weight, const float* save_mean, const float* save_invstd,
                         bool training, float* dx, float* dweight, float* dbias);

}  // namespace pk

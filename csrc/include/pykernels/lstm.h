// Fused LSTM pointwise passes (the GEMMs are pk::sgemm calls made by the
// Python layer). Gate order i, f, g, o; rows are batch items; every row of
// `gates` holds 4*H values.
#pragma once

#include <cstdint>

namespace pk {

// gates holds the pre-activations x W_ih^T + h W_hh^T (without biases) on
// entry and the activated gates [i, f, g, o] on exit; bias is b_ih + b_hh.
//   c1 = f * c + i * g,  h1 = o * tanh(c1)
void lstm_pointwise_forward(int64_t n, int64_t h, float* gates, const float* bias,
                            const float* c, float* c1, float* h1);

// Given dL/dh1 (dh1, plus dh_rec when not null: the gradient flowing back
// from the next time step) and dL/dc1 (dc, overwritten with dL/dc), writes
// dL/d(pre-activations) into dgates. tanh(c1) is recomputed from the gates.
void lstm_pointwise_backward(int64_t n, int64_t h, const float* dh1, const float* dh_rec,
                             float* dc, const float* gates, const float* c, float* dgates);

namespace lstm_detail {
// One implementation per ISA, each over rows [row_begin, row_end).
using ForwardRows = void (*)(int64_t row_begin, int64_t row_end, int64_t h, float* gates,
                             const float* bias, const float* c, float* c1, float* h1);
using BackwardRows = void (*)(int64_t row_begin, int64_t row_end, int64_t h, const float* dh1,
                              const float* dh_rec, float* dc, const float* gates, const float* c,
                              float* dgates);
struct Kernels {
  ForwardRows forward;
  BackwardRows backward;
};
extern const Kernels kGeneric;
extern const Kernels kAvx2;
extern const Kernels kAvx512;
}  // namespace lstm_detail

}  // namespace pk

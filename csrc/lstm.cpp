// LSTM, the parts that are not GEMMs: the fused pointwise passes of one time
// step, forward and backward, split over batch rows with OpenMP and run with
// the widest ISA available (lstm_pointwise_<isa>.cpp).
//
//   forward:  [i f g o] = [σ σ tanh σ](x W_ih^T + h W_hh^T + b_ih + b_hh)
//             c1 = f c + i g,   h1 = o tanh(c1)
//   backward: dc1' = dc1 + dh1 o (1 - tanh²c1)
//             di = dc1' g,  df = dc1' c,  dg = dc1' i,  do = dh1 tanh c1,  dc = dc1' f
//             each times its activation's derivative (σ' = s(1-s), tanh' = 1-t²)
// The GEMMs around these (one input projection for all steps, one recurrent
// GEMM per step, and the weight gradients as three large GEMMs) are issued
// from pykernels/_functional/lstm.py through pk::sgemm.
#include "pykernels/lstm.h"

#include "pykernels/isa.h"
#include "pykernels/parallel.h"

namespace pk {
namespace {

const lstm_detail::Kernels& kernels_for_active_isa() {
  switch (active_isa()) {
    case Isa::Avx512: return lstm_detail::kAvx512;
    case Isa::Avx2: return lstm_detail::kAvx2;
    default: return lstm_detail::kGeneric;
  }
}

// Rows are independent, so any split gives the same bits; small batches stay
// on one thread because a parallel region costs more than their work.
constexpr int64_t kMinRowWork = 1 << 14;

}  // namespace

void lstm_pointwise_forward(int64_t n, int64_t h, float* gates, const float* bias,
                            const float* c, float* c1, float* h1) {
  const auto forward = kernels_for_active_isa().forward;
  parallel_ranges(n, n * 4 * h, [&](int64_t begin, int64_t end) {
    forward(begin, end, h, gates, bias, c, c1, h1);
  }, kMinRowWork);
}

void lstm_pointwise_backward(int64_t n, int64_t h, const float* dh1, const float* dh_rec,
                             float* dc, const float* gates, const float* c, float* dgates) {
  const auto backward = kernels_for_active_isa().backward;
  parallel_ranges(n, n * 4 * h, [&](int64_t begin, int64_t end) {
    backward(begin, end, h, dh1, dh_rec, dc, gates, c, dgates);
  }, kMinRowWork);
}

}  // namespace pk

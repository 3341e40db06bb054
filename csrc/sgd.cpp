// SGD step (torch.optim.SGD: momentum, dampening, weight decay, Nesterov) in
// one pass over flat float32 buffers: read w, g (and v), write w (and v).
// NumPy needs a temporary per operation, five or six passes over freshly
// allocated memory; here it is one, so the step runs at the memory's speed.
// Memory-bound: one contiguous chunk per OpenMP thread, and SIMD at the
// baseline ISA (SSE2) is enough to keep up with memory.
#include "pykernels/sgd.h"

#include <algorithm>

#include "pykernels/parallel.h"

namespace pk {

void sgd_step(float* param, const float* grad, float* velocity, int64_t n, const sgd::Hyper& h,
              bool first_step) {
  sgd::with_kind(h, first_step, [&](auto kind) {
    using K = decltype(kind);
    parallel_chunks(n, [=](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) {
        float* v = K::momentum ? velocity + i : nullptr;
        param[i] = sgd::update<K>(param[i], grad[i], v, h);
      }
    });
  });
}

void zero_fill(float* x, int64_t n) {
  parallel_chunks(n, [=](int64_t begin, int64_t end) { std::fill(x + begin, x + end, 0.0f); });
}

}  // namespace pk

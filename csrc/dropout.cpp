// Inverted dropout on flat float32 buffers.
//   forward:  mask[i] = u(seed, i) >= p,  y[i] = x[i] * (mask[i] / (1 - p))
//   backward: dx[i] = dy[i] * (mask[i] / (1 - p))
// A dropped element is multiplied by 0 (as torch does), so NaN and inf stay
// NaN; p = 1 gives zeros for finite inputs. The mask is uint8 (1 = kept).
// u(seed, i) is counter-based: one splitmix64 hash of (seed, i / 2) gives
// 64 bits, the low 32 for the even element and the high 32 for the odd one,
// compared against round(p * 2^32). Each element depends only on the seed and
// its own index, so any split across threads gives the same mask. The
// generator lives in pykernels/counter_rng.h, shared with cuda/dropout.cu, so
// a seed gives the same mask on the CPU and the GPU.
#include "pykernels/dropout.h"

#include <algorithm>

#include "pykernels/counter_rng.h"
#include "pykernels/parallel.h"

namespace pk {

void dropout_forward(const float* x, float* y, uint8_t* mask, int64_t n, double p,
                     uint64_t seed) {
  const uint64_t threshold = rng::drop_threshold(p);
  const float scale = rng::keep_scale(p);
  const uint64_t key = rng::dropout_key(seed);
  parallel_chunks(n, [=](int64_t begin, int64_t end) {
    // Chunks start at multiples of 16, so pairs (2j, 2j + 1) never straddle two.
    for (int64_t i = begin; i < end; i += 2) {
      const uint64_t h = rng::hash_pair(key, static_cast<uint64_t>(i) / 2);
      const int64_t last = std::min<int64_t>(end, i + 2);
      for (int64_t j = i; j < last; ++j) {
        const uint8_t keep = rng::keep_bit(rng::pair_draw(h, j), threshold);
        mask[j] = keep;
        y[j] = x[j] * (keep ? scale : 0.0f);
      }
    }
  });
}

void dropout_backward(const float* dy, const uint8_t* mask, float* dx, int64_t n, double p) {
  const float scale = rng::keep_scale(p);
  parallel_chunks(n, [=](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) dx[i] = dy[i] * (mask[i] ? scale : 0.0f);
  });
}

}  // namespace pk

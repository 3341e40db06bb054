// Inverted dropout on flat float32 buffers.
//   forward:  mask[i] = u(seed, i) >= p,  y[i] = x[i] * (mask[i] / (1 - p))
//   backward: dx[i] = dy[i] * (mask[i] / (1 - p))
// A dropped element is multiplied by 0 (as torch does), so NaN and inf stay
// NaN; p = 1 gives zeros for finite inputs. The mask is uint8 (1 = kept).
// u(seed, i) is counter-based: one splitmix64 hash of (seed, i / 2) gives
// 64 bits, the low 32 for the even element and the high 32 for the odd one,
// compared against round(p * 2^32). Each element depends only on the seed and
// its own index, so any split across threads gives the same mask.
#include "pykernels/dropout.h"

#include <cmath>

#include "pykernels/parallel.h"

namespace pk {
namespace {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The splitmix64 output number `counter` of the stream started at `key`.
inline uint64_t hash_pair(uint64_t key, uint64_t counter) {
  return mix64(key + (counter + 1) * 0x9E3779B97F4A7C15ull);
}

// Elements whose 32-bit draw is below this are dropped: 0 keeps all,
// 2^32 drops all.
uint64_t drop_threshold(double p) {
  const double t = std::nearbyint(p * 4294967296.0);
  if (!(t > 0.0)) return 0;
  if (t >= 4294967296.0) return uint64_t{1} << 32;
  return static_cast<uint64_t>(t);
}

inline float keep_scale(double p) { return p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f; }

}  // namespace

void dropout_forward(const float* x, float* y, uint8_t* mask, int64_t n, double p,
                     uint64_t seed) {
  const uint64_t threshold = drop_threshold(p);
  const float scale = keep_scale(p);
  const uint64_t key = mix64(seed);  // decorrelates neighbouring seeds
  parallel_chunks(n, [=](int64_t begin, int64_t end) {
    // Chunks start at multiples of 16, so pairs (2j, 2j + 1) never straddle two.
    for (int64_t i = begin; i < end; i += 2) {
      const uint64_t h = hash_pair(key, static_cast<uint64_t>(i) / 2);
      const int64_t last = std::min<int64_t>(end, i + 2);
      for (int64_t j = i; j < last; ++j) {
        const uint64_t draw = (j & 1) ? (h >> 32) : (h & 0xFFFFFFFFull);
        const uint8_t keep = draw >= threshold;
        mask[j] = keep;
        y[j] = x[j] * (keep ? scale : 0.0f);
      }
    }
  });
}

void dropout_backward(const float* dy, const uint8_t* mask, float* dx, int64_t n, double p) {
  const float scale = keep_scale(p);
  parallel_chunks(n, [=](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) dx[i] = dy[i] * (mask[i] ? scale : 0.0f);
  });
}

}  // namespace pk

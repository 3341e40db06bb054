// The counter-based generator of dropout, shared by the CPU (csrc/dropout.cpp)
// and the GPU (cuda/dropout.cu) so that one seed gives one mask on both.
//   key        = mix64(seed)                        (decorrelates neighbouring seeds)
//   h(pair j)  = splitmix64 output number j of the stream started at key
//   draw(i)    = low 32 bits of h(i / 2) for even i, high 32 bits for odd i
//   keep(i)    = draw(i) >= round(p * 2^32)         (0 keeps all, 2^32 drops all)
// Each element depends only on the key and its own index, so any split of the
// elements across threads, blocks or devices gives the same mask.
#pragma once

#include <cmath>
#include <cstdint>

#include "pykernels/host_device.h"

namespace pk::rng {

PK_HOST_DEVICE inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The splitmix64 output number `counter` of the stream started at `key`.
PK_HOST_DEVICE inline uint64_t hash_pair(uint64_t key, uint64_t counter) {
  return mix64(key + (counter + 1) * 0x9E3779B97F4A7C15ull);
}

// The key a seed's stream starts at.
PK_HOST_DEVICE inline uint64_t dropout_key(uint64_t seed) { return mix64(seed); }

// Element i's 32-bit draw from h = hash_pair(key, i / 2).
PK_HOST_DEVICE inline uint64_t pair_draw(uint64_t h, uint64_t i) {
  return (i & 1) ? (h >> 32) : (h & 0xFFFFFFFFull);
}

// 1 when the element is kept: its draw is not below the threshold.
PK_HOST_DEVICE inline uint8_t keep_bit(uint64_t draw, uint64_t threshold) {
  return draw >= threshold ? 1 : 0;
}

// Draws below this are dropped: round(p * 2^32), 0 keeps all, 2^32 drops all.
// Host only (computed once per call and passed to the kernels).
inline uint64_t drop_threshold(double p) {
  const double t = std::nearbyint(p * 4294967296.0);
  if (!(t > 0.0)) return 0;
  if (t >= 4294967296.0) return uint64_t{1} << 32;
  return static_cast<uint64_t>(t);
}

// The factor a kept element is multiplied by: 1 / (1 - p), 0 for p = 1.
inline float keep_scale(double p) { return p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f; }

}  // namespace pk::rng

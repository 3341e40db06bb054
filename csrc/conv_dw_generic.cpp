// The weight gradient's dot tile (conv_dw_tile.inc) for baseline x86-64
// (SSE2): 2 output channels x 4 taps in 8 four-lane sums; dead positions are
// cleared by AND with the lane mask.
#include <cstdint>
#include <cstring>

#include "pykernels/conv_kernels.h"

namespace {
struct Lanes {
  typedef float Vec __attribute__((vector_size(16)));
  typedef uint32_t Bits __attribute__((vector_size(16)));
  static constexpr int kWidth = 4;
  static Vec zero() { return Vec{0.0f, 0.0f, 0.0f, 0.0f}; }
  static Vec load(const float* p) {
    Vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static Bits live(pk::conv_detail::LiveMask m, int64_t q) {
    Bits b;
    std::memcpy(&b, m.lanes + q, sizeof b);
    return b;
  }
  static Vec load_live(Bits keep, const float* p) {
    Bits b;
    std::memcpy(&b, p, sizeof b);
    b &= keep;
    Vec v;
    std::memcpy(&v, &b, sizeof v);
    return v;
  }
  static Vec fma(Vec a, Vec b, Vec c) { return a * b + c; }
  static float sum(Vec v) { return (v[0] + v[1]) + (v[2] + v[3]); }
};
}  // namespace

#include "conv_dw_tile.inc"

namespace pk::conv_detail {
const DotTileKernel kDotTileGeneric = {2, 4, &dot_tile<2, 4>};
}  // namespace pk::conv_detail

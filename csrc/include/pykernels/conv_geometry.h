// The geometry fields, checks and output size shared by the CPU (ConvShape)
// and GPU (ConvGeometry) convolutions, so both describe a convolution alike
// and refuse the same inputs with the same messages.
// Header-only because the CUDA module does not link the CPU library; it holds
// no SIMD code, so including it anywhere is safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace pk {

// Geometry of one convolution. Callers fill the input fields (set_input,
// set_window, o, groups) and call the derived type's finish(), which
// validates them and sets oh / ow.
struct ConvDims {
  using Pair = std::pair<int64_t, int64_t>;  // (rows, columns)

  int64_t n = 0, c = 0, h = 0, w = 0;  // input
  int64_t o = 0;                       // output channels (0 for a bare im2col / col2im)
  int64_t kh = 1, kw = 1;              // kernel
  int64_t sh = 1, sw = 1;              // stride
  int64_t ph = 0, pw = 0;              // zero padding
  int64_t dh = 1, dw = 1;              // dilation
  int64_t groups = 1;
  int64_t oh = 0, ow = 0;              // output, set by finish()

  void set_input(int64_t n_, int64_t c_, int64_t h_, int64_t w_) { n = n_, c = c_, h = h_, w = w_; }
  void set_window(Pair kernel, Pair stride, Pair padding, Pair dilation) {
    kh = kernel.first, kw = kernel.second;
    sh = stride.first, sw = stride.second;
    ph = padding.first, pw = padding.second;
    dh = dilation.first, dw = dilation.second;
  }

  int64_t c_per_group() const { return c / groups; }
  int64_t o_per_group() const { return o / groups; }
  int64_t col_rows() const { return c * kh * kw; }  // im2col rows of one image
  int64_t out_plane() const { return oh * ow; }
  // 1x1, stride 1, no padding: the input is the column matrix.
  bool is_pointwise() const {
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
  }
};

inline std::string conv_pair_str(int64_t a, int64_t b) {
  return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

// Validates s (any struct with the ConvShape fields; std::invalid_argument
// naming the offender), then sets s.oh, s.ow as torch computes them,
// (h + 2p - d (k - 1) - 1) / s + 1. Extents (sizes, padding, dilated kernel
// spans) must stay below max_extent; `where` names the limit's owner.
template <typename Shape>
void finish_conv_geometry(Shape& s, int64_t max_extent, const std::string& where) {
  auto fail = [](const std::string& msg) { throw std::invalid_argument(msg); };
  if (s.n < 0 || s.c < 0 || s.h < 0 || s.w < 0 || s.o < 0) {
    fail("negative size in convolution shape");
  }
  if (s.kh < 1 || s.kw < 1) fail("kernel_size must be >= 1, got " + conv_pair_str(s.kh, s.kw));
  if (s.sh < 1 || s.sw < 1) fail("stride must be >= 1, got " + conv_pair_str(s.sh, s.sw));
  if (s.dh < 1 || s.dw < 1) fail("dilation must be >= 1, got " + conv_pair_str(s.dh, s.dw));
  if (s.ph < 0 || s.pw < 0) fail("padding must be >= 0, got " + conv_pair_str(s.ph, s.pw));
  if (s.groups < 1) fail("groups must be >= 1, got " + std::to_string(s.groups));
  if (s.c % s.groups != 0 || s.o % s.groups != 0) {
    fail("groups=" + std::to_string(s.groups) + " must divide the input channels (" +
         std::to_string(s.c) + ") and the output channels (" + std::to_string(s.o) + ")");
  }
  if (std::max({s.h, s.w, s.ph, s.pw, s.kh, s.kw}) > max_extent || s.dh > max_extent / s.kh ||
      s.dw > max_extent / s.kw) {
    fail("convolution too large" + where + ": input " + conv_pair_str(s.h, s.w) + ", padding " +
         conv_pair_str(s.ph, s.pw) + ", kernel " + conv_pair_str(s.kh, s.kw) + " and dilation " +
         conv_pair_str(s.dh, s.dw) + " must each stay below 2^" +
         std::to_string(63 - __builtin_clzll(static_cast<unsigned long long>(max_extent))));
  }
  const int64_t span_h = s.dh * (s.kh - 1) + 1, span_w = s.dw * (s.kw - 1) + 1;
  const int64_t room_h = s.h + 2 * s.ph - span_h, room_w = s.w + 2 * s.pw - span_w;
  if (room_h < 0 || room_w < 0) {
    fail("output size would be below 1: padded input " +
         conv_pair_str(s.h + 2 * s.ph, s.w + 2 * s.pw) + " is smaller than the dilated kernel " +
         conv_pair_str(span_h, span_w));
  }
  // A stride past the room only ever reads window 0, so it is lowered to
  // room + 1: same output, and the CPU's stride-phase split (sh * sw planes)
  // stays the size of the padded input instead of the size of the stride.
  s.sh = std::min(s.sh, room_h + 1);
  s.sw = std::min(s.sw, room_w + 1);
  s.oh = room_h / s.sh + 1;
  s.ow = room_w / s.sw + 1;
}

}  // namespace pk

// 2-D convolution as im2col + SGEMM, forward and backward, with groups.
//
// Math, per image and per group g (Kg = C/groups * kh * kw, P = OH * OW):
//   cols (Kg, P)   = im2col(x)      column p holds the receptive field of output pixel p
//   forward:       y  (O/g, P)  = W_g (O/g, Kg) @ cols + bias
//   backward-data: dx = col2im(W_g^T @ dy)    col2im sums every column entry back
//                                             into the pixel it was read from
//   backward-wt:   dW_g (O/g, Kg) = sum over images of dy (O/g, P) @ cols^T
//   bias:          db[o] = sum over images and pixels of dy[:, o]
// Layout: x NCHW, weight OIHW (so W_g is a row-major (O/g, Kg) matrix), cols in
// torch.nn.functional.unfold's layout: row (c * kh + i) * kw + j, column oh * OW + ow.
//
// Variants:
// - 1x1, stride 1, no padding ("pointwise"): the input plane already is the
//   column matrix (C, H*W), so no im2col and no col2im; dx is written by the GEMM.
// - Forward, implicit im2col (below): the GEMM packs its B panels itself, so
//   no column matrix exists. Stride 1 with outputs as wide as the input (the
//   "same" 3x3 and 5x5 convs): straight from the image; other convolutions:
//   from the chunk's zero-padded stride-phase planes (about the padded input
//   in size) when those are smaller than the columns (not 1x1 stride 2,
//   which keeps im2col). Where the forward would pack from the image, the
//   weight gradient does: the panels of cols^T (ImplicitColumnsT); elsewhere
//   it uses im2col.
// - Forward on shifted rows (below): stride 1 with at most 64 output
//   channels per group (the rule is by measurement), taken before the two
//   above: no panels at all, the micro-kernel reads each B row in place from
//   a padded copy of the image (a few small images side by side per work
//   item).
// - Weight gradient as dot tiles (below): stride 1, no groups, at most 128
//   output channels (by measurement), taken before the GEMM paths: each
//   entry is a dot product of a dy row and the padded image at one shift on
//   the shifted-rows grid, both read in place, no column matrix or panels.
// - Backward-data of a stride-1 convolution (not pointwise) with p <= d (k - 1),
//   at most 64 output and at least 16 input channels per group is the forward
//   convolution of dy with the flipped kernel (so it gets the forward's
//   implicit columns or shifted rows); other convolutions take W^T @ dy and
//   col2im.
// - Parallelism, chosen per call: with at least as many work items (images,
//   or chunks in backward) as threads, each thread takes whole images with a
//   single-threaded GEMM (im2col is memory-bound and scales only this way);
//   otherwise images run one after another with the OpenMP-parallel GEMM and
//   a channel-parallel im2col/col2im. Both give bitwise the same result: the
//   GEMM is deterministic for any thread count, and the weight gradient is
//   summed chunk by chunk in chunk order, never per thread.
// - Forward and backward work on chunks of S images whose columns sit side by
//   side, so the GEMMs are S*P wide (AlexNet conv3-5 have P = 169: single
//   images make thin GEMMs); the weight gradient GEMM then sums S*P terms at
//   once. With more than one chunk the weights (W forward, W^T for dx) are
//   packed for the GEMM once per call and shared by every chunk.
//   S = min(ceil(1024 / P), max(1, N / 4)), further capped at 2^18 / (C*kh*kw*P)
//   when one image's columns are at most 2^18 floats (so a chunk's stay in L2),
//   1 when pointwise; it depends on the shape, not on the thread count, which
//   keeps the sum order fixed.
//
// im2col/col2im read window rows in place (stride 1, or outputs narrower than
// 32 columns), or first split each zero-padded input channel into its stride
// phases so every strided window row becomes one contiguous copy (details
// below). Stride-1 "same" convolutions copy each tap as one run.
// The bias gradient sums every plane in 16 interleaved lanes (vectorisable,
// still a fixed order).
//
// Workspace (floats; T = OpenMP threads, team = T when threads work on whole
// images, 1 in the sequential mode; Ph = sh*sw*ceil((H+2ph)/sh)*ceil((W+2pw)/sw),
// about one padded input channel; Ps = Ph when im2col splits phases (sw > 1
// and OW >= 32), else 0):
//   forward:  team * (F + O * S*P [S > 1]) + T * Ps [explicit] + Wp, with the
//             column term F = C*kh*kw * S*P (explicit im2col), S * C/groups * Ph
//             (from phase planes) or 0 (from the image, or pointwise);
//             on shifted rows instead team' * (C * Pp + tail + O/g' * OH*R') + Wp,
//             team' over groups of k <= 8 images side by side, R = k * (W + pw)
//             a padded row, Pp = pw + (H + 2ph) * R the padded plane, OH*R'
//             and O/g' rounded up to whole register tiles, the tail below
//             kh*dh*R + the tile's columns
//   backward: team * (C*kh*kw * S*P [columns] + O * S*P [S > 1] + O * Kg) + T * Ps + Wp,
//             the columns taken unless pointwise, or both dx runs as a forward
//             and dW packs from the image; dW as dot tiles instead adds
//             team'' * (C * Pc + (O + mr) * Q + O * Kg) + Q (team'' over blocks
//             of stacked images: Q positions, Pc floats a padded channel;
//             and the live mask), and leaves the rest to dx
// where Wp, the packed weights when there are several chunks (always for the
// implicit forward), is about the weight's own size (rows rounded up to the
// micro-kernel's register tile).
// It grows with the image, never with the batch: AlexNet conv1's forward
// needs 0.6 MB of phase planes per thread at any batch size (its explicit
// 363 x 3025 columns would be 4.4 MB).
// conv2d_{forward,backward}_workspace compute these numbers.
#include "pykernels/conv.h"
#include "pykernels/scratch.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "pykernels/conv_geometry.h"
#include "pykernels/conv_kernels.h"
#include "pykernels/gemm.h"
#include "pykernels/isa.h"
#include "pykernels/parallel.h"

namespace pk {

namespace conv_detail {
void masked_copy_generic(const float* src, uint64_t mask, int64_t count, float* dst) {
  for (int64_t j = 0; j < count; ++j) dst[j] = (mask >> j) & 1u ? src[j] : 0.0f;
}
}  // namespace conv_detail

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Test and benchmark hook: 0 = choose, 1 = always images, 2 = always sequential.
std::atomic<int> g_parallel_mode{0};
// Test and benchmark hook: false forces the explicit im2col everywhere.
std::atomic<bool> g_implicit_im2col{true};
// Test and benchmark hook: false keeps stride-1 backward-data on col2im.
std::atomic<bool> g_dx_as_forward{true};
// Test and benchmark hook: false keeps the weight gradient on im2col everywhere.
std::atomic<bool> g_dw_from_image{true};
// Test and benchmark hook: 0 keeps the forward off the shifted rows, 1 takes
// them by the rule, 2 wherever they apply.
std::atomic<int> g_shifted_rows{1};
// Test and benchmark hook: the same for the weight gradient.
std::atomic<int> g_dw_shifted_rows{1};

bool over_images(int64_t items, int threads) {
  const int mode = g_parallel_mode.load();
  if (threads <= 1 || items <= 1) return false;
  if (mode == 1) return true;
  if (mode == 2) return false;
  return items >= threads;
}

// Below this many floats of im2col/col2im traffic a parallel region is not worth it.
constexpr int64_t kMinParallelFloats = 1 << 15;

// ---- im2col / col2im on one channel ---------------------------------------
//
// Two ways to read a window row, chosen per shape (Phases::split):
// - row-wise (stride 1, or narrow outputs): output row oy of tap (ki, kj)
//   reads input row oy*sh + ki*dh - ph from column ox*sw + kj*dw - pw; the
//   columns that fall in the padding form a prefix and a suffix of the row
//   (zeros), the rest is one unit-stride (sw = 1) or short strided run.
//   No scratch and no extra pass: small planes (ResNet's 16x16, 8x8) are
//   dominated by per-row overhead, so rows are plain inline loops.
// - phase split (stride > 1 on wide outputs, AlexNet conv1): the zero-padded
//   channel is first split into stride phases,
//     phase[a][b][i][j] = x_padded[i * sh + a][j * sw + b],
//   so tap (ki, kj) reads, for output row oy, the OW contiguous floats
//     phase[ki*dh % sh][kj*dw % sw][oy + ki*dh / sh][kj*dw / sw ...]
//   (the split costs one pass over the channel, kh*kw times less than the
//   columns, and turns every strided gather into a contiguous copy).

// Outputs narrower than this read strided rows directly rather than phases.
constexpr int64_t kMinPhaseWidth = 32;

struct Phases {
  int64_t rows, cols;  // of one phase plane
  bool split;          // phase split; else row-wise, in place

  explicit Phases(const ConvShape& s)
      : rows(ceil_div(s.h + 2 * s.ph, s.sh)),
        cols(ceil_div(s.w + 2 * s.pw, s.sw)),
        split(s.sw > 1 && s.ow >= kMinPhaseWidth) {}

  int64_t floats(const ConvShape& s) const { return s.sh * s.sw * rows * cols; }
  int64_t scratch_floats(const ConvShape& s) const { return split ? floats(s) : 0; }
};

// Output columns [lo, hi) whose input column ox * stride + shift lies in [0, in).
struct Span {
  int64_t lo, hi;
};

Span valid_columns(int64_t shift, int64_t stride, int64_t in, int64_t out) {
  // (stride 1 skips the divisions: they cost more than a whole 8x8 tap's copy)
  const int64_t first = shift >= 0 ? 0 : stride == 1 ? -shift : ceil_div(-shift, stride);
  const int64_t lo = std::min(out, first);
  const int64_t last = in - 1 - shift;  // largest valid ox * stride
  const int64_t count = last < 0 ? 0 : stride == 1 ? last + 1 : last / stride + 1;
  const int64_t hi = std::max(lo, std::min(out, count));
  return {lo, hi};
}

// Fills the phase planes of one channel `xc` into `buf`.
void split_phases(const ConvShape& s, const Phases& p, const float* xc, float* buf) {
  for (int64_t a = 0; a < s.sh; ++a) {
    for (int64_t b = 0; b < s.sw; ++b) {
      float* plane = buf + (a * s.sw + b) * p.rows * p.cols;
      for (int64_t i = 0; i < p.rows; ++i) {
        float* row = plane + i * p.cols;
        const int64_t iy = i * s.sh + a - s.ph;
        if (iy < 0 || iy >= s.h) {
          std::fill(row, row + p.cols, 0.0f);
          continue;
        }
        const float* src = xc + iy * s.w;
        for (int64_t j = 0; j < p.cols; ++j) {
          const int64_t ix = j * s.sw + b - s.pw;
          row[j] = ix >= 0 && ix < s.w ? src[ix] : 0.0f;
        }
      }
    }
  }
}

// x channel = the interior (unpadded part) of the phase planes in `buf`.
void merge_phases(const ConvShape& s, const Phases& p, const float* buf, float* xc) {
  for (int64_t iy = 0; iy < s.h; ++iy) {
    const int64_t py = iy + s.ph;
    const float* base = buf + (py % s.sh) * s.sw * p.rows * p.cols + (py / s.sh) * p.cols;
    float* dst = xc + iy * s.w;
    for (int64_t ix = 0; ix < s.w; ++ix) {
      const int64_t px = ix + s.pw;
      dst[ix] = base[(px % s.sw) * p.rows * p.cols + px / s.sw];
    }
  }
}

// Start of the phase-plane row tap (ki, kj) reads for output row 0.
int64_t tap_offset(const ConvShape& s, const Phases& p, int64_t ki, int64_t kj) {
  const int64_t ty = ki * s.dh, tx = kj * s.dw;
  return ((ty % s.sh) * s.sw + tx % s.sw) * p.rows * p.cols + (ty / s.sh) * p.cols + tx / s.sw;
}

// Stride 1 with as many output as input columns (the "same" 3x3 convs): the
// valid rows of a tap are then one contiguous run in both x and the columns,
// copied at once; the few entries it wrote into padding columns (taken from
// the neighbouring row) are zeroed afterwards. Tiny rows (8x8 planes) make a
// per-row loop cost several instructions per float.
bool rows_are_contiguous(const ConvShape& s) { return s.sh == 1 && s.sw == 1 && s.w == s.ow; }

// Tap (ki, kj) of channel `xc` into the column-matrix row `row`, row-wise.
void im2col_tap_rowwise(const ConvShape& s, const float* xc, int64_t ki, int64_t kj, float* row) {
  const int64_t shift = kj * s.dw - s.pw, ow = s.ow, sw = s.sw;
  const Span span = valid_columns(shift, sw, s.w, ow);
  if (rows_are_contiguous(s)) {
    const Span ys = valid_columns(ki * s.dh - s.ph, 1, s.h, s.oh);
    if (span.lo >= span.hi || ys.lo >= ys.hi) {
      std::fill(row, row + s.oh * ow, 0.0f);
      return;
    }
    const int64_t begin = ys.lo * ow + span.lo, end = (ys.hi - 1) * ow + span.hi;
    const int64_t offset = (ki * s.dh - s.ph) * s.w + shift;  // row[d] reads xc[d + offset]
    float* dst = row;
    std::fill(dst, dst + begin, 0.0f);
    // One long run: the library copy uses the widest vectors the CPU has.
    std::memcpy(dst + begin, xc + begin + offset, (end - begin) * sizeof(float));
    std::fill(dst + end, dst + s.oh * ow, 0.0f);
    for (int64_t oy = ys.lo; oy < ys.hi; ++oy) {
      for (int64_t ox = 0; ox < span.lo; ++ox) dst[oy * ow + ox] = 0.0f;
      for (int64_t ox = span.hi; ox < ow; ++ox) dst[oy * ow + ox] = 0.0f;
    }
    return;
  }
  for (int64_t oy = 0; oy < s.oh; ++oy) {
    float* __restrict dst = row + oy * ow;
    const int64_t iy = oy * s.sh + ki * s.dh - s.ph;
    if (iy < 0 || iy >= s.h) {
      for (int64_t ox = 0; ox < ow; ++ox) dst[ox] = 0.0f;
      continue;
    }
    const float* __restrict src = xc + iy * s.w;  // column ox reads src[ox * sw + shift]
    for (int64_t ox = 0; ox < span.lo; ++ox) dst[ox] = 0.0f;
    if (sw == 1) {
#pragma omp simd
      for (int64_t ox = span.lo; ox < span.hi; ++ox) dst[ox] = src[ox + shift];
    } else if (sw == 2) {  // ResNet's downsampling; a constant stride vectorises (shuffles)
#pragma omp simd
      for (int64_t ox = span.lo; ox < span.hi; ++ox) dst[ox] = src[2 * ox + shift];
    } else {
      for (int64_t ox = span.lo; ox < span.hi; ++ox) dst[ox] = src[ox * sw + shift];
    }
    for (int64_t ox = span.hi; ox < ow; ++ox) dst[ox] = 0.0f;
  }
}

// x channel += tap (ki, kj) of the column-matrix row `row`, row-wise. With
// `clobber` the row is scratch: its padding entries are zeroed so that the
// contiguous case can add whole runs (adding +0 changes no pixel, bar the
// sign of a zero).
void col2im_tap_rowwise(const ConvShape& s, float* row, bool clobber, int64_t ki, int64_t kj,
                        float* xc) {
  const int64_t shift = kj * s.dw - s.pw, ow = s.ow, sw = s.sw;
  const Span span = valid_columns(shift, sw, s.w, ow);
  if (clobber && rows_are_contiguous(s)) {
    const Span ys = valid_columns(ki * s.dh - s.ph, 1, s.h, s.oh);
    if (span.lo >= span.hi || ys.lo >= ys.hi) return;
    for (int64_t oy = ys.lo; oy < ys.hi; ++oy) {
      for (int64_t ox = 0; ox < span.lo; ++ox) row[oy * ow + ox] = 0.0f;
      for (int64_t ox = span.hi; ox < ow; ++ox) row[oy * ow + ox] = 0.0f;
    }
    const int64_t begin = ys.lo * ow + span.lo, end = (ys.hi - 1) * ow + span.hi;
    const int64_t offset = (ki * s.dh - s.ph) * s.w + shift;  // row[d] adds to xc[d + offset]
    const float* __restrict src = row;
    float* __restrict dst = xc;
#pragma omp simd
    for (int64_t d = begin; d < end; ++d) dst[d + offset] += src[d];
    return;
  }
  for (int64_t oy = 0; oy < s.oh; ++oy) {
    const int64_t iy = oy * s.sh + ki * s.dh - s.ph;
    if (iy < 0 || iy >= s.h) continue;
    const float* __restrict src = row + oy * ow;
    float* __restrict dst = xc + iy * s.w;
    if (sw == 1) {
#pragma omp simd
      for (int64_t ox = span.lo; ox < span.hi; ++ox) dst[ox + shift] += src[ox];
    } else {
      for (int64_t ox = span.lo; ox < span.hi; ++ox) dst[ox * sw + shift] += src[ox];
    }
  }
}

// The kh*kw rows of channel c of one image's column matrix; `ld` is the row
// stride of `cols` (P for one image, S*P when images sit side by side).
void im2col_channel(const ConvShape& s, const Phases& p, const float* xc, int64_t c, float* cols,
                    int64_t ld, float* scratch) {
  if (!p.split) {
    for (int64_t ki = 0; ki < s.kh; ++ki) {
      for (int64_t kj = 0; kj < s.kw; ++kj) {
        im2col_tap_rowwise(s, xc, ki, kj, cols + ((c * s.kh + ki) * s.kw + kj) * ld);
      }
    }
    return;
  }
  split_phases(s, p, xc, scratch);
  for (int64_t ki = 0; ki < s.kh; ++ki) {
    for (int64_t kj = 0; kj < s.kw; ++kj) {
      float* row = cols + ((c * s.kh + ki) * s.kw + kj) * ld;
      const float* src = scratch + tap_offset(s, p, ki, kj);
      for (int64_t oy = 0; oy < s.oh; ++oy) {
        std::copy(src + oy * p.cols, src + oy * p.cols + s.ow, row + oy * s.ow);
      }
    }
  }
}

// Channel c of x = col2im(cols): every entry is added back where it was read,
// in a fixed (ki, kj, oy, ox) order per pixel. `clobber`: cols is scratch
// that may be overwritten (see col2im_tap_rowwise).
void col2im_channel(const ConvShape& s, const Phases& p, float* cols, bool clobber, int64_t ld,
                    int64_t c, float* xc, float* scratch) {
  float* acc = p.split ? scratch : xc;
  std::fill(acc, acc + (p.split ? p.scratch_floats(s) : s.h * s.w), 0.0f);
  for (int64_t ki = 0; ki < s.kh; ++ki) {
    for (int64_t kj = 0; kj < s.kw; ++kj) {
      float* row = cols + ((c * s.kh + ki) * s.kw + kj) * ld;
      if (!p.split) {
        col2im_tap_rowwise(s, row, clobber, ki, kj, xc);
        continue;
      }
      float* dst = acc + tap_offset(s, p, ki, kj);
      for (int64_t oy = 0; oy < s.oh; ++oy) {
        float* d = dst + oy * p.cols;
        const float* r = row + oy * s.ow;
#pragma omp simd
        for (int64_t ox = 0; ox < s.ow; ++ox) d[ox] += r[ox];
      }
    }
  }
  if (p.split) merge_phases(s, p, scratch, xc);
}

// Runs body(c, scratch) for every channel, on the team when `parallel`, each
// thread with its own phase scratch.
template <typename Body>
void for_channels(const ConvShape& s, int64_t channels, bool parallel, Body body) {
  const Phases p(s);
  if (parallel) {
#pragma omp parallel
    {
      std::vector<float> scratch(p.scratch_floats(s));
#pragma omp for schedule(static)
      for (int64_t c = 0; c < channels; ++c) body(p, c, scratch.data());
    }
    return;
  }
  std::vector<float> scratch(p.scratch_floats(s));
  for (int64_t c = 0; c < channels; ++c) body(p, c, scratch.data());
}

// One image, all channels; channel-parallel when `parallel` and big enough.
void im2col_image(const ConvShape& s, const float* x, float* cols, int64_t ld, bool parallel) {
  const bool worth = parallel && s.col_rows() * s.out_plane() >= kMinParallelFloats;
  for_channels(s, s.c, worth, [&](const Phases& p, int64_t c, float* scratch) {
    im2col_channel(s, p, x + c * s.h * s.w, c, cols, ld, scratch);
  });
}

// `cols` is scratch and gets overwritten.
void col2im_image(const ConvShape& s, float* cols, int64_t ld, float* x, bool parallel) {
  const bool worth = parallel && s.col_rows() * s.out_plane() >= kMinParallelFloats;
  for_channels(s, s.c, worth, [&](const Phases& p, int64_t c, float* scratch) {
    col2im_channel(s, p, cols, true, ld, c, x + c * s.h * s.w, scratch);
  });
}

// Runs work(item, parallel) for every item: whole items per thread when
// there are at least as many as threads, else one after another with
// `parallel` set so that each splits its own work; then trim() on every
// thread that held scratch.
template <typename Work, typename Trim>
void run_items(int64_t items, Work work, Trim trim) {
  const int threads = omp_get_max_threads();
  if (over_images(items, threads)) {
    for_items_on_team(items, threads, [&](int64_t it) { work(it, false); }, trim);
    return;
  }
  for (int64_t it = 0; it < items; ++it) work(it, true);
  trim();
}

// ---- forward -------------------------------------------------------------

// Images per chunk: their column matrices sit side by side so that the GEMMs
// are wide (AlexNet conv3-5 have P = 169). When one image's columns are small
// but a full chunk's would not fit in L2 (ResNet's 64-channel 8x8 layers:
// 576 x 1024 floats), the chunk shrinks to what fits, so im2col's output is
// still cached when the GEMM reads it (the implicit forward has no such
// output; it keeps the same chunks, which the backward's sum order needs).
// A function of the shape only, never of the thread count.
constexpr int64_t kTargetColumns = 1024;
constexpr int64_t kCachedColumnFloats = int64_t{1} << 18;  // 1 MiB

int64_t chunk_images(const ConvShape& s) {
  if (s.is_pointwise()) return 1;
  const int64_t image = s.col_rows() * std::max<int64_t>(1, s.out_plane());
  int64_t want = ceil_div(kTargetColumns, std::max<int64_t>(1, s.out_plane()));
  if (image <= kCachedColumnFloats) want = std::min(want, kCachedColumnFloats / image);
  return std::max<int64_t>(1, std::min(want, std::max<int64_t>(1, s.n / 4)));
}

// ---- implicit im2col ----------------------------------------------------
//
// For stride-1 convolutions whose output rows are as wide as the input's
// (the "same" convs of AlexNet conv2-5, VGG and ResNet), output pixel q of a
// plane reads tap (ki, kj) of channel c from the flat input index
//   q + (ki*dh - ph) * W + kj*dw - pw,
// whenever that tap lands inside the image (else the entry is a zero). So a
// GEMM panel row (one tap, nr consecutive pixels) is a plain copy of nr
// consecutive input floats with the padding masked to zero. Packing panels
// this way, inside the GEMM, replaces im2col's column matrix entirely: it is
// never written to memory and read back (that round trip and im2col's short
// copies were ~20% of conv4's forward), and the forward needs no column
// workspace. The packed values, hence the results, are bitwise im2col's.

// Other convolutions (strided: AlexNet conv1, ResNet's downsampling; or
// "valid" ones) read from the zero-padded stride-phase planes of the input
// instead (split_phases): there every tap's output row is one contiguous run,
// so a panel row is one or two plain copies, and the planes, about the padded
// input in size, replace a column matrix kh*kw / (sh*sw) times larger (taken
// only when the planes are the smaller of the two: not for 1x1 stride 2).

enum class ForwardColumns {
  Pointwise,   // the input is the column matrix
  Explicit,    // im2col into a column matrix, then the GEMM packs it
  FromImage,   // panels packed from the image (stride 1, same width)
  FromPhases,  // panels packed from the chunk's phase planes
  Shifted,     // no panels: B rows read in place from a padded image (stride 1)
};

// Where each wins, measured against the explicit path on ResNet-20 and
// AlexNet shapes (1 and 2 threads): from the image once a GEMM column has
// 256 or more rows (C/g*kh*kw; 27 rows: 0.66x, 144: 0.93-1.03x, 288: 1.16-
// 1.39x, AlexNet conv2-5: 1.03-1.34x), as the run masks are set up per panel
// and amortised over the rows; from the phase planes on outputs at least
// 32 wide (AlexNet conv1: 1.11x, 224 -> 112 stride 2: 1.08x; 16- and 8-wide
// outputs: 0.77-0.99x, their runs being too short).
constexpr int64_t kMinImplicitRows = 256;

bool packs_from_image(const ConvShape& s) {
  return g_implicit_im2col.load() && !s.is_pointwise() && rows_are_contiguous(s) &&
         s.c_per_group() * s.kh * s.kw >= kMinImplicitRows;
}

bool shifted_rows(const ConvShape& s);

ForwardColumns forward_columns(const ConvShape& s) {
  if (s.is_pointwise()) return ForwardColumns::Pointwise;
  if (!g_implicit_im2col.load()) return ForwardColumns::Explicit;
  if (shifted_rows(s)) return ForwardColumns::Shifted;
  if (rows_are_contiguous(s)) {
    return packs_from_image(s) ? ForwardColumns::FromImage : ForwardColumns::Explicit;
  }
  const bool planes_smaller = Phases(s).floats(s) < s.kh * s.kw * s.out_plane();
  return s.ow >= kMinPhaseWidth && planes_smaller ? ForwardColumns::FromPhases
                                                  : ForwardColumns::Explicit;
}

// The weight gradient packs cols^T from the image (ImplicitColumnsT) exactly
// where the forward would pack its columns from the image (packs_from_image;
// the forward itself may take the shifted rows there instead): measured at batch 64
// against im2col (1 / 2 threads), 1.46x / 1.56x on ResNet's 64-channel 8x8
// layers (576 rows), 1.17x / 1.06x on its 32-channel ones, about even on
// AlexNet's conv2-4, but 0.66-0.82x on ResNet's 16-channel 32x32 layers
// (144 rows: with 16 output channels the product is all packing, and
// im2col's whole-plane copies beat 64-pixel runs) and LeNet's 6 -> 16.
bool weight_grad_from_image(const ConvShape& s) {
  return g_dw_from_image.load() && packs_from_image(s);
}

conv_detail::MaskedCopyFn masked_copy_for_active_isa() {
  switch (active_isa()) {
    case Isa::Avx512: return conv_detail::masked_copy_avx512;
    case Isa::Avx2: return conv_detail::masked_copy_avx2;
    default: return conv_detail::masked_copy_generic;
  }
}

// Which taps of a run of output pixels (at most 64) land inside the image:
// bit t of tap (ki, kj) is set when pixel first + t's tap does. Kept as one
// word per kernel row and one per kernel column (a tap is in when both are),
// on the stack for kernels up to 32 x 32.
class TapMasks {
 public:
  TapMasks(const ConvShape& s, int64_t first, int64_t run)
      : s_(s), heap_(s.kh + s.kw > 64 ? s.kh + s.kw : 0),
        words_(heap_.empty() ? local_ : heap_.data()) {
    std::fill(words_, words_ + s.kh + s.kw, uint64_t{0});
    int64_t oy = first / s.ow, ox = first % s.ow;  // stepped along, no division per pixel
    for (int64_t t = 0; t < run; ++t) {
      for (int64_t ki = 0; ki < s.kh; ++ki) {
        const int64_t iy = oy + ki * s.dh - s.ph;
        words_[ki] |= uint64_t{iy >= 0 && iy < s.h} << t;
      }
      for (int64_t kj = 0; kj < s.kw; ++kj) {
        const int64_t ix = ox + kj * s.dw - s.pw;
        words_[s.kh + kj] |= uint64_t{ix >= 0 && ix < s.w} << t;
      }
      if (++ox == s.ow) ox = 0, ++oy;
    }
  }
  TapMasks(const TapMasks&) = delete;
  TapMasks& operator=(const TapMasks&) = delete;

  uint64_t tap(int64_t ki, int64_t kj) const { return words_[ki] & words_[s_.kh + kj]; }

 private:
  const ConvShape& s_;
  uint64_t local_[64];
  std::vector<uint64_t> heap_;
  uint64_t* words_;
};

// fn(p, c, ki, kj) for p = 0 .. count - 1, where column-matrix row t0 + p is
// tap (ki, kj) of channel c.
template <typename Fn>
void for_taps(const ConvShape& s, int64_t t0, int64_t count, Fn fn) {
  const int64_t taps = s.kh * s.kw;
  int64_t c = t0 / taps, ki = t0 % taps / s.kw, kj = t0 % s.kw;
  for (int64_t p = 0; p < count; ++p) {
    fn(p, c, ki, kj);
    if (++kj == s.kw) {
      kj = 0;
      if (++ki == s.kh) ki = 0, ++c;
    }
  }
}

// Where tap (ki, kj) of channel c reads for the output pixel at `pixels`
// (stride 1, outputs as wide as the input: input index = output index + shift).
const float* tap_start(const ConvShape& s, const float* pixels, int64_t c, int64_t ki,
                       int64_t kj) {
  return pixels + c * s.h * s.w + (ki * s.dh - s.ph) * s.w + kj * s.dw - s.pw;
}

// The panel walk shared by both implicit im2cols: each panel of nr columns
// is cut into runs a subclass packs row by row (pack_run), and the columns
// past the last live one are zeroed.
class ColumnPanels : public BPanelSource {
 public:
  explicit ColumnPanels(const ConvShape& s) : s_(s) {}

  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t cols, int nr, float* dst) const final {
    for (int64_t q0 = 0; q0 < cols; q0 += nr, dst += nr * kc) {
      const int64_t live = std::min<int64_t>(nr, cols - q0);
      for (int64_t j = 0; j < live;) j += pack_run(j0 + q0 + j, live - j, p0, kc, nr, dst + j);
      for (int64_t p = 0; p < kc; ++p) std::fill(dst + p * nr + live, dst + (p + 1) * nr, 0.0f);
    }
  }

 protected:
  // Rows [p0, p0 + kc) of the run of columns from `column` on (at most `most`
  // of them) into dst, rows nr apart; returns the run's length.
  virtual int64_t pack_run(int64_t column, int64_t most, int64_t p0, int64_t kc, int64_t nr,
                           float* dst) const = 0;

  const ConvShape& s_;
};

// op(B) of one group's forward GEMM over images [i0, ...) side by side:
// column j is pixel j % P of image i0 + j / P; row (c, ki, kj) of the group.
// A run spans the rest of an image's plane (a panel may end one image and
// start the next).
class ImplicitColumns final : public ColumnPanels {
 public:
  ImplicitColumns(const ConvShape& s, const float* x, int64_t i0, int64_t group)
      : ColumnPanels(s), images_(x + (i0 * s.c + group * s.c_per_group()) * s.h * s.w),
        copy_(masked_copy_for_active_isa()) {}

 private:
  int64_t pack_run(int64_t column, int64_t most, int64_t p0, int64_t kc, int64_t nr,
                   float* dst) const override {
    const int64_t image = column / s_.out_plane(), first = column % s_.out_plane();
    const int64_t run = std::min(most, s_.out_plane() - first);
    const TapMasks masks(s_, first, run);
    const float* pixels = images_ + image * s_.c * s_.h * s_.w + first;
    for_taps(s_, p0, kc, [&](int64_t p, int64_t c, int64_t ki, int64_t kj) {
      copy_(tap_start(s_, pixels, c, ki, kj), masks.tap(ki, kj), run, dst + p * nr);
    });
    return run;
  }

  const float* images_;  // channel 0 of the group in image i0
  conv_detail::MaskedCopyFn copy_;
};

// op(B) of one group's weight-gradient GEMM, dW_g = dy @ cols^T, over
// images [i0, ...) side by side: row j is pixel j % P of image i0 + j / P,
// column (c, ki, kj) of the group; the transpose of ImplicitColumns' matrix,
// for the same convolutions. Per run of pixels (one image's, at most 64),
// each tap of a panel is copied masked into a staging tile, which the GEMM's
// transposing packer turns into panel rows, so the weight gradient too does
// without the column matrix and its trip through memory.
class ImplicitColumnsT final : public BPanelSource {
 public:
  ImplicitColumnsT(const ConvShape& s, const float* x, int64_t i0, int64_t group)
      : s_(s), images_(x + (i0 * s.c + group * s.c_per_group()) * s.h * s.w),
        copy_(masked_copy_for_active_isa()) {}

  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t cols, int nr, float* dst) const override {
    constexpr int64_t kRun = 64;
    alignas(64) float stage[64 * kRun];  // a panel's taps (nr <= 64) x one run
    const int64_t plane = s_.out_plane();
    for (int64_t p = 0; p < kc;) {
      const int64_t image = (p0 + p) / plane, first = (p0 + p) % plane;
      const int64_t run = std::min({kRun, plane - first, kc - p});
      const TapMasks masks(s_, first, run);
      const float* pixels = images_ + image * s_.c * s_.h * s_.w + first;
      for (int64_t q0 = 0; q0 < cols; q0 += nr) {
        const int64_t live = std::min<int64_t>(nr, cols - q0);
        for_taps(s_, j0 + q0, live, [&](int64_t t, int64_t c, int64_t ki, int64_t kj) {
          copy_(tap_start(s_, pixels, c, ki, kj), masks.tap(ki, kj), run, stage + t * kRun);
        });
        pack_b_panels(stage, kRun, true, live, run, nr, dst + q0 * kc + p * nr);
      }
      p += run;
    }
  }

 private:
  const ConvShape& s_;
  const float* images_;  // channel 0 of the group in image i0
  conv_detail::MaskedCopyFn copy_;
};

// op(B) of one group's forward GEMM read from the phase planes of its channels
// in the chunk's images, laid out [image][channel][phase plane]; column j is
// pixel j % P of image j / P, row (c, ki, kj) of the group.
class PhasedColumns final : public ColumnPanels {
 public:
  PhasedColumns(const ConvShape& s, const float* planes)
      : ColumnPanels(s), p_(s), planes_(planes), plane_floats_(p_.floats(s)) {}

 private:
  // A run ends with its output row: a row of a phase plane is contiguous.
  int64_t pack_run(int64_t column, int64_t most, int64_t p0, int64_t kc, int64_t nr,
                   float* dst) const override {
    const int64_t image = column / s_.out_plane(), pixel = column % s_.out_plane();
    const int64_t oy = pixel / s_.ow, ox = pixel % s_.ow;
    const int64_t run = std::min(most, s_.ow - ox);
    const float* row0 = planes_ + image * s_.c_per_group() * plane_floats_ + oy * p_.cols + ox;
    for_taps(s_, p0, kc, [&](int64_t p, int64_t c, int64_t ki, int64_t kj) {
      // (a library copy: measured 1.1-1.2x faster here than the masked copy
      // with every bit set)
      const float* src = row0 + c * plane_floats_ + tap_offset(s_, p_, ki, kj);
      std::copy(src, src + run, dst + p * nr);
    });
    return run;
  }

  const Phases p_;
  const float* planes_;
  int64_t plane_floats_;
};

// Phase planes of group g's channels in images [i0, i1), for PhasedColumns.
void split_group_phases(const ConvShape& s, const float* x, int64_t i0, int64_t i1, int64_t g,
                        float* planes, bool parallel) {
  const Phases p(s);
  const int64_t cg = s.c_per_group(), items = (i1 - i0) * cg, plane = p.floats(s);
  const bool worth = parallel && items * plane >= kMinParallelFloats;
#pragma omp parallel for schedule(static) if (worth)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t i = i0 + item / cg, c = g * cg + item % cg;
    split_phases(s, p, x + (i * s.c + c) * s.h * s.w, planes + item * plane);
  }
}

// The weights as the A operand of every chunk's GEMMs, group by group:
// W_g (O/g, Kg) forward, W_g^T (Kg, O/g) for backward-data. With several
// chunks they are packed once per call (PackedOperand) instead of once per
// chunk: for AlexNet conv4 at batch 16 the repacking was 8% of the forward.
class WeightOperand {
 public:
  // Packed when `pack` (several chunks share it, or the implicit im2col needs it).
  WeightOperand(const ConvShape& s, const float* weight, bool transposed, bool pack)
      : weight_(weight), transposed_(transposed), og_(s.o_per_group()),
        kg_(s.c_per_group() * s.kh * s.kw) {
    if (!pack) return;
    for (int64_t g = 0; g < s.groups; ++g) {
      packed_.push_back(PackedOperand::pack_a(transposed, rows(), depth(), group(g), kg_));
    }
  }

  // C (rows x n) = A_g @ B (depth x n), overwriting C.
  void gemm(int64_t g, int64_t n, const float* b, int64_t ldb, float* c, int64_t ldc) const {
    if (!packed_.empty()) {
      sgemm(packed_[g], false, n, 1.0f, b, ldb, 0.0f, c, ldc);
    } else {
      sgemm(GemmAlgo::Auto, transposed_, false, rows(), n, depth(), 1.0f, group(g), kg_, b, ldb,
            0.0f, c, ldc);
    }
  }

  // C (og x n) = W_g @ B with B packed from `b` itself (forward only).
  void gemm(int64_t g, int64_t n, const BPanelSource& b, float* c, int64_t ldc) const {
    sgemm(packed_.at(g), b, n, 1.0f, 0.0f, c, ldc);
  }

  const PackedOperand& packed(int64_t g) const { return packed_.at(g); }

  static int64_t packed_floats(const ConvShape& s, bool transposed, bool pack) {
    const int64_t og = s.o_per_group(), kg = s.c_per_group() * s.kh * s.kw;
    const int64_t one = transposed ? PackedOperand::floats(PackedOperand::Side::A, kg, og)
                                   : PackedOperand::floats(PackedOperand::Side::A, og, kg);
    return pack ? s.groups * one : 0;
  }

 private:
  int64_t rows() const { return transposed_ ? kg_ : og_; }
  int64_t depth() const { return transposed_ ? og_ : kg_; }
  const float* group(int64_t g) const { return weight_ + g * og_ * kg_; }

  const float* weight_;
  bool transposed_;
  int64_t og_, kg_;
  std::vector<PackedOperand> packed_;
};

struct ForwardScratch {
  Buffer cols;  // (C*kh*kw, S*P), explicit im2col only
  Buffer out;   // (O, S*P) when S > 1; a single image writes y directly

  void trim() {
    cols.trim();
    out.trim();
  }
};
thread_local ForwardScratch t_forward;

// y of images [i0, i1) = W @ cols + bias, group by group. The bias is added
// after the product (not as the GEMM's beta) so every chunk size rounds alike.
void forward_chunk(const ConvShape& s, const float* x, const WeightOperand& weight,
                   const float* bias, int64_t i0, int64_t i1, ForwardColumns how,
                   ForwardScratch& ws, float* y, bool parallel) {
  const int64_t plane = s.out_plane(), width = (i1 - i0) * plane;
  const int64_t image_in = s.c * s.h * s.w, image_out = s.o * plane;
  const int64_t og = s.o_per_group(), kg = s.c_per_group() * s.kh * s.kw;
  const float* b_mat = x + i0 * image_in;  // pointwise: the input itself (then i1 = i0 + 1)
  if (how == ForwardColumns::Explicit) {
    float* cols = ws.cols.get(s.col_rows() * width);
    for (int64_t i = i0; i < i1; ++i) {
      im2col_image(s, x + i * image_in, cols + (i - i0) * plane, width, parallel);
    }
    b_mat = cols;
  }
  float* out = y + i0 * image_out;
  if (i1 - i0 > 1) {
    out = ws.out.get(s.o * width);
  }
  for (int64_t g = 0; g < s.groups; ++g) {
    if (how == ForwardColumns::FromImage) {
      weight.gemm(g, width, ImplicitColumns(s, x, i0, g), out + g * og * width, width);
    } else if (how == ForwardColumns::FromPhases) {
      float* planes = ws.cols.get((i1 - i0) * s.c_per_group() * Phases(s).floats(s));
      split_group_phases(s, x, i0, i1, g, planes, parallel);
      weight.gemm(g, width, PhasedColumns(s, planes), out + g * og * width, width);
    } else {
      weight.gemm(g, width, b_mat + g * kg * width, width, out + g * og * width, width);
    }
  }
  if (i1 - i0 == 1 && bias == nullptr) return;
  const bool worth = parallel && s.o * width >= kMinParallelFloats;
#pragma omp parallel for schedule(static) if (worth)
  for (int64_t oc = 0; oc < s.o; ++oc) {
    const float b = bias != nullptr ? bias[oc] : 0.0f;
    for (int64_t i = i0; i < i1; ++i) {
      const float* src = out + oc * width + (i - i0) * plane;
      float* dst = y + i * image_out + oc * plane;
#pragma omp simd
      for (int64_t p = 0; p < plane; ++p) dst[p] = src[p] + b;
    }
  }
}

// ---- shifted rows ---------------------------------------------------------
//
// For stride-1 convolutions the column matrix needs no packing at all. Each
// channel is copied into a padded plane whose rows are Wp = max(W + pw, OW)
// floats: the zeros ending a row (at least pw) are also the left padding of
// the next one (pw more zeros lead the plane), with ph zero rows above and
// below. On the grid of outputs q = oy * Wp + ox, tap (ki, kj) of channel c
// is then the float at
//   c * plane + q + ki*dh*Wp + kj*dw
// for every q < OH * Wp with ox < OW (a tap's column ox + kj*dw - pw stays
// within [-pw, W + pw), as OW = W + 2pw - dw(kw - 1)), padding included, so
// each row of the column matrix is the padded image read at one shift, and
// the micro-kernel loads its B rows from there (sgemm_shifted_rows) instead
// of from packed panels. Small planes put
// a few images side by side in one padded plane (a grid row then holds a row
// of each, the pad columns shared the same way) so that the grid fills whole
// register tiles. The price: the grid's Wp - OW columns after each image row
// are computed and dropped ("same" 3x3 on 8x8: 9/8 of the work, on 32x32:
// 33/32; "valid" 5x5 on 14x14: 14/10), as are the last register tile's
// columns past the grid. The sums are the packed GEMM's, so the results are
// bitwise im2col's.

// Where the shifted rows are taken, from the forward measured against the
// packed panels (batch 64 unless noted, 1 / 2 threads; shifted_forward.txt
// and shifted_valid.txt in benchmarks/results/cpu-2026-11-30-shifted): with
// at most 64 output channels per group, where the panels' packing is shared
// by few rows of the product. "Same" convolutions: ResNet's 16 -> 16 at 32x32
// about 1.9x (its panels came from an explicit im2col), 32 -> 32 at 16x16
// 1.3x, 64 -> 64 at 8x8 1.1x, the 3 -> 16 stem 1.4x; "valid" ones: LeNet's
// 1 -> 6 at 32x32 2.1-2.8x, 6 -> 16 at 14x14 2.0-2.6x, 64 -> 64 3x3 on 16x16
// (b16) 1.3-1.45x. Not with more outputs, where the packing is already
// amortised: 128 -> 128 measured 0.92-1.0x at 8x8 and 0.97-1.04x at 16x16
// (b16), AlexNet conv2-5 (b8) 0.93-1.16x, a "valid" 64 -> 192 5x5 0.92-1.03x.
constexpr int64_t kShiftedMaxOutputs = 64;

// Images side by side in one padded plane, at most (images_side_by_side).
constexpr int64_t kMaxSideBySide = 8;

// A padded row of one image: its pixels, then the zeros shared as the right
// padding of this row and the left of the next.
int64_t shifted_image_row(const ConvShape& s) { return std::max(s.w + s.pw, s.ow); }

// Whether the padded planes stay a small multiple of the column matrix they
// replace: padding or dilation far beyond the image (a 1x1 output read from
// a 2^25-pixel pad) would make them astronomically larger, and their sizes
// overflow.
bool shifted_planes_fit(const ConvShape& s) {
  int64_t plane = 0, all = 0, taps = 0;
  const int64_t rows = s.h + 2 * s.ph;  // (each term < 2^40: finish())
  if (s.c == 0 || __builtin_mul_overflow(rows, shifted_image_row(s), &plane) ||
      __builtin_mul_overflow(plane + s.pw, s.c * kMaxSideBySide, &all) ||
      all > (int64_t{1} << 52) || __builtin_mul_overflow(s.kh, s.kw, &taps) ||
      __builtin_mul_overflow(taps, s.out_plane(), &taps)) {
    return false;
  }
  return plane + s.pw <= 2 * taps + shifted_image_row(s);
}

bool shifted_rows(const ConvShape& s) {
  const int mode = g_shifted_rows.load();
  if (mode == 0 || !g_implicit_im2col.load() || s.is_pointwise() || s.sh != 1 || s.sw != 1 ||
      !shifted_planes_fit(s)) {
    return false;
  }
  return mode == 2 || s.o_per_group() <= kShiftedMaxOutputs;
}

// Multiply-adds below which a thread's share of one image is not worth a region.
constexpr int64_t kMinShiftedWorkPerThread = int64_t{1} << 19;

// How many images sit side by side in one padded plane: a grid row then
// holds a row of each, so the grid's width can fill whole register tiles
// (8x8 planes: one image is a 72-column grid, a full 48-column tile and a
// narrow one; two make 144 columns, three full tiles: measured 1.1-1.25x
// faster than one image at 8x8 with 16-64 channels). The count, up to
// kMaxSideBySide, whose grids over the batch, rounded up to whole tiles (a
// short last group costs a full one), cover the fewest columns; a larger one
// only for a 2% saving (at 16x16, three side by side save 3% at batch 64 and
// measured even; at batch 16 a short last trio made them 0.84-0.89x).
int64_t images_side_by_side(const ConvShape& s, int64_t tile_cols) {
  const int64_t per_image = s.oh * shifted_image_row(s);
  auto columns = [&](int64_t k) { return ceil_div(s.n, k) * ceil_div(k * per_image, tile_cols); };
  int64_t best = 1;
  for (int64_t k = 2; k <= std::min(kMaxSideBySide, s.n); ++k) {
    if (columns(k) < 0.98 * static_cast<double>(columns(best))) best = k;
  }
  return best;
}

struct ShiftedGrid {
  ShiftedGrid(const ConvShape& s, Isa isa) : ShiftedGrid(s, register_tile(isa)) {}
  ShiftedGrid(const ConvShape& s, RegisterTile tile)
      : tile_cols(tile.cols), side(images_side_by_side(s, tile_cols)),
        image_row(shifted_image_row(s)), row(side * image_row),
        plane(s.pw + (s.h + 2 * s.ph) * row), columns(s.oh * row),
        ldc(ceil_div(columns, tile_cols) * tile_cols),
        out_rows(ceil_div(s.o_per_group(), tile.rows) * tile.rows) {
    // The last channel's shifted reads reach this far past its plane's start.
    const int64_t reach = (s.kh - 1) * s.dh * row + (s.kw - 1) * s.dw + ldc;
    images = s.c > 0 ? (s.c - 1) * plane + std::max(plane, reach) : 0;
    for_taps(s, 0, s.c_per_group() * s.kh * s.kw,
             [&](int64_t, int64_t c, int64_t ki, int64_t kj) {
               offsets.push_back(c * plane + ki * s.dh * row + kj * s.dw);
             });
  }

  int64_t tile_cols;  // register tile columns
  int64_t side;       // images side by side
  int64_t image_row;  // an image's share of a row: max(W + pw, OW)
  int64_t row;        // a padded row: side * image_row
  int64_t plane;      // floats of one padded channel
  int64_t columns;    // outputs on the grid: oh * row
  int64_t ldc;        // columns rounded up to whole tiles
  int64_t out_rows;   // O/g rounded up to whole tiles
  int64_t images;     // floats of the padded images, with the tail the last tiles read
  std::vector<int64_t> offsets;  // of each column-matrix row of a group

  int64_t floats_per_thread() const { return images + out_rows * ldc; }
};

struct ShiftedScratch {
  Buffer padded;  // ShiftedGrid::images
  Buffer out;     // (out_rows, ldc): one group's outputs on the grid

  void trim() {
    padded.trim();
    out.trim();
  }
};
thread_local ShiftedScratch t_shifted;

// dst[0, count) = src[0, count), inline: the rows of ResNet's planes are 8
// to 32 floats, where a library call per row measured as 10% of a 16x16
// layer's forward.
void copy_row(const float* src, int64_t count, float* dst) {
#pragma omp simd
  for (int64_t i = 0; i < count; ++i) dst[i] = src[i];
}

// Channel c of images [i0, i0 + count) side by side in its padded plane;
// places past the batch (count < side) hold zeros.
void pad_plane(const ConvShape& s, const ShiftedGrid& g, const float* x, int64_t i0,
               int64_t count, int64_t c, float* plane) {
  float* first_row = plane + s.pw + s.ph * g.row;
  std::fill(plane, first_row, 0.0f);
  for (int64_t y = 0; y < s.h; ++y) {
    for (int64_t k = 0; k < g.side; ++k) {
      float* dst = first_row + y * g.row + k * g.image_row;
      const int64_t live = k < count ? s.w : 0;
      if (live > 0) copy_row(x + (((i0 + k) * s.c + c) * s.h + y) * s.w, live, dst);
      for (int64_t ix = live; ix < g.image_row; ++ix) dst[ix] = 0.0f;
    }
  }
  std::fill(first_row + s.h * g.row, plane + g.plane, 0.0f);
}

void pad_images(const ConvShape& s, const ShiftedGrid& g, const float* x, int64_t i0,
                int64_t count, float* padded, bool parallel) {
  const bool worth = parallel && s.c * g.plane >= kMinParallelFloats;
#pragma omp parallel for schedule(static) if (worth)
  for (int64_t c = 0; c < s.c; ++c) pad_plane(s, g, x, i0, count, c, padded + c * g.plane);
  // (the tail only feeds dropped columns; zeros keep it defined)
  std::fill(padded + s.c * g.plane, padded + g.images, 0.0f);
}

// y planes of `channels` outputs (from channel `first` on) of images [i0, i0
// + count) from their grid rows, pad columns dropped, plus the bias.
void unpad_outputs(const ConvShape& s, const ShiftedGrid& g, const float* out, const float* bias,
                   int64_t first, int64_t channels, int64_t i0, int64_t count, float* y,
                   bool parallel) {
  const bool worth = parallel && count * channels * s.out_plane() >= kMinParallelFloats;
#pragma omp parallel for collapse(2) schedule(static) if (worth)
  for (int64_t k = 0; k < count; ++k) {
    for (int64_t oc = 0; oc < channels; ++oc) {
      const float b = bias != nullptr ? bias[oc] : 0.0f;
      float* plane = y + ((i0 + k) * s.o + first + oc) * s.out_plane();
      for (int64_t oy = 0; oy < s.oh; ++oy) {
        const float* src = out + oc * g.ldc + oy * g.row + k * g.image_row;
        float* dst = plane + oy * s.ow;
        if (bias == nullptr) {
          copy_row(src, s.ow, dst);
        } else {
#pragma omp simd
          for (int64_t ox = 0; ox < s.ow; ++ox) dst[ox] = src[ox] + b;
        }
      }
    }
  }
}

// Images [i0, i0 + side) (those in the batch), group by group; `parallel`
// splits each product's tiles over the team.
void shifted_images(const ConvShape& s, const ShiftedGrid& g, const float* x,
                    const WeightOperand& weight, const float* bias, int64_t i0, float* y,
                    bool parallel) {
  const int64_t count = std::min(g.side, s.n - i0);
  float* padded = t_shifted.padded.get(g.images);
  pad_images(s, g, x, i0, count, padded, parallel);
  float* out = t_shifted.out.get(g.out_rows * g.ldc);
  const int64_t og = s.o_per_group(), cg = s.c_per_group();
  const int64_t tiles = ceil_div(g.columns, g.tile_cols);
  const int64_t work = parallel ? og * cg * s.kh * s.kw * g.columns : 0;
  for (int64_t grp = 0; grp < s.groups; ++grp) {
    const float* b = padded + grp * cg * g.plane;
    parallel_ranges(
        tiles, work,
        [&](int64_t t0, int64_t t1) {
          sgemm_shifted_rows(weight.packed(grp), b, g.offsets.data(), t0 * g.tile_cols,
                             std::min(t1 * g.tile_cols, g.columns), out, g.ldc);
        },
        kMinShiftedWorkPerThread);
    unpad_outputs(s, g, out, bias != nullptr ? bias + grp * og : nullptr, grp * og, og, i0, count,
                  y, parallel);
  }
}

void shifted_forward(const ConvShape& s, const float* x, const WeightOperand& weight,
                     const float* bias, float* y) {
  const ShiftedGrid g(s, weight.packed(0).isa());
  run_items(
      ceil_div(s.n, g.side),
      [&](int64_t it, bool parallel) {
        shifted_images(s, g, x, weight, bias, it * g.side, y, parallel);
      },
      [] { t_shifted.trim(); });
}

// ---- backward ------------------------------------------------------------

struct BackwardArgs {
  const ConvShape& s;
  const float* dy;
  const float* x;
  const WeightOperand& weight_t;  // W_g^T, for dx
  float* dx;
  float* dweight;
  int64_t chunk;        // S
  bool dw_from_image;   // ImplicitColumnsT instead of im2col for the weight gradient

  // Whether a chunk's columns are written out: for col2im's dx, or im2col's dW.
  bool needs_cols() const {
    return !s.is_pointwise() && (dx != nullptr || (dweight != nullptr && !dw_from_image));
  }
};

// Per-thread scratch of the backward pass.
struct BackwardScratch {
  Buffer cols;   // (C*kh*kw, S*P): im2col of the chunk, then W^T @ dy
  Buffer dyc;    // (O, S*P): dy of the chunk, images side by side

  void trim() {
    cols.trim();
    dyc.trim();
  }

  BackwardScratch& fit(const BackwardArgs& a) {
    const int64_t width = a.chunk * a.s.out_plane();
    if (a.needs_cols()) cols.get(a.s.col_rows() * width);
    if (a.chunk > 1) dyc.get(a.s.o * width);
    return *this;
  }
};
thread_local BackwardScratch t_backward;

// Copies dy of images [i0, i1) into (O, count*P) with the images side by side.
void gather_dy(const ConvShape& s, const float* dy, int64_t i0, int64_t i1, float* dyc,
               bool parallel) {
  const int64_t plane = s.out_plane(), width = (i1 - i0) * plane;
  const bool worth = parallel && s.o * width >= kMinParallelFloats;
#pragma omp parallel for schedule(static) if (worth)
  for (int64_t oc = 0; oc < s.o; ++oc) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* src = dy + (i * s.o + oc) * plane;
      std::copy(src, src + plane, dyc + oc * width + (i - i0) * plane);
    }
  }
}

// Chunk `ci`: writes dx of its images and, when dweight is wanted, this
// chunk's weight-gradient term into `part` (O, Kg).
void backward_chunk_work(const BackwardArgs& a, int64_t ci, BackwardScratch& ws, float* part,
                         bool parallel) {
  const ConvShape& s = a.s;
  const int64_t plane = s.out_plane(), image_in = s.c * s.h * s.w;
  const int64_t og = s.o_per_group(), kg = s.c_per_group() * s.kh * s.kw;
  const int64_t i0 = ci * a.chunk, i1 = std::min(s.n, i0 + a.chunk);
  const int64_t width = (i1 - i0) * plane;  // columns side by side; ld of every matrix

  const float* dmat = a.dy + i0 * s.o * plane;
  if (i1 - i0 > 1) {
    gather_dy(s, a.dy, i0, i1, ws.dyc.data(), parallel);
    dmat = ws.dyc.data();
  }
  if (part != nullptr && a.dw_from_image) {
    for (int64_t g = 0; g < s.groups; ++g) {
      sgemm(false, og, width, 1.0f, dmat + g * og * width, width, ImplicitColumnsT(s, a.x, i0, g),
            kg, 0.0f, part + g * og * kg, kg);
    }
  } else if (part != nullptr) {
    const float* cols = a.x + i0 * image_in;  // pointwise: the input itself
    if (!s.is_pointwise()) {
      for (int64_t i = i0; i < i1; ++i) {
        im2col_image(s, a.x + i * image_in, ws.cols.data() + (i - i0) * plane, width, parallel);
      }
      cols = ws.cols.data();
    }
    for (int64_t g = 0; g < s.groups; ++g) {
      sgemm(GemmAlgo::Auto, false, true, og, kg, width, 1.0f, dmat + g * og * width, width,
            cols + g * kg * width, width, 0.0f, part + g * og * kg, kg);
    }
  }
  if (a.dx != nullptr) {
    float* dcols = s.is_pointwise() ? a.dx + i0 * image_in : ws.cols.data();
    for (int64_t g = 0; g < s.groups; ++g) {
      a.weight_t.gemm(g, width, dmat + g * og * width, width, dcols + g * kg * width, width);
    }
    if (!s.is_pointwise()) {
      for (int64_t i = i0; i < i1; ++i) {
        col2im_image(s, dcols + (i - i0) * plane, width, a.dx + i * image_in, parallel);
      }
    }
  }
}

// db[o] = sum of dy[:, o]: one output channel per thread, a fixed order
// inside. Each plane is summed in kLanes interleaved partial sums (lane l
// takes pixels l, l + kLanes, ...), added up in lane order at the end: a
// single running sum is one long dependency chain the compiler may not
// reorder, several times slower than these independent, vectorisable lanes.
constexpr int64_t kLanes = 16;

float plane_sum(const float* row, int64_t plane) {
  float lanes[kLanes] = {};
  const int64_t full = plane / kLanes * kLanes;
  for (int64_t p0 = 0; p0 < full; p0 += kLanes) {
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) lanes[l] += row[p0 + l];
  }
  for (int64_t p = full; p < plane; ++p) lanes[p - full] += row[p];
  float sum = 0.0f;
  for (int64_t l = 0; l < kLanes; ++l) sum += lanes[l];
  return sum;
}

void bias_grad(const ConvShape& s, const float* dy, float* db) {
  const int64_t plane = s.out_plane();
  const bool worth = s.n * s.o * plane >= kMinParallelFloats;
#pragma omp parallel for schedule(static) if (worth)
  for (int64_t oc = 0; oc < s.o; ++oc) {
    double sum = 0.0;
    for (int64_t i = 0; i < s.n; ++i) sum += plane_sum(dy + (i * s.o + oc) * plane, plane);
    db[oc] = static_cast<float>(sum);
  }
}

// dweight[e] += parts[t][e] for t = 0..count-1, elements split over the team.
void add_parts_in_order(float* dweight, const float* parts, int64_t part_size, int64_t count) {
#pragma omp for schedule(static)
  for (int64_t e = 0; e < part_size; ++e) {
    float acc = dweight[e];
    for (int64_t t = 0; t < count; ++t) acc += parts[t * part_size + e];
    dweight[e] = acc;
  }
}

thread_local Buffer t_parts;  // weight-gradient terms: one, or one per thread of a team

// Runs work(item, part, parallel) for items [0, count), each writing its
// weight-gradient term (part_size floats) into `part`, and adds the terms to
// dweight in item order, so that the sum is the same for any thread count.
// With at least as many items as threads each thread takes whole items with
// single-threaded GEMMs (wave w gives item w*threads + t to thread t, and the
// team then adds the wave's terms in item order); otherwise the items run one
// after another with `parallel` set. dweight == nullptr: no terms (part is
// nullptr). trim() runs on every thread that worked.
template <typename Work, typename Trim>
void sum_items_in_order(int64_t count, int64_t part_size, float* dweight, Work work, Trim trim) {
  const int threads = omp_get_max_threads();
  if (!over_images(count, threads)) {
    float* part = dweight != nullptr ? t_parts.get(part_size) : nullptr;
    for (int64_t item = 0; item < count; ++item) {
      work(item, part, true);
      if (dweight != nullptr) {
        const bool worth = part_size >= kMinParallelFloats;
#pragma omp parallel if (worth)
        add_parts_in_order(dweight, part, part_size, 1);
      }
    }
    trim();
    t_parts.trim();
    return;
  }
  float* parts = dweight != nullptr ? t_parts.get(threads * part_size) : nullptr;
  const int64_t waves = ceil_div(count, threads);
  RegionFailure failure;
#pragma omp parallel num_threads(threads)
  {
    omp_set_num_threads(1);  // single-threaded GEMMs inside this team
    const int self = omp_get_thread_num();
    const int team = omp_get_num_threads();  // may be fewer than asked
    for (int64_t wave = 0; wave < waves; ++wave) {
      // (threads t >= team: covered by thread t % team)
      for (int t = self; t < threads; t += team) {
        const int64_t item = wave * threads + t;
        if (item >= count) continue;
        float* part = dweight != nullptr ? parts + t * part_size : nullptr;
        // A failed item is skipped, but its thread still meets every barrier.
        failure.run([&] { work(item, part, false); });
      }
      if (dweight != nullptr) {
#pragma omp barrier
        add_parts_in_order(dweight, parts, part_size,
                           std::min<int64_t>(threads, count - wave * threads));
        // (the omp for ends in a barrier, so the parts are free again)
      }
    }
    trim();
  }
  failure.rethrow();
  t_parts.trim();
}

void backward_chunks(const BackwardArgs& a) {
  sum_items_in_order(
      ceil_div(a.s.n, a.chunk), a.s.o * a.s.c_per_group() * a.s.kh * a.s.kw, a.dweight,
      [&](int64_t ci, float* part, bool parallel) {
        backward_chunk_work(a, ci, t_backward.fit(a), part, parallel);
      },
      [] { t_backward.trim(); });
}

// ---- weight gradient on shifted rows ---------------------------------------
//
// On the shifted-rows grid (see the forward) the input under tap (ki, kj) of
// channel c is c's padded plane read at one offset, so with dy laid out on
// the same grid every weight-gradient entry,
//   dW_g[o][(c, ki, kj)] = sum over images and grid positions q of
//                          dy[o][q] * plane_c[q + ki*dh*row + kj*dw],
// is a dot product of two rows read in place: no column matrix, no panels,
// no transpose (the packed paths' packing is most of the work where few
// output channels share it: ResNet's 16-channel layers ran at a tenth of the
// forward's speed). The dot tiles (conv_dw_<isa>.cpp) take a few output
// channels by a few taps, run along the grid in whole vectors and add across
// lanes once at the end. Here a block's images are stacked, each below the
// previous one's bottom padding (which is also its top padding), so that one
// block is one long run of a few thousand positions. The grid's dead
// positions (the pad columns after each image row, the pad rows between
// images) are masked out of the input's reads: a zero dy there would still
// turn a NaN pixel into a NaN in a tap that PyTorch leaves finite.

// Grid positions per block, about (whole images): enough that the sums
// across lanes are a small part of a tile.
constexpr int64_t kDwBlockPositions = 4096;

conv_detail::DotTileKernel dot_tile_for_active_isa() {
  return active_isa() == Isa::Generic ? conv_detail::kDotTileGeneric : conv_detail::kDotTileAvx2;
}

int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Images per block: at most `want`, the batch cut into a number of blocks
// rounded up to a multiple of 4 where the batch allows, all of one size but
// the last: the threads take whole blocks, and 64 images of 8x8 as 50 + 14
// (or 22 + 22 + 20) left one of two threads idle for most of the call. (The
// size depends on the shape alone, never on the threads, which keeps the sum
// order fixed.)
int64_t block_images(int64_t n, int64_t want) {
  n = std::max<int64_t>(1, n);
  const int64_t blocks = std::min(n, round_up(ceil_div(n, std::max<int64_t>(1, want)), 4));
  return ceil_div(n, blocks);
}

// Grid positions of one image: DwGrid's image_rows * row.
int64_t dw_image_positions(const ConvShape& s) {
  return std::max(s.h + s.ph, s.oh) * shifted_image_row(s);
}

struct DwGrid {
  explicit DwGrid(const ConvShape& s)
      : kernel(dot_tile_for_active_isa()), row(shifted_image_row(s)),
        image_rows(std::max(s.h + s.ph, s.oh)),
        images(block_images(s.n, kDwBlockPositions / dw_image_positions(s))),
        count(round_up(images * image_rows * row, 16)), lead(s.pw + s.ph * row),
        dy_rows(s.o + kernel.mr) {
    const int64_t reach = (s.kh - 1) * s.dh * row + (s.kw - 1) * s.dw;
    channel = round_up(std::max(count + reach, lead + ((images - 1) * image_rows + s.h) * row), 16);
    const int64_t kg = s.c_per_group() * s.kh * s.kw;
    for_taps(s, 0, kg, [&](int64_t, int64_t c, int64_t ki, int64_t kj) {
      offsets.push_back(c * channel + ki * s.dh * row + kj * s.dw);
    });
    offsets.resize(round_up(kg, kernel.nt), 0);  // a partial tile's extra taps read channel 0
    lanes.assign(count, 0u);
    for (int64_t q = 0; q < images * image_rows * row; ++q) {
      if (q % row < s.ow && q / row % image_rows < s.oh) lanes[q] = ~0u;
    }
  }

  // Scratch floats of one block: its padded channels and dy rows.
  int64_t floats(const ConvShape& s) const { return s.c * channel + dy_rows * count; }

  conv_detail::DotTileKernel kernel;
  int64_t row;         // a padded row: max(W + pw, OW)
  int64_t image_rows;  // rows from one image to the next: max(H + ph, OH)
  int64_t images;      // per block (the last may have fewer)
  int64_t count;       // grid positions of a block, rounded up to whole vectors
  int64_t lead;        // where pixel (0, 0) of the first image sits in a channel
  int64_t channel;     // floats of a padded channel: all that a tap reads
  int64_t dy_rows;     // O, plus rows of zeros for a partial tile to read
  std::vector<int64_t> offsets;  // of each weight-gradient column of a group
  std::vector<uint32_t> lanes;   // live positions (conv_detail::LiveMask)
};

struct DwScratch {
  Buffer planes;  // C padded channels
  Buffer dy;      // dy_rows rows of `count` positions

  void trim() {
    planes.trim();
    dy.trim();
  }
};
thread_local DwScratch t_dw;

// `count` planes of rows x cols floats, src_step apart, into dst with their
// rows `row` floats apart and the planes dst_step apart.
void stack_planes(const float* src, int64_t src_step, int64_t count, int64_t rows, int64_t cols,
                  float* dst, int64_t dst_step, int64_t row) {
  for (int64_t k = 0; k < count; ++k) {
    for (int64_t y = 0; y < rows; ++y) {
      copy_row(src + k * src_step + y * cols, cols, dst + k * dst_step + y * row);
    }
  }
}

// Channel c of images [i0, i0 + count) stacked in `dst`, zeros elsewhere.
void stack_channel(const ConvShape& s, const DwGrid& g, const float* x, int64_t i0, int64_t count,
                   int64_t c, float* dst) {
  std::fill(dst, dst + g.channel, 0.0f);
  stack_planes(x + (i0 * s.c + c) * s.h * s.w, s.c * s.h * s.w, count, s.h, s.w, dst + g.lead,
               g.image_rows * g.row, g.row);
}

// dy of output channel o (o < O; zeros past it) of images [i0, i0 + count) on the grid.
void stack_dy(const ConvShape& s, const DwGrid& g, const float* dy, int64_t i0, int64_t count,
              int64_t o, float* dst) {
  std::fill(dst, dst + g.count, 0.0f);
  if (o >= s.o) return;
  stack_planes(dy + (i0 * s.o + o) * s.out_plane(), s.o * s.out_plane(), count, s.oh, s.ow, dst,
               g.image_rows * g.row, g.row);
}

// Multiply-adds below which a thread's share of one block is not worth a region.
constexpr int64_t kMinDotWorkPerThread = int64_t{1} << 19;

// Block `b`'s weight-gradient term into part (O, Kg).
void dw_block(const ConvShape& s, const DwGrid& g, const float* dy, const float* x, int64_t b,
              float* part, bool parallel) {
  const int64_t i0 = b * g.images, count = std::min(g.images, s.n - i0);
  const int64_t positions = round_up(count * g.image_rows * g.row, 16);
  float* planes = t_dw.planes.get(s.c * g.channel);
  float* dyg = t_dw.dy.get(g.dy_rows * g.count);
  const int64_t og = s.o_per_group(), cg = s.c_per_group(), kg = cg * s.kh * s.kw;
  const int64_t work = og * kg * positions * s.groups;
  const bool fill_worth = parallel && (s.c * g.channel + g.dy_rows * g.count) >= kMinParallelFloats;
#pragma omp parallel if (fill_worth)
  {
#pragma omp for schedule(static) nowait
    for (int64_t c = 0; c < s.c; ++c) stack_channel(s, g, x, i0, count, c, planes + c * g.channel);
#pragma omp for schedule(static)
    for (int64_t o = 0; o < g.dy_rows; ++o) stack_dy(s, g, dy, i0, count, o, dyg + o * g.count);
  }
  const conv_detail::DotTileKernel& k = g.kernel;
  const conv_detail::LiveMask live{g.lanes.data()};
  const int64_t row_tiles = ceil_div(og, k.mr), col_tiles = ceil_div(kg, k.nt);
  // Tiles in (group, dy rows, taps) order: a thread's run of tiles keeps its
  // dy rows while it walks the channels.
  parallel_ranges(
      s.groups * row_tiles * col_tiles, parallel ? work : 0,
      [&](int64_t t0, int64_t t1) {
        float out[64];  // mr * nt <= 64
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t grp = t / (row_tiles * col_tiles);
          const int64_t o0 = t / col_tiles % row_tiles * k.mr, p0 = t % col_tiles * k.nt;
          k.tile(positions, dyg + (grp * og + o0) * g.count, g.count,
                 planes + grp * cg * g.channel, g.offsets.data() + p0, live, out);
          const int64_t rows = std::min<int64_t>(k.mr, og - o0);
          const int64_t cols = std::min<int64_t>(k.nt, kg - p0);
          for (int64_t i = 0; i < rows; ++i) {
            std::copy(out + i * k.nt, out + i * k.nt + cols, part + (grp * og + o0 + i) * kg + p0);
          }
        }
      },
      kMinDotWorkPerThread);
}

void shifted_weight_grad(const ConvShape& s, const float* dy, const float* x, float* dweight) {
  const DwGrid g(s);
  sum_items_in_order(
      ceil_div(s.n, g.images), s.o * s.c_per_group() * s.kh * s.kw, dweight,
      [&](int64_t b, float* part, bool parallel) { dw_block(s, g, dy, x, b, part, parallel); },
      [] { t_dw.trim(); });
}

// Where the weight gradient takes the dot tiles, measured against the GEMM
// paths (dW alone, AVX2, 1 / 2 threads, batch 64 unless noted, over two runs;
// dw_shifted.txt in benchmarks/results/cpu-2026-11-30-dwdot): up to 128
// output channels per group, where those paths' packing is shared by few
// rows: ResNet's 16 -> 16 at 32x32 4.0-6.2x, 32 -> 32 at 16x16 2.6-3.8x,
// 64 -> 64 at 8x8 1.5-2.2x (b16: 1.2-1.5x), the 3 -> 16 stem 4.1-5.1x;
// LeNet's 1 -> 6 3.8-6.7x, 6 -> 16 2.2-2.9x; 64 -> 64 at 56x56 (b4) 2.4x;
// 128 -> 128 (b16) at 8x8 0.91-1.55x, at 16x16 0.92-1.04x. Not with more
// outputs, about even there: AlexNet's conv2-5 (b8) 0.87-1.10x. Nor on
// blocks shorter than 256 positions, where each tile's sums across lanes
// and its setup are too little used: one 8x8 image a block (b2, b4)
// measured 0.52-0.84x. Nor where the grid is more than twice the outputs
// (a 5x5 "valid" conv on 8x8, 7x7 or 11x11 ones: 4-36x the GEMM's
// multiply-adds; LeNet's 6 -> 16 on 14x14, 1.96x, is the worst measured),
// nor with groups, which were not measured (a depthwise conv would fill half
// of each 2-row tile).
constexpr int64_t kDwShiftedMaxOutputs = 128;
constexpr int64_t kDwMinBlockPositions = 256;
constexpr int64_t kDwMaxGridPerOutput = 2;

bool weight_grad_shifted(const ConvShape& s) {
  const int mode = g_dw_shifted_rows.load();
  if (mode == 0 || !g_implicit_im2col.load() || s.is_pointwise() || s.sh != 1 || s.sw != 1 ||
      !shifted_planes_fit(s)) {
    return false;
  }
  const int64_t per_image = dw_image_positions(s);
  const int64_t block = block_images(s.n, kDwBlockPositions / per_image) * per_image;
  return mode == 2 || (s.groups == 1 && s.o <= kDwShiftedMaxOutputs &&
                       block >= kDwMinBlockPositions &&
                       per_image <= kDwMaxGridPerOutput * s.out_plane());
}

}  // namespace

// ---- public entry points --------------------------------------------------

void conv2d_bias_grad(const ConvShape& s, const float* dy, float* db) { bias_grad(s, dy, db); }

void ConvShape::finish() {
  // Bounds that keep every product below in int64 (no such extent fits in
  // memory anyway): sizes, padding and dilated kernel spans below 2^40.
  finish_conv_geometry(*this, int64_t{1} << 40, "");
  int64_t plane = 0, cols = 0;
  const int64_t phase_h = ceil_div(h + 2 * ph, sh) * sh, phase_w = ceil_div(w + 2 * pw, sw) * sw;
  if (__builtin_mul_overflow(phase_h, phase_w, &plane) || plane > (int64_t{1} << 52) ||
      __builtin_mul_overflow(c, kh, &cols) || __builtin_mul_overflow(cols, kw, &cols) ||
      __builtin_mul_overflow(cols, oh, &cols) || __builtin_mul_overflow(cols, ow, &cols) ||
      __builtin_mul_overflow(cols, n, &cols) || __builtin_mul_overflow(o, oh * ow, &plane) ||
      __builtin_mul_overflow(plane, n, &plane)) {
    throw std::invalid_argument(
        "convolution too large: its column matrix or padded planes would not fit in memory");
  }
}

void im2col(const ConvShape& s, const float* x, float* cols) {
  const int64_t image_cols = s.col_rows() * s.out_plane();
  const bool worth = image_cols * s.n >= kMinParallelFloats;
  for_channels(s, s.n * s.c, worth, [&](const Phases& p, int64_t item, float* scratch) {
    const int64_t i = item / s.c, c = item % s.c;
    im2col_channel(s, p, x + item * s.h * s.w, c, cols + i * image_cols, s.out_plane(), scratch);
  });
}

void col2im(const ConvShape& s, const float* cols, float* x) {
  const int64_t image_cols = s.col_rows() * s.out_plane();
  const bool worth = image_cols * s.n >= kMinParallelFloats;
  for_channels(s, s.n * s.c, worth, [&](const Phases& p, int64_t item, float* scratch) {
    const int64_t i = item / s.c, c = item % s.c;
    // The caller's cols stay untouched (clobber = false), hence the cast.
    col2im_channel(s, p, const_cast<float*>(cols) + i * image_cols, false, s.out_plane(), c,
                   x + item * s.h * s.w, scratch);
  });
}

void conv2d_forward(const ConvShape& s, const float* x, const float* weight, const float* bias,
                    float* y) {
  if (s.n == 0 || s.o == 0) return;
  const int64_t chunk = chunk_images(s), chunks = ceil_div(s.n, chunk);
  const ForwardColumns how = forward_columns(s);  // decided once: the packing below depends on it
  const bool implicit = how == ForwardColumns::FromImage || how == ForwardColumns::FromPhases ||
                        how == ForwardColumns::Shifted;
  const WeightOperand w(s, weight, false, chunks > 1 || implicit);
  if (how == ForwardColumns::Shifted) {
    shifted_forward(s, x, w, bias, y);
    return;
  }
  run_items(
      chunks,
      [&](int64_t ci, bool parallel) {
        forward_chunk(s, x, w, bias, ci * chunk, std::min(s.n, (ci + 1) * chunk), how, t_forward,
                      y, parallel);
      },
      [] { t_forward.trim(); });
}

namespace {

// Backward-data of a stride-1 convolution as a forward convolution (see the
// top of the file): dy convolved with the kernel rotated by 180 degrees and
// its channel axes swapped within each group, padded by d (k - 1) - p. The
// forward then packs its columns from dy itself, where col2im's path writes a
// (C*kh*kw, S*P) matrix from a GEMM of depth O/g and reads it back. Where
// that depth is small the GEMM is bound by writing its result: ResNet-20's
// 16- to 64-channel layers at batch 64 measured the whole backward 1.05-1.5x
// faster as a forward. With 192 and more output channels (AlexNet conv2-5)
// it is compute-bound and measured 0.93-1.16x, within noise or behind, so
// those keep col2im; so do layers with few input channels, which become the
// forward's rows (M = C/g): LeNet's 1 -> 6 and 6 -> 16 and ResNet's 3 -> 16
// stem measured 0.29-0.53x as a forward.
constexpr int64_t kDxAsForwardMaxDepth = 64, kDxAsForwardMinRows = 16;

bool dx_as_forward(const ConvShape& s) {
  return g_dx_as_forward.load() && s.sh == 1 && s.sw == 1 && !s.is_pointwise() &&
         s.o_per_group() <= kDxAsForwardMaxDepth && s.c_per_group() >= kDxAsForwardMinRows &&
         s.ph <= s.dh * (s.kh - 1) && s.pw <= s.dw * (s.kw - 1);
}

// The forward convolution whose output is dx: dy (N, O, OH, OW) in, C out.
ConvShape dx_forward_shape(const ConvShape& s) {
  ConvShape t;
  t.set_input(s.n, s.o, s.oh, s.ow);
  t.o = s.c;
  t.groups = s.groups;
  t.set_window({s.kh, s.kw}, {1, 1}, {s.dh * (s.kh - 1) - s.ph, s.dw * (s.kw - 1) - s.pw},
               {s.dh, s.dw});
  t.finish();  // t.oh, t.ow == s.h, s.w
  return t;
}

// flipped (C, O/g, kh, kw)[g*Cg + c][o] = weight (O, C/g, kh, kw)[g*Og + o][c], rotated.
void flip_weight(const ConvShape& s, const float* weight, float* flipped) {
  const int64_t og = s.o_per_group(), cg = s.c_per_group(), taps = s.kh * s.kw;
  for (int64_t g = 0; g < s.groups; ++g) {
    for (int64_t o = 0; o < og; ++o) {
      for (int64_t c = 0; c < cg; ++c) {
        const float* src = weight + ((g * og + o) * cg + c) * taps;
        float* dst = flipped + ((g * cg + c) * og + o) * taps;
        for (int64_t t = 0; t < taps; ++t) dst[taps - 1 - t] = src[t];
      }
    }
  }
}

thread_local Buffer t_flipped_weight;

void backward_data_as_forward(const ConvShape& s, const float* dy, const float* weight,
                              float* dx) {
  float* flipped = t_flipped_weight.get(s.o * s.c_per_group() * s.kh * s.kw);
  flip_weight(s, weight, flipped);
  conv2d_forward(dx_forward_shape(s), dy, flipped, nullptr, dx);
  t_flipped_weight.trim();
}

}  // namespace

void conv2d_backward(const ConvShape& s, const float* dy, const float* x, const float* weight,
                     float* dx, float* dweight, float* dbias) {
  if (dbias != nullptr) bias_grad(s, dy, dbias);
  if (dweight != nullptr) {
    std::fill(dweight, dweight + s.o * s.c_per_group() * s.kh * s.kw, 0.0f);
  }
  if (s.n == 0 || (dx == nullptr && dweight == nullptr)) return;
  if (dx != nullptr && s.o > 0 && dx_as_forward(s)) {
    backward_data_as_forward(s, dy, weight, dx);
    dx = nullptr;
  }
  if (dweight != nullptr && s.o > 0 && weight_grad_shifted(s)) {
    shifted_weight_grad(s, dy, x, dweight);
    dweight = nullptr;
  }
  if (dx == nullptr && dweight == nullptr) return;
  const int64_t chunk = chunk_images(s), chunks = ceil_div(s.n, chunk);
  const WeightOperand w_t(s, weight, true, dx != nullptr && chunks > 1);
  backward_chunks(BackwardArgs{s, dy, x, w_t, dx, dweight, chunk, weight_grad_from_image(s)});
}

// Phase scratch: one per thread, as the channel-parallel im2col of the
// sequential mode uses the whole team too.
static int64_t phase_workspace(const ConvShape& s, int threads) {
  return threads * Phases(s).scratch_floats(s);
}

int64_t conv2d_forward_workspace(const ConvShape& s, int threads) {
  if (s.n == 0) return 0;
  const ForwardColumns how = forward_columns(s);
  if (how == ForwardColumns::Shifted) {
    const ShiftedGrid g(s, active_isa());
    const int64_t team = over_images(ceil_div(s.n, g.side), threads) ? threads : 1;
    return team * g.floats_per_thread() + WeightOperand::packed_floats(s, false, true);
  }
  const int64_t chunk = chunk_images(s), width = chunk * s.out_plane();
  const int64_t team = over_images(ceil_div(s.n, chunk), threads) ? threads : 1;
  const bool explicit_cols = how == ForwardColumns::Explicit;
  const int64_t cols = explicit_cols ? s.col_rows() * width
                       : how == ForwardColumns::FromPhases
                           ? chunk * s.c_per_group() * Phases(s).floats(s)
                           : 0;
  const int64_t out = chunk > 1 ? s.o * width : 0;
  const bool packed = ceil_div(s.n, chunk) > 1 ||
                      how == ForwardColumns::FromImage || how == ForwardColumns::FromPhases;
  return team * (cols + out) + (explicit_cols ? phase_workspace(s, threads) : 0) +
         WeightOperand::packed_floats(s, false, packed);
}

// The weight gradient's dot tiles: each thread's block scratch and term,
// and the grid's live masks.
static int64_t dot_weight_grad_workspace(const ConvShape& s, int threads) {
  const DwGrid g(s);
  const int64_t team = over_images(ceil_div(s.n, g.images), threads) ? threads : 1;
  const int64_t part = s.o * s.c_per_group() * s.kh * s.kw;
  return team * (g.floats(s) + part) + g.count;
}

int64_t conv2d_backward_workspace(const ConvShape& s, int threads) {
  if (s.n == 0) return 0;
  const int64_t part = s.o * s.c_per_group() * s.kh * s.kw;
  const bool data_forward = s.o > 0 && dx_as_forward(s);
  const bool weight_dot = s.o > 0 && weight_grad_shifted(s);
  int64_t total = data_forward ? part + conv2d_forward_workspace(dx_forward_shape(s), threads) : 0;
  if (weight_dot) total += dot_weight_grad_workspace(s, threads);
  if (data_forward && weight_dot) return total;
  // What remains runs on chunks (backward_chunks): dx by col2im, or dW by a GEMM.
  const int64_t chunk = chunk_images(s), width = chunk * s.out_plane();
  const int64_t team = over_images(ceil_div(s.n, chunk), threads) ? threads : 1;
  const int64_t dyc = chunk > 1 ? s.o * width : 0;
  const bool cols = !s.is_pointwise() && (!data_forward || !weight_grad_from_image(s));
  const int64_t packed_w_t =
      data_forward ? 0 : WeightOperand::packed_floats(s, true, ceil_div(s.n, chunk) > 1);
  return total + team * ((cols ? s.col_rows() * width : 0) + dyc + (weight_dot ? 0 : part)) +
         phase_workspace(s, threads) + packed_w_t;
}

void set_conv_parallel_mode(int mode) { g_parallel_mode.store(mode); }

bool set_conv_implicit_im2col(bool enabled) { return g_implicit_im2col.exchange(enabled); }

bool set_conv_dx_as_forward(bool enabled) { return g_dx_as_forward.exchange(enabled); }

bool set_conv_dw_from_image(bool enabled) { return g_dw_from_image.exchange(enabled); }

int set_conv_shifted_rows(int mode) {
  if (mode < 0 || mode > 2) throw std::invalid_argument("shifted-rows mode must be 0, 1 or 2");
  return g_shifted_rows.exchange(mode);
}

int set_conv_dw_shifted_rows(int mode) {
  if (mode < 0 || mode > 2) throw std::invalid_argument("shifted-rows mode must be 0, 1 or 2");
  return g_dw_shifted_rows.exchange(mode);
}

}  // namespace pk

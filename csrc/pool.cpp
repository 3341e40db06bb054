// 2-D max, average and adaptive average pooling, forward and backward, on
// NCHW float32 viewed as N*C independent H x W planes.
//   max:      y[o] = max over window(o) of x, padding counts as -inf; a NaN in
//             the window wins (the last NaN, as PyTorch's CPU kernel);
//             indices[o] = h * W + w of the winner.  dx[indices[o]] += dy[o].
//   avg:      y[o] = sum over window(o) / (kh * kw)   (count_include_pad=True,
//             ceil_mode=False, so every window holds kh * kw positions counting
//             padding).  dx[i] += dy[o] / (kh * kw) for every window o holding i.
//   adaptive: window(o) spans rows floor(oh*H/OH) .. ceil((oh+1)*H/OH) (and so
//             for columns), divided by its own size; OH = OW = 1 is global
//             average pooling.
// Max-pool forward runs the output columns whose windows lie inside the
// input as one SIMD loop across columns (each column still scans its window
// row-major, so values and indices equal the scalar scan's, ties and NaN
// included); the few clipped edge columns run the scalar scan. Adaptive bins
// sum contiguous runs in 8 lanes, so a global average is not one serial chain.
// Forward passes split output rows (plane, oh) across threads; backward
// passes split whole planes, since neighbouring windows overlap within a plane
// and each plane's scatter must stay in one thread and one fixed order. Every
// output is computed by one thread in one order, so results do not depend on
// the thread count.
#include "pykernels/pool.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "pykernels/parallel.h"

namespace pk {
namespace {

// Window rows (or columns) [lo, hi) of output position o, clipped to the input.
struct Span {
  int64_t lo, hi;
};

inline Span window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t size) {
  const int64_t start = o * stride - pad;
  return {std::max<int64_t>(start, 0), std::min<int64_t>(start + kernel, size)};
}

inline Span adaptive_bin(int64_t o, int64_t out, int64_t size) {
  return {o * size / out, ((o + 1) * size + out - 1) / out};
}

// Output columns [lo, hi) whose windows lie wholly inside the input width.
Span interior_columns(const Pool2dShape& s) {
  const int64_t lo = std::min(s.out_w, (s.pad_w + s.stride_w - 1) / s.stride_w);
  const int64_t fit = s.in_w + s.pad_w - s.kernel_w;  // last valid window start + pad
  const int64_t hi = fit < 0 ? 0 : std::min(s.out_w, fit / s.stride_w + 1);
  return {lo, std::max(lo, hi)};
}

// One output column with its window clipped to the input: torch's scan,
// row-major, first strict maximum, a NaN always taken.
void max_pool_edge(const Pool2dShape& s, const float* plane, Span rows, int64_t ow, float* y,
                   int64_t* indices) {
  const Span cols = window(ow, s.stride_w, s.pad_w, s.kernel_w, s.in_w);
  float best = -std::numeric_limits<float>::infinity();
  int64_t best_index = rows.lo * s.in_w + cols.lo;
  for (int64_t h = rows.lo; h < rows.hi; ++h) {
    for (int64_t w = cols.lo; w < cols.hi; ++w) {
      const float v = plane[h * s.in_w + w];
      if (v > best || std::isnan(v)) {
        best = v;
        best_index = h * s.in_w + w;
      }
    }
  }
  y[ow] = best;
  indices[ow] = best_index;
}

// The interior columns of one output row, vectorized across output columns:
// every column still sees its window in torch's row-major order, so the
// chosen value and index are the same as the scalar scan's.
void max_pool_interior(const Pool2dShape& s, const float* plane, Span rows, Span cols, float* y,
                       int64_t* indices) {
  constexpr int64_t kBlock = 256;
  float best[kBlock];
  int32_t where[kBlock];  // h * W + w fits: planes are checked to hold < 2^31 values
  const int64_t sw = s.stride_w;
  for (int64_t b0 = cols.lo; b0 < cols.hi; b0 += kBlock) {
    const int64_t len = std::min(kBlock, cols.hi - b0);
    for (int64_t i = 0; i < len; ++i) {
      best[i] = -std::numeric_limits<float>::infinity();
      where[i] = static_cast<int32_t>(rows.lo * s.in_w + (b0 + i) * sw - s.pad_w);
    }
    for (int64_t h = rows.lo; h < rows.hi; ++h) {
      for (int64_t j = 0; j < s.kernel_w; ++j) {
        const int64_t offset = h * s.in_w + b0 * sw - s.pad_w + j;  // of column b0
        const float* src = plane + offset;
        const int32_t base = static_cast<int32_t>(offset);
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) {
          const float v = src[i * sw];
          const bool take = (v > best[i]) | (v != v);
          best[i] = take ? v : best[i];
          where[i] = take ? base + static_cast<int32_t>(i * sw) : where[i];
        }
      }
    }
    for (int64_t i = 0; i < len; ++i) {
      y[b0 + i] = best[i];
      indices[b0 + i] = where[i];
    }
  }
}

void max_pool_row(const Pool2dShape& s, const float* plane, int64_t oh, float* y,
                  int64_t* indices) {
  const Span rows = window(oh, s.stride_h, s.pad_h, s.kernel_h, s.in_h);
  const Span inner = interior_columns(s);
  for (int64_t ow = 0; ow < inner.lo; ++ow) max_pool_edge(s, plane, rows, ow, y, indices);
  max_pool_interior(s, plane, rows, inner, y, indices);
  for (int64_t ow = inner.hi; ow < s.out_w; ++ow) max_pool_edge(s, plane, rows, ow, y, indices);
}

// count_include_pad=True: the window counts padding cells but not what lies
// past the padding (a window can overhang it when stride does not divide).
int64_t avg_divisor(const Pool2dShape& s, int64_t oh, int64_t ow) {
  const int64_t start_h = oh * s.stride_h - s.pad_h, start_w = ow * s.stride_w - s.pad_w;
  return (std::min(start_h + s.kernel_h, s.in_h + s.pad_h) - start_h) *
         (std::min(start_w + s.kernel_w, s.in_w + s.pad_w) - start_w);
}

void avg_pool_row(const Pool2dShape& s, const float* plane, int64_t oh, float* y) {
  const Span rows = window(oh, s.stride_h, s.pad_h, s.kernel_h, s.in_h);
  for (int64_t ow = 0; ow < s.out_w; ++ow) {
    const Span cols = window(ow, s.stride_w, s.pad_w, s.kernel_w, s.in_w);
    const int64_t count = avg_divisor(s, oh, ow);
    float sum = 0.0f;
    for (int64_t h = rows.lo; h < rows.hi; ++h) {
      const float* row = plane + h * s.in_w;
      for (int64_t w = cols.lo; w < cols.hi; ++w) sum += row[w];
    }
    y[ow] = sum / static_cast<float>(count);
  }
}

// Sum of n contiguous floats in 8 independent lanes (a fixed order), so long
// bins such as a global average are not one serial chain of adds.
float contiguous_sum(const float* p, int64_t n) {
  constexpr int kLanes = 8;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (int j = 0; j < kLanes; ++j) acc[j] += p[i + j];
  }
  for (; i < n; ++i) acc[0] += p[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Global average (output 1 x 1): out[p] = mean of plane p, four planes at a
// time so that four independent 8-lane sums hide the add latency of planes
// too short (7 x 7 in ResNet) to hide it alone.
void global_average(const float* x, int64_t plane_size, int64_t first, int64_t last, float* y) {
  constexpr int kPlanes = 4, kLanes = 8;
  const float inv = 1.0f / static_cast<float>(plane_size);
  int64_t p = first;
  for (; p + kPlanes <= last; p += kPlanes) {
    const float* base = x + p * plane_size;
    float acc[kPlanes][kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= plane_size; i += kLanes) {
      for (int k = 0; k < kPlanes; ++k) {
#pragma omp simd
        for (int j = 0; j < kLanes; ++j) acc[k][j] += base[k * plane_size + i + j];
      }
    }
    for (int k = 0; k < kPlanes; ++k) {
      for (int64_t t = i; t < plane_size; ++t) acc[k][0] += base[k * plane_size + t];
      const float* a = acc[k];
      y[p + k] = (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))) * inv;
    }
  }
  for (; p < last; ++p) y[p] = contiguous_sum(x + p * plane_size, plane_size) * inv;
}

// row_bins / col_bins: the bins, computed once per call (the divisions they
// take would otherwise dominate small bins such as 7 x 7 -> 1 x 1).
void adaptive_avg_row(const Pool2dShape& s, const float* plane, Span rows,
                      const std::vector<Span>& col_bins, float* y) {
  for (int64_t ow = 0; ow < s.out_w; ++ow) {
    const Span cols = col_bins[ow];
    float sum = 0.0f;
    if (cols.lo == 0 && cols.hi == s.in_w) {  // whole rows: one contiguous run
      sum = contiguous_sum(plane + rows.lo * s.in_w, (rows.hi - rows.lo) * s.in_w);
    } else {
      for (int64_t h = rows.lo; h < rows.hi; ++h) {
        sum += contiguous_sum(plane + h * s.in_w + cols.lo, cols.hi - cols.lo);
      }
    }
    y[ow] = sum / static_cast<float>((rows.hi - rows.lo) * (cols.hi - cols.lo));
  }
}

std::vector<Span> bins(int64_t out, int64_t size) {
  std::vector<Span> result(out);
  for (int64_t o = 0; o < out; ++o) result[o] = adaptive_bin(o, out, size);
  return result;
}

// Runs row_fn(plane_in, oh, y_row, r) for every output row r = (plane, oh).
template <typename RowFn>
void for_each_output_row(const Pool2dShape& s, const float* x, float* y, RowFn row_fn) {
  const int64_t rows = s.planes * s.out_h;
  const int64_t plane_size = s.in_h * s.in_w;
  parallel_ranges(rows, s.planes * plane_size, [&](int64_t begin, int64_t end) {
    int64_t p = begin / s.out_h, oh = begin % s.out_h;
    for (int64_t r = begin; r < end; ++r) {
      row_fn(x + p * plane_size, oh, y + r * s.out_w, r);
      if (++oh == s.out_h) {
        oh = 0;
        ++p;
      }
    }
  });
}

// Runs plane_fn(p) for every plane, each plane wholly in one thread.
template <typename PlaneFn>
void for_each_plane(const Pool2dShape& s, PlaneFn plane_fn) {
  parallel_ranges(s.planes, s.planes * s.in_h * s.in_w, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) plane_fn(p);
  });
}

}  // namespace

void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices) {
  for_each_output_row(s, x, y, [&](const float* plane, int64_t oh, float* y_row, int64_t r) {
    max_pool_row(s, plane, oh, y_row, indices + r * s.out_w);
  });
}

int64_t max_pool2d_backward(const Pool2dShape& s, const float* dy, const int64_t* indices,
                            float* dx) {
  const int64_t plane_in = s.in_h * s.in_w, plane_out = s.out_h * s.out_w;
  int64_t bad = 0;
  for_each_plane(s, [&](int64_t p) {
    float* dx_plane = dx + p * plane_in;
    const float* dy_plane = dy + p * plane_out;
    const int64_t* idx = indices + p * plane_out;
    std::memset(dx_plane, 0, sizeof(float) * plane_in);
    int64_t plane_bad = 0;
    for (int64_t o = 0; o < plane_out; ++o) {
      const int64_t i = idx[o];
      if (i < 0 || i >= plane_in) {
        ++plane_bad;
        continue;
      }
      dx_plane[i] += dy_plane[o];
    }
    if (plane_bad) {
#pragma omp atomic
      bad += plane_bad;
    }
  });
  return bad;
}

void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) {
  for_each_output_row(s, x, y, [&](const float* plane, int64_t oh, float* y_row, int64_t) {
    avg_pool_row(s, plane, oh, y_row);
  });
}

void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx) {
  const int64_t plane_in = s.in_h * s.in_w, plane_out = s.out_h * s.out_w;
  for_each_plane(s, [&](int64_t p) {
    float* dx_plane = dx + p * plane_in;
    const float* dy_plane = dy + p * plane_out;
    std::memset(dx_plane, 0, sizeof(float) * plane_in);
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      const Span rows = window(oh, s.stride_h, s.pad_h, s.kernel_h, s.in_h);
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const Span cols = window(ow, s.stride_w, s.pad_w, s.kernel_w, s.in_w);
        const int64_t count = avg_divisor(s, oh, ow);
        const float g = dy_plane[oh * s.out_w + ow] / static_cast<float>(count);
        for (int64_t h = rows.lo; h < rows.hi; ++h) {
          float* row = dx_plane + h * s.in_w;
          for (int64_t w = cols.lo; w < cols.hi; ++w) row[w] += g;
        }
      }
    }
  });
}

void adaptive_avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y) {
  if (s.out_h == 1 && s.out_w == 1) {
    const int64_t plane_size = s.in_h * s.in_w;
    parallel_ranges(s.planes, s.planes * plane_size, [&](int64_t first, int64_t last) {
      global_average(x, plane_size, first, last, y);
    });
    return;
  }
  const std::vector<Span> row_bins = bins(s.out_h, s.in_h), col_bins = bins(s.out_w, s.in_w);
  for_each_output_row(s, x, y, [&](const float* plane, int64_t oh, float* y_row, int64_t) {
    adaptive_avg_row(s, plane, row_bins[oh], col_bins, y_row);
  });
}

void adaptive_avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx) {
  const std::vector<Span> row_bins = bins(s.out_h, s.in_h), col_bins = bins(s.out_w, s.in_w);
  const int64_t plane_in = s.in_h * s.in_w, plane_out = s.out_h * s.out_w;
  for_each_plane(s, [&](int64_t p) {
    float* dx_plane = dx + p * plane_in;
    const float* dy_plane = dy + p * plane_out;
    std::memset(dx_plane, 0, sizeof(float) * plane_in);
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      const Span rows = row_bins[oh];
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const Span cols = col_bins[ow];
        const float g = dy_plane[oh * s.out_w + ow] /
                        static_cast<float>((rows.hi - rows.lo) * (cols.hi - cols.lo));
        for (int64_t h = rows.lo; h < rows.hi; ++h) {
          float* row = dx_plane + h * s.in_w;
          for (int64_t w = cols.lo; w < cols.hi; ++w) row[w] += g;
        }
      }
    }
  });
}

}  // namespace pk

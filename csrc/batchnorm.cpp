// Batch normalization over x viewed as (N, C, S): NCHW has S = H * W, the
// (N, C) form of BatchNorm1d has S = 1. Statistics are per channel c over the
// n = N * S values x[:, c, :].
//   forward (train): mean = sum x / n, var = sum (x - mean)^2 / n (biased),
//       invstd = 1 / sqrt(var + eps), y = (x - mean) * invstd * w + b;
//       running_mean = (1 - m) running_mean + m mean,
//       running_var  = (1 - m) running_var  + m var * n / (n - 1) (unbiased).
//   forward (eval):  the same y from running_mean / running_var.
//   backward (train): with xhat = (x - mean) * invstd,
//       dbias = sum dy, dweight = sum dy * xhat,
//       dx = w * invstd * (dy - dbias / n - xhat * dweight / n);
//   backward (eval): mean and invstd are constants, dx = dy * w * invstd.
// Stability: the mean is a sum of x - x[0, c, 0] (a shift that keeps the
// float partial sums O(std), not O(|mean|)), the variance a second pass over
// (x - mean), and the mean enters (x - mean) as a float pair hi + lo, so that
// inputs like 1000 + N(0, 1) keep their low bits.
// Determinism: a channel's values are summed by one thread, rows in order
// n = 0, 1, ..., in 16 float lanes flushed into a double about every 512
// values (S = 1: straight down the batch in double), whatever the threads.
// Layout of the work: with S > 1 a thread takes whole channels and runs every
// pass of a channel back to back, so the channel (N * S values, a few hundred
// KiB for ResNet shapes) is read from memory once and re-read from L2. With
// S = 1 the channels of a row are contiguous: threads split the channels and
// each walks down the batch, vectorized across channels.
#include "pykernels/batchnorm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "pykernels/parallel.h"

namespace pk {
namespace {

constexpr int kLanes = 16;
constexpr int64_t kFlush = 512;  // values per lane block before adding into a double

// A float-valued mean held as hi + lo so x - mean loses nothing at float.
struct SplitMean {
  float hi, lo;
};

SplitMean split(double mean) {
  const float hi = static_cast<float>(mean);
  return {hi, static_cast<float>(mean - static_cast<double>(hi))};
}

// Two sums from one pass over the data.
struct Sums {
  double a = 0.0, b = 0.0;
};

// Float lane accumulators for two sums, added into doubles (in a fixed
// order) once about kFlush values have gone in.
struct LaneSums {
  float a[kLanes] = {}, b[kLanes] = {};
  int64_t pending = 0;
  Sums total;

  void flush() {
    float block_a = 0.0f, block_b = 0.0f;
    for (int j = 0; j < kLanes; ++j) {
      block_a += a[j];
      block_b += b[j];
      a[j] = b[j] = 0.0f;
    }
    total.a += block_a;
    total.b += block_b;
    pending = 0;
  }

  // Adds f(i) for i in [begin, end). Works on local copies of the lanes:
  // members could alias the float inputs, locals stay in registers.
  template <typename F>
  void add(int64_t begin, int64_t end, F f) {
    float la[kLanes], lb[kLanes];
    for (int j = 0; j < kLanes; ++j) {
      la[j] = a[j];
      lb[j] = b[j];
    }
    for (int64_t start = begin; start < end; start += kFlush) {
      const int64_t stop = std::min(end, start + kFlush);
      int64_t i = start;
      for (; i + kLanes <= stop; i += kLanes) {
#pragma omp simd
        for (int j = 0; j < kLanes; ++j) {
          float va, vb;
          f(i + j, va, vb);
          la[j] += va;
          lb[j] += vb;
        }
      }
      for (; i < stop; ++i) {
        float va, vb;
        f(i, va, vb);
        la[0] += va;
        lb[0] += vb;
      }
      pending += stop - start;
      if (pending >= kFlush) {
        for (int j = 0; j < kLanes; ++j) {
          a[j] = la[j];
          b[j] = lb[j];
        }
        flush();
        for (int j = 0; j < kLanes; ++j) la[j] = lb[j] = 0.0f;
      }
    }
    for (int j = 0; j < kLanes; ++j) {
      a[j] = la[j];
      b[j] = lb[j];
    }
  }
};

// Sum over the rows n = 0, 1, ... of channel c (S > 1) of f(offset), the
// lanes carried across rows so short rows (14 x 14) pay no reduction each.
template <typename F>
Sums channel_sum(const BatchNormShape& s, int64_t c, F f) {
  LaneSums lanes;
  for (int64_t n = 0; n < s.batch; ++n) {
    const int64_t row = (n * s.channels + c) * s.spatial;
    lanes.add(row, row + s.spatial, f);
  }
  lanes.flush();
  return lanes.total;
}

// Calls body(offset_begin, offset_end) for every row of channel c.
template <typename Body>
void channel_rows(const BatchNormShape& s, int64_t c, Body body) {
  for (int64_t n = 0; n < s.batch; ++n) {
    const int64_t row = (n * s.channels + c) * s.spatial;
    body(row, row + s.spatial);
  }
}

// Short rows (a 14 x 14 plane is 784 bytes) end before the hardware
// prefetcher has locked on, so the rows of the channel a thread does next are
// requested ahead while it works on this one.
void prefetch_channel(const BatchNormShape& s, int64_t c, const float* a, const float* b) {
  constexpr int64_t kMaxRow = 1024;  // longer rows stream well on their own
  constexpr int64_t kLine = 16;      // floats per 64-byte line
  if (c >= s.channels || s.spatial > kMaxRow) return;
  for (int64_t n = 0; n < s.batch; ++n) {
    const int64_t row = (n * s.channels + c) * s.spatial;
    for (int64_t i = 0; i < s.spatial; i += kLine) {
      __builtin_prefetch(a + row + i);
      __builtin_prefetch(b + row + i);
    }
  }
}

// Calls body(c) for every channel, channels split across threads.
template <typename Body>
void for_each_channel(const BatchNormShape& s, Body body) {
  parallel_ranges(s.channels, s.batch * s.channels * s.spatial, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) body(c);
  });
}

// S = 1: calls body(c_begin, c_end) once per thread, a block of channels.
template <typename Body>
void for_channel_blocks(const BatchNormShape& s, Body body) {
  parallel_ranges(s.channels, s.batch * s.channels, body);
}

// S = 1: out[c] = sum of f(n * C + c, c) down the batch, in double, for c in
// [c0, c1); one quantity per call keeps the loop a plain vectorizable add.
template <typename F>
void column_sum(const BatchNormShape& s, int64_t c0, int64_t c1, double* out, F f) {
  for (int64_t c = c0; c < c1; ++c) out[c] = 0.0;
  for (int64_t n = 0; n < s.batch; ++n) {
    const int64_t row = n * s.channels;
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) out[c] += static_cast<double>(f(row + c, c));
  }
}

// Per-channel constants of y = ((x - hi) - lo) * scale + shift.
struct Affine {
  std::vector<float> hi, lo, scale, shift;
  explicit Affine(int64_t c) : hi(c), lo(c), scale(c), shift(c) {}
  void set(int64_t c, SplitMean m, double invstd, const float* weight, const float* bias) {
    hi[c] = m.hi;
    lo[c] = m.lo;
    scale[c] = static_cast<float>(invstd * (weight ? weight[c] : 1.0f));
    shift[c] = bias ? bias[c] : 0.0f;
  }
};

void normalize_range(const float* x, float* y, int64_t begin, int64_t end, float hi, float lo,
                     float a, float b) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) y[i] = ((x[i] - hi) - lo) * a + b;
}

// S = 1: y = affine(x) for the channels [c0, c1) of every row.
void normalize_columns(const BatchNormShape& s, const float* x, float* y, const Affine& t,
                       int64_t c0, int64_t c1) {
  const float *hi = t.hi.data(), *lo = t.lo.data(), *a = t.scale.data(), *b = t.shift.data();
  for (int64_t n = 0; n < s.batch; ++n) {
    const float* xr = x + n * s.channels;
    float* yr = y + n * s.channels;
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) yr[c] = ((xr[c] - hi[c]) - lo[c]) * a[c] + b[c];
  }
}

// Statistics of channel c from its shifted sum and squared deviations:
// writes the saved and running statistics, returns the split mean and invstd.
struct TrainStats {
  const BatchNormShape& s;
  float* running_mean;
  float* running_var;
  float momentum, eps;
  float* save_mean;
  float* save_invstd;

  double finish(int64_t c, SplitMean mean, double squares) const {
    const int64_t count = s.batch * s.spatial;
    const double var = squares / count;
    const double full_mean = static_cast<double>(mean.hi) + mean.lo;
    const double invstd = 1.0 / std::sqrt(var + eps);
    save_mean[c] = static_cast<float>(full_mean);
    save_invstd[c] = static_cast<float>(invstd);
    if (running_mean) {
      running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] +
                                           momentum * full_mean);
    }
    if (running_var) {
      const double unbiased = count > 1 ? squares / (count - 1) : NAN;
      running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] +
                                          momentum * unbiased);
    }
    return invstd;
  }
};

}  // namespace

void batch_norm_forward_train(const BatchNormShape& s, const float* x, const float* weight,
                              const float* bias, float* running_mean, float* running_var,
                              float momentum, float eps, float* y, float* save_mean,
                              float* save_invstd) {
  const int64_t C = s.channels, S = s.spatial, count = s.batch * S;
  if (count == 0) return;
  const TrainStats stats{s, running_mean, running_var, momentum, eps, save_mean, save_invstd};
  if (S > 1) {
    for_each_channel(s, [&](int64_t c) {
      const float k = x[c * S];
      const Sums sum = channel_sum(s, c, [&](int64_t i, float& va, float& vb) {
        va = x[i] - k;
        vb = 0.0f;
      });
      const SplitMean mean = split(k + sum.a / count);
      const Sums sq = channel_sum(s, c, [&](int64_t i, float& va, float& vb) {
        const float d = (x[i] - mean.hi) - mean.lo;
        va = d * d;
        vb = 0.0f;
      });
      const double invstd = stats.finish(c, mean, sq.a);
      const float a = static_cast<float>(invstd * (weight ? weight[c] : 1.0f));
      const float b = bias ? bias[c] : 0.0f;
      channel_rows(s, c, [&](int64_t begin, int64_t end) {
        normalize_range(x, y, begin, end, mean.hi, mean.lo, a, b);
      });
    });
    return;
  }
  std::vector<double> sums(C), squares(C);
  std::vector<float> mean_hi(C), mean_lo(C);
  Affine affine(C);
  for_channel_blocks(s, [&](int64_t c0, int64_t c1) {
    column_sum(s, c0, c1, sums.data(), [&](int64_t i, int64_t c) { return x[i] - x[c]; });
    for (int64_t c = c0; c < c1; ++c) {
      const SplitMean m = split(x[c] + sums[c] / count);
      mean_hi[c] = m.hi;
      mean_lo[c] = m.lo;
    }
    column_sum(s, c0, c1, squares.data(), [&](int64_t i, int64_t c) {
      const float d = (x[i] - mean_hi[c]) - mean_lo[c];
      return d * d;
    });
    for (int64_t c = c0; c < c1; ++c) {
      const SplitMean m{mean_hi[c], mean_lo[c]};
      affine.set(c, m, stats.finish(c, m, squares[c]), weight, bias);
    }
    normalize_columns(s, x, y, affine, c0, c1);
  });
}

void batch_norm_forward_eval(const BatchNormShape& s, const float* x, const float* weight,
                             const float* bias, const float* running_mean,
                             const float* running_var, float eps, float* y, float* save_mean,
                             float* save_invstd) {
  const int64_t C = s.channels;
  Affine affine(C);
  for (int64_t c = 0; c < C; ++c) {
    const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
    affine.set(c, {running_mean[c], 0.0f}, invstd, weight, bias);
    save_mean[c] = running_mean[c];
    save_invstd[c] = static_cast<float>(invstd);
  }
  if (s.spatial > 1) {
    for_each_channel(s, [&](int64_t c) {
      channel_rows(s, c, [&](int64_t begin, int64_t end) {
        normalize_range(x, y, begin, end, affine.hi[c], affine.lo[c], affine.scale[c],
                        affine.shift[c]);
      });
    });
  } else {
    for_channel_blocks(s, [&](int64_t c0, int64_t c1) {
      normalize_columns(s, x, y, affine, c0, c1);
    });
  }
}

namespace {

// dx = a * dy + (k * (x - m) + b) per channel; k = b = 0 outside training.
struct GradTerms {
  float a, k, b;
};

GradTerms grad_terms(const BatchNormShape& s, int64_t c, const float* weight,
                     const float* save_invstd, bool training, Sums sums) {
  const int64_t count = s.batch * s.spatial;
  const double invstd = save_invstd[c];
  const double wi = invstd * (weight ? weight[c] : 1.0f);
  if (!training || count == 0) return {static_cast<float>(wi), 0.0f, 0.0f};
  return {static_cast<float>(wi), static_cast<float>(-wi * invstd * invstd * sums.b / count),
          static_cast<float>(-wi * sums.a / count)};
}

}  // namespace

void batch_norm_backward(const BatchNormShape& s, const float* dy, const float* x,
                         const float* weight, const float* save_mean, const float* save_invstd,
                         bool training, float* dx, float* dweight, float* dbias) {
  const int64_t C = s.channels;
  const bool want_sums = training || dweight || dbias;
  // a: sum dy, b: sum dy * (x - mean)
  const auto grad_sums = [&](int64_t i, int64_t c, float& va, float& vb) {
    va = dy[i];
    vb = dy[i] * (x[i] - save_mean[c]);
  };
  const auto store_params = [&](int64_t c, Sums sums) {
    if (dbias) dbias[c] = static_cast<float>(sums.a);
    if (dweight) dweight[c] = static_cast<float>(sums.b * save_invstd[c]);
  };
  if (s.spatial > 1) {
    for_each_channel(s, [&](int64_t c) {
      prefetch_channel(s, c + 1, dy, x);
      Sums sums;
      if (want_sums) {
        sums = channel_sum(s, c, [&](int64_t i, float& va, float& vb) { grad_sums(i, c, va, vb); });
      }
      store_params(c, sums);
      const GradTerms t = grad_terms(s, c, weight, save_invstd, training, sums);
      const float m = save_mean[c];
      channel_rows(s, c, [&](int64_t begin, int64_t end) {
        if (training) {
#pragma omp simd
          for (int64_t i = begin; i < end; ++i) dx[i] = t.a * dy[i] + (t.k * (x[i] - m) + t.b);
        } else {  // x does not enter: an inf in x must not turn dx into NaN
#pragma omp simd
          for (int64_t i = begin; i < end; ++i) dx[i] = t.a * dy[i];
        }
      });
    });
    return;
  }
  std::vector<double> sum_dy(C, 0.0), sum_dy_xmu(C, 0.0);
  std::vector<float> ta(C), tk(C), tb(C);
  for_channel_blocks(s, [&](int64_t c0, int64_t c1) {
    if (want_sums) {
      column_sum(s, c0, c1, sum_dy.data(), [&](int64_t i, int64_t) { return dy[i]; });
      column_sum(s, c0, c1, sum_dy_xmu.data(),
                 [&](int64_t i, int64_t c) { return dy[i] * (x[i] - save_mean[c]); });
    }
    for (int64_t c = c0; c < c1; ++c) {
      Sums sums;
      sums.a = sum_dy[c];
      sums.b = sum_dy_xmu[c];
      store_params(c, sums);
      const GradTerms t = grad_terms(s, c, weight, save_invstd, training, sums);
      ta[c] = t.a;
      tk[c] = t.k;
      tb[c] = t.b;
    }
    for (int64_t n = 0; n < s.batch; ++n) {
      const int64_t row = n * C;
      if (training) {
#pragma omp simd
        for (int64_t c = c0; c < c1; ++c) {
          dx[row + c] = ta[c] * dy[row + c] + (tk[c] * (x[row + c] - save_mean[c]) + tb[c]);
        }
      } else {
#pragma omp simd
        for (int64_t c = c0; c < c1; ++c) dx[row + c] = ta[c] * dy[row + c];
      }
    }
  });
}

}  // namespace pk

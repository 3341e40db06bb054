// Softmax cross-entropy over the rows of (N, C) logits, mean over rows.
//   forward:  m = max_j z_j, s = sum_j exp(z_j - m), probs_j = exp(z_j - m) / s,
//             loss_i = (m - z_label) + log s   (in double: no overflow for any
//             finite logits, no cancellation in m - z_label),
//             loss = sum_i loss_i / N, summed in row order.
//   backward: dlogits = (probs - onehot(label)) / N.
// Rows are independent and split across threads; the row losses are added in
// one fixed order afterwards, so the loss does not depend on the thread count.
#include "pykernels/loss.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "pykernels/parallel.h"

namespace pk {
namespace {

// Softmax rows cost a few exps per element: worth a thread at less work than
// a plain copy.
constexpr int64_t kMinRowWork = 1 << 13;

int64_t first_bad_label(const int64_t* labels, int64_t n, int64_t classes) {
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= classes) return i;
  }
  return -1;
}

// probs row = softmax(z); returns that row's loss.
double softmax_row(const float* z, int64_t classes, int64_t label, float* probs) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < classes; ++j) m = std::max(m, z[j]);
  double s = 0.0;
  for (int64_t j = 0; j < classes; ++j) {
    const float e = std::exp(z[j] - m);
    probs[j] = e;
    s += e;
  }
  const float inv = static_cast<float>(1.0 / s);
  for (int64_t j = 0; j < classes; ++j) probs[j] *= inv;
  return (static_cast<double>(m) - static_cast<double>(z[label])) + std::log(s);
}

}  // namespace

double cross_entropy_forward(const float* logits, const int64_t* labels, int64_t n,
                             int64_t classes, float* probs, int64_t* bad_label) {
  *bad_label = first_bad_label(labels, n, classes);
  if (*bad_label >= 0) return NAN;
  if (n == 0) return NAN;
  std::vector<double> row_loss(n);
  parallel_ranges(n, n * classes, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      row_loss[i] = softmax_row(logits + i * classes, classes, labels[i], probs + i * classes);
    }
  }, kMinRowWork);
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += row_loss[i];
  return total / n;
}

void cross_entropy_backward(const float* probs, const int64_t* labels, int64_t n,
                            int64_t classes, float* dlogits, int64_t* bad_label) {
  *bad_label = first_bad_label(labels, n, classes);
  if (*bad_label >= 0 || n == 0) return;
  const float inv_n = static_cast<float>(1.0 / n);
  parallel_ranges(n, n * classes, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* p = probs + i * classes;
      float* d = dlogits + i * classes;
#pragma omp simd
      for (int64_t j = 0; j < classes; ++j) d[j] = p[j] * inv_n;
      d[labels[i]] = (p[labels[i]] - 1.0f) * inv_n;
    }
  }, kMinRowWork);
}

}  // namespace pk

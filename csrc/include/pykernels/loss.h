#pragma once

#include <cstdint>

namespace pk {

// Softmax cross-entropy over rows of (n, classes) logits, mean over rows.
// probs = softmax(logits) row-wise; returns the mean loss (NaN for n == 0).
// Labels outside [0, classes) are not read: *bad_label gets the first such
// row (or -1) and the result is then meaningless.
double cross_entropy_forward(const float* logits, const int64_t* labels, int64_t n,
                             int64_t classes, float* probs, int64_t* bad_label);

// dlogits = (probs - onehot(labels)) / n; same label contract.
void cross_entropy_backward(const float* probs, const int64_t* labels, int64_t n,
                            int64_t classes, float* dlogits, int64_t* bad_label);

}  // namespace pk

// LSTM pointwise kernels compiled for baseline x86-64 (SSE2, 4 lanes); the math is in
// lstm_pointwise.inc, shared by every ISA.
#include "lstm_pointwise.inc"
#include "pykernels/lstm.h"

namespace pk::lstm_detail {
const Kernels kGeneric = {&forward_rows, &backward_rows};
}  // namespace pk::lstm_detail

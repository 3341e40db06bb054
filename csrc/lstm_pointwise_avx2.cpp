// LSTM pointwise kernels compiled for -mavx2 -mfma (8 lanes); the math is in
// lstm_pointwise.inc, shared by every ISA.
#include "lstm_pointwise.inc"
#include "pykernels/lstm.h"

namespace pk::lstm_detail {
const Kernels kAvx2 = {&forward_rows, &backward_rows};
}  // namespace pk::lstm_detail

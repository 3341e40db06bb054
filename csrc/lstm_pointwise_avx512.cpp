// LSTM pointwise kernels compiled for -mavx512f (16 lanes); the math is in
// lstm_pointwise.inc, shared by every ISA.
#include "lstm_pointwise.inc"
#include "pykernels/lstm.h"

namespace pk::lstm_detail {
const Kernels kAvx512 = {&forward_rows, &backward_rows};
}  // namespace pk::lstm_detail

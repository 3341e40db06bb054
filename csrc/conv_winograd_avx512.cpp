// The CPU's Winograd tile transforms compiled for -mavx512f, 16 lanes; the code is in
// conv_winograd_lanes.inc, shared by every ISA.
#define PK_LANES 16
#include "conv_winograd_lanes.inc"

namespace pk::winograd_detail {
const Kernels kAvx512 = {&input, &grad_output, &output, &weights, &weight_grad};
}  // namespace pk::winograd_detail

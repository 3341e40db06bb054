// The CPU's Winograd tile transforms compiled for -mavx2 -mfma, 8 lanes; the code is in
// conv_winograd_lanes.inc, shared by every ISA.
#define PK_LANES 8
#include "conv_winograd_lanes.inc"

namespace pk::winograd_detail {
const Kernels kAvx2 = {&input, &grad_output, &output, &weights, &weight_grad};
}  // namespace pk::winograd_detail

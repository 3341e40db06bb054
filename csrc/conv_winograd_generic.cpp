// The CPU's Winograd tile transforms compiled for baseline x86-64 (SSE2, 4
// lanes); the code is in conv_winograd_lanes.inc, shared by every ISA.
#define PK_LANES 4
#include "conv_winograd_lanes.inc"

namespace pk::winograd_detail {
const Kernels kGeneric = {&input, &grad_output, &output, &weights, &weight_grad};
}  // namespace pk::winograd_detail

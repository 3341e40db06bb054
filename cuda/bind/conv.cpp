#include "bind/common.h"

namespace pk::cuda::bind {

// Filled in with the conv kernels' launch wrappers (cuda/conv.cu).
void register_conv(py::module_&) {}

}  // namespace pk::cuda::bind

#include "bind/common.h"

namespace pk::cuda::bind {

// Filled in with the loss kernels' launch wrappers (cuda/loss.cu).
void register_loss(py::module_&) {}

}  // namespace pk::cuda::bind

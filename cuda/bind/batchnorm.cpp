#include "bind/common.h"

namespace pk::cuda::bind {

// Filled in with the batchnorm kernels' launch wrappers (cuda/batchnorm.cu).
void register_batchnorm(py::module_&) {}

}  // namespace pk::cuda::bind

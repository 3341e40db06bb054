#include "bind/common.h"

namespace pk::cuda::bind {

// Filled in with the pool kernels' launch wrappers (cuda/pool.cu).
void register_pool(py::module_&) {}

}  // namespace pk::cuda::bind

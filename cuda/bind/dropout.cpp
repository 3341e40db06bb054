#include "bind/common.h"

namespace pk::cuda::bind {

// Filled in with the dropout kernels' launch wrappers (cuda/dropout.cu).
void register_dropout(py::module_&) {}

}  // namespace pk::cuda::bind

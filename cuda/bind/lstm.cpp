#include "bind/common.h"

namespace pk::cuda::bind {

// Filled in with the lstm kernels' launch wrappers (cuda/lstm.cu).
void register_lstm(py::module_&) {}

}  // namespace pk::cuda::bind

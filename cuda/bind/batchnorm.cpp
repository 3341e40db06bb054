// Batch-norm bindings: raw device pointers (0 for an absent optional array),
// the (batch, channels, spatial) view of x, a scratch buffer of
// batch_norm_workspace_bytes(...) bytes and the stream. Sizes and the
// pointers that must be present are checked here, before any launch.
#include <string>

#include "batchnorm.cuh"
#include "bind/common.h"

namespace pk::cuda::bind {
namespace {

BatchNormShape checked_shape(int64_t batch, int64_t channels, int64_t spatial) {
  if (batch < 0 || channels < 0 || spatial < 0) {
    throw std::invalid_argument("batch_norm: sizes must be >= 0, got batch=" +
                                std::to_string(batch) + " channels=" + std::to_string(channels) +
                                " spatial=" + std::to_string(spatial));
  }
  const BatchNormShape s{batch, channels, spatial};
  // Tiles are indexed by a 1-D grid of at most 2^31 - 1 blocks.
  if (batch_norm_workspace_bytes(s) / int64_t(sizeof(double)) >= (int64_t(1) << 31)) {
    throw std::invalid_argument("batch_norm: tensor too large for one launch");
  }
  return s;
}

void check_workspace(const BatchNormShape& s, std::uintptr_t workspace,
                     int64_t workspace_bytes) {
  const int64_t need = batch_norm_workspace_bytes(s);
  if (workspace_bytes < need) {
    throw std::invalid_argument("batch_norm: workspace has " + std::to_string(workspace_bytes) +
                                " bytes, needs " + std::to_string(need));
  }
  if (need > 0 && (workspace == 0 || workspace % alignof(double) != 0)) {
    throw std::invalid_argument("batch_norm: workspace must be a non-null 8-byte aligned buffer");
  }
}

void forward(std::uintptr_t x, std::uintptr_t weight, std::uintptr_t bias,
             std::uintptr_t running_mean, std::uintptr_t running_var, bool training,
             float momentum, float eps, std::uintptr_t y, std::uintptr_t save_mean,
             std::uintptr_t save_invstd, std::uintptr_t workspace, int64_t workspace_bytes,
             int64_t batch, int64_t channels, int64_t spatial, std::uintptr_t stream) {
  const BatchNormShape s = checked_shape(batch, channels, spatial);
  const int64_t count = batch * spatial;
  check_pointers(batch * channels * spatial, {x, y});
  check_pointers(channels, {save_mean, save_invstd});
  check_workspace(s, workspace, workspace_bytes);
  if (!training && channels > 0 && (running_mean == 0 || running_var == 0)) {
    throw std::invalid_argument("eval mode needs running_mean and running_var");
  }
  if (training && count == 1) {
    throw std::invalid_argument("training needs more than 1 value per channel");
  }
  py::gil_scoped_release release;
  if (training) {
    batch_norm_forward_train(s, cptr(x), cptr(weight), cptr(bias), mptr(running_mean),
                             mptr(running_var), momentum, eps, mptr(y), mptr(save_mean),
                             mptr(save_invstd), reinterpret_cast<void*>(workspace),
                             as_stream(stream));
  } else {
    batch_norm_forward_eval(s, cptr(x), cptr(weight), cptr(bias), cptr(running_mean),
                            cptr(running_var), eps, mptr(y), mptr(save_mean), mptr(save_invstd),
                            reinterpret_cast<void*>(workspace), as_stream(stream));
  }
}

void backward(std::uintptr_t dy, std::uintptr_t x, std::uintptr_t weight,
              std::uintptr_t save_mean, std::uintptr_t save_invstd, bool training,
              std::uintptr_t dx, std::uintptr_t dweight, std::uintptr_t dbias,
              std::uintptr_t workspace, int64_t workspace_bytes, int64_t batch, int64_t channels,
              int64_t spatial, std::uintptr_t stream) {
  const BatchNormShape s = checked_shape(batch, channels, spatial);
  check_pointers(batch * channels * spatial, {dy, x, dx});
  check_pointers(channels, {save_mean, save_invstd});
  check_workspace(s, workspace, workspace_bytes);
  py::gil_scoped_release release;
  batch_norm_backward(s, cptr(dy), cptr(x), cptr(weight), cptr(save_mean), cptr(save_invstd),
                      training, mptr(dx), mptr(dweight), mptr(dbias),
                      reinterpret_cast<void*>(workspace), as_stream(stream));
}

}  // namespace

void register_batchnorm(py::module_& m) {
  m.def(
      "batch_norm_workspace_bytes",
      [](int64_t batch, int64_t channels, int64_t spatial) {
        return batch_norm_workspace_bytes(checked_shape(batch, channels, spatial));
      },
      py::arg("batch"), py::arg("channels"), py::arg("spatial"));
  m.def("batch_norm_forward", &forward, py::arg("x"), py::arg("weight"), py::arg("bias"),
        py::arg("running_mean"), py::arg("running_var"), py::arg("training"),
        py::arg("momentum"), py::arg("eps"), py::arg("y"), py::arg("save_mean"),
        py::arg("save_invstd"), py::arg("workspace"), py::arg("workspace_bytes"),
        py::arg("batch"), py::arg("channels"), py::arg("spatial"), py::arg("stream"));
  m.def("batch_norm_backward", &backward, py::arg("dy"), py::arg("x"), py::arg("weight"),
        py::arg("save_mean"), py::arg("save_invstd"), py::arg("training"), py::arg("dx"),
        py::arg("dweight"), py::arg("dbias"), py::arg("workspace"), py::arg("workspace_bytes"),
        py::arg("batch"), py::arg("channels"), py::arg("spatial"), py::arg("stream"));
}

}  // namespace pk::cuda::bind

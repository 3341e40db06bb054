// Batch-norm bindings. x is (N, C, *) float32 C-contiguous; the per-channel
// arrays (weight, bias, running stats, saved mean / invstd, dweight, dbias)
// are (C,) float32 C-contiguous, and weight, bias, the running stats, dweight
// and dbias may be None. Each is re-checked here against x's shape.
#include <string>

#include "common.h"
#include "pykernels/batchnorm.h"

namespace pk::bind {
namespace {

BatchNormShape bn_shape(const py::array& x) {
  if (x.ndim() < 2) {
    throw std::invalid_argument("x must have at least 2 dimensions (N, C, ...), got " +
                                std::to_string(x.ndim()));
  }
  int64_t spatial = 1;
  for (py::ssize_t d = 2; d < x.ndim(); ++d) spatial *= x.shape(d);
  return {x.shape(0), x.shape(1), spatial};
}

void require_channels(const py::array& a, const char* name, int64_t channels) {
  if (a.ndim() != 1 || a.shape(0) != channels) {
    throw std::invalid_argument(std::string(name) + " must have shape (" +
                                std::to_string(channels) + ",)");
  }
}

const float* optional_in(const py::object& o, const char* name, int64_t channels) {
  if (o.is_none()) return nullptr;
  const py::array a = o.cast<py::array>();
  require_channels(a, name, channels);
  return in_ptr(a, name);
}

float* optional_out(const py::object& o, const char* name, int64_t channels) {
  if (o.is_none()) return nullptr;
  py::array a = o.cast<py::array>();
  require_channels(a, name, channels);
  return out_ptr(a, name);
}

float* channel_out(py::array& a, const char* name, int64_t channels) {
  require_channels(a, name, channels);
  return out_ptr(a, name);
}

void require_same_shape(const py::array& a, const py::array& b, const char* a_name,
                        const char* b_name) {
  bool same = a.ndim() == b.ndim();
  for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == b.shape(d);
  if (!same) {
    throw std::invalid_argument(std::string(a_name) + " and " + b_name +
                                " must have the same shape");
  }
}

}  // namespace

void register_batchnorm(py::module_& m) {
  m.def(
      "batch_norm_forward",
      [](const py::array& x, const py::object& weight, const py::object& bias,
         const py::object& running_mean, const py::object& running_var, bool training,
         float momentum, float eps, py::array& y, py::array& save_mean, py::array& save_invstd) {
        const BatchNormShape s = bn_shape(x);
        const int64_t C = s.channels;
        require_same_shape(x, y, "x", "y");
        const float* xp = in_ptr(x, "x");
        float* yp = out_ptr(y, "y");
        const float* wp = optional_in(weight, "weight", C);
        const float* bp = optional_in(bias, "bias", C);
        float* rmp = optional_out(running_mean, "running_mean", C);
        float* rvp = optional_out(running_var, "running_var", C);
        float* smp = channel_out(save_mean, "save_mean", C);
        float* sip = channel_out(save_invstd, "save_invstd", C);
        if (!training && (!rmp || !rvp)) {
          throw std::invalid_argument("eval mode needs running_mean and running_var");
        }
        if (training && s.batch * s.spatial == 1) {
          throw std::invalid_argument("training needs more than 1 value per channel");
        }
        py::gil_scoped_release release;
        if (training) {
          batch_norm_forward_train(s, xp, wp, bp, rmp, rvp, momentum, eps, yp, smp, sip);
        } else {
          batch_norm_forward_eval(s, xp, wp, bp, rmp, rvp, eps, yp, smp, sip);
        }
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"),
      py::arg("running_var"), py::arg("training"), py::arg("momentum"), py::arg("eps"),
      py::arg("y"), py::arg("save_mean"), py::arg("save_invstd"));
  m.def(
      "batch_norm_backward",
      [](const py::array& dy, const py::array& x, const py::object& weight,
         const py::array& save_mean, const py::array& save_invstd, bool training, py::array& dx,
         const py::object& dweight, const py::object& dbias) {
        const BatchNormShape s = bn_shape(x);
        const int64_t C = s.channels;
        require_same_shape(x, dy, "x", "dy");
        require_same_shape(x, dx, "x", "dx");
        const float* dyp = in_ptr(dy, "dy");
        const float* xp = in_ptr(x, "x");
        float* dxp = out_ptr(dx, "dx");
        const float* wp = optional_in(weight, "weight", C);
        require_channels(save_mean, "save_mean", C);
        require_channels(save_invstd, "save_invstd", C);
        const float* smp = in_ptr(save_mean, "save_mean");
        const float* sip = in_ptr(save_invstd, "save_invstd");
        float* dwp = optional_out(dweight, "dweight", C);
        float* dbp = optional_out(dbias, "dbias", C);
        py::gil_scoped_release release;
        batch_norm_backward(s, dyp, xp, wp, smp, sip, training, dxp, dwp, dbp);
      },
      py::arg("dy"), py::arg("x"), py::arg("weight"), py::arg("save_mean"),
      py::arg("save_invstd"), py::arg("training"), py::arg("dx"), py::arg("dweight"),
      py::arg("dbias"));
}

}  // namespace pk::bind

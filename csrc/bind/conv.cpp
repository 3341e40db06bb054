// conv2d / im2col bindings. pykernels/_functional/conv.py validates with
// friendly messages and allocates; here every array's shape is re-derived and
// checked against the geometry so a direct call can never make a kernel step
// outside a buffer.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/stl.h>

#include "common.h"
#include "pykernels/conv.h"
#include "pykernels/winograd.h"

namespace pk::bind {
namespace {

using Pair = std::pair<int64_t, int64_t>;

std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

void require_shape(const py::array& a, const char* name, std::initializer_list<int64_t> want) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(want.size());
  std::string expected = "(";
  int d = 0;
  for (int64_t v : want) {
    if (ok && a.shape(d) != v) ok = false;
    expected += (d ? ", " : "") + std::to_string(v);
    ++d;
  }
  expected += want.size() == 1 ? ",)" : ")";
  if (!ok) {
    throw std::invalid_argument(std::string(name) + " has shape " + shape_of(a) + ", expected " +
                                expected);
  }
}

void require_4d(const py::array& a, const char* name) {
  if (a.ndim() != 4) {
    throw std::invalid_argument(std::string(name) + " must be 4-D, got shape " + shape_of(a));
  }
}

ConvShape conv_shape(const py::array& x, const py::array& weight, Pair stride, Pair padding,
                     Pair dilation, int64_t groups) {
  require_4d(x, "x");
  require_4d(weight, "weight");
  ConvShape s;
  s.set_input(x.shape(0), x.shape(1), x.shape(2), x.shape(3));
  s.set_window({weight.shape(2), weight.shape(3)}, stride, padding, dilation);
  s.o = weight.shape(0), s.groups = groups;
  s.finish();
  if (weight.shape(1) * groups != s.c) {
    throw std::invalid_argument("weight " + shape_of(weight) + " needs " +
                                std::to_string(weight.shape(1) * groups) +
                                " input channels with groups=" + std::to_string(groups) +
                                ", x " + shape_of(x) + " has " + std::to_string(s.c));
  }
  return s;
}

ConvShape unfold_shape(const std::vector<int64_t>& x_shape, Pair kernel, Pair stride,
                       Pair padding, Pair dilation) {
  if (x_shape.size() != 4) throw std::invalid_argument("input shape must have 4 dimensions");
  ConvShape s;
  s.set_input(x_shape[0], x_shape[1], x_shape[2], x_shape[3]);
  s.set_window(kernel, stride, padding, dilation);
  s.finish();
  return s;
}

float* optional_out(std::optional<py::array>& a, const char* name,
                    std::initializer_list<int64_t> shape) {
  if (!a) return nullptr;
  require_shape(*a, name, shape);
  return out_ptr(*a, name);
}

// Which CPU algorithm runs `s` for the Python layer's algo name.
bool is_winograd(const std::string& algo, const ConvShape& s) {
  if (algo == "winograd") return true;
  if (algo == "im2col") return false;
  if (algo == "auto") return conv2d_winograd_preferred(s);
  throw std::invalid_argument("algo must be 'auto', 'im2col' or 'winograd', got '" + algo + "'");
}

void forward(const py::array& x, const py::array& weight, const std::optional<py::array>& bias,
             py::array& y, Pair stride, Pair padding, Pair dilation, int64_t groups,
             const std::string& algo) {
  const ConvShape s = conv_shape(x, weight, stride, padding, dilation, groups);
  const float* bp = nullptr;
  if (bias) {
    require_shape(*bias, "bias", {s.o});
    bp = in_ptr(*bias, "bias");
  }
  require_shape(y, "y", {s.n, s.o, s.oh, s.ow});
  const float* xp = in_ptr(x, "x");
  const float* wp = in_ptr(weight, "weight");
  float* yp = out_ptr(y, "y");
  const bool winograd = is_winograd(algo, s);
  py::gil_scoped_release release;
  if (winograd) {
    conv2d_winograd_forward(s, xp, wp, bp, yp);
  } else {
    conv2d_forward(s, xp, wp, bp, yp);
  }
}

void backward(const py::array& dy, const py::array& x, const py::array& weight,
              std::optional<py::array> dx, std::optional<py::array> dweight,
              std::optional<py::array> dbias, Pair stride, Pair padding, Pair dilation,
              int64_t groups, const std::string& algo) {
  const ConvShape s = conv_shape(x, weight, stride, padding, dilation, groups);
  require_shape(dy, "dy", {s.n, s.o, s.oh, s.ow});
  const float* dyp = in_ptr(dy, "dy");
  const float* xp = in_ptr(x, "x");
  const float* wp = in_ptr(weight, "weight");
  float* dxp = optional_out(dx, "dx", {s.n, s.c, s.h, s.w});
  float* dwp = optional_out(dweight, "dweight", {s.o, s.c_per_group(), s.kh, s.kw});
  float* dbp = optional_out(dbias, "dbias", {s.o});
  const bool winograd = is_winograd(algo, s);
  py::gil_scoped_release release;
  if (winograd) {
    conv2d_winograd_backward(s, dyp, xp, wp, dxp, dwp, dbp);
  } else {
    conv2d_backward(s, dyp, xp, wp, dxp, dwp, dbp);
  }
}

// The shape of an unfold/fold pair: x (N, C, H, W) against cols (N, C*kh*kw, P).
ConvShape checked_unfold_shape(const py::array& x, const py::array& cols, Pair kernel,
                               Pair stride, Pair padding, Pair dilation) {
  require_4d(x, "x");
  const ConvShape s =
      unfold_shape({x.shape(0), x.shape(1), x.shape(2), x.shape(3)}, kernel, stride, padding,
                   dilation);
  require_shape(cols, "cols", {s.n, s.col_rows(), s.out_plane()});
  return s;
}

void unfold(const py::array& x, py::array& cols, Pair kernel, Pair stride, Pair padding,
            Pair dilation) {
  const ConvShape s = checked_unfold_shape(x, cols, kernel, stride, padding, dilation);
  const float* xp = in_ptr(x, "x");
  float* cp = out_ptr(cols, "cols");
  py::gil_scoped_release release;
  im2col(s, xp, cp);
}

void fold(const py::array& cols, py::array& x, Pair kernel, Pair stride, Pair padding,
          Pair dilation) {
  const ConvShape s = checked_unfold_shape(x, cols, kernel, stride, padding, dilation);
  const float* cp = in_ptr(cols, "cols");
  float* xp = out_ptr(x, "x");
  py::gil_scoped_release release;
  col2im(s, cp, xp);
}

int64_t workspace_floats(const std::vector<int64_t>& x_shape,
                         const std::vector<int64_t>& w_shape, Pair stride, Pair padding,
                         Pair dilation, int64_t groups, int threads, bool backward) {
  if (w_shape.size() != 4) throw std::invalid_argument("weight shape must have 4 dimensions");
  ConvShape s = unfold_shape(x_shape, {w_shape[2], w_shape[3]}, stride, padding, dilation);
  s.o = w_shape[0];
  s.groups = groups;
  s.finish();
  return backward ? conv2d_backward_workspace(s, threads) : conv2d_forward_workspace(s, threads);
}

ConvShape shape_of(const std::vector<int64_t>& x_shape, const std::vector<int64_t>& w_shape,
                   Pair stride, Pair padding, Pair dilation, int64_t groups) {
  if (x_shape.size() != 4 || w_shape.size() != 4) {
    throw std::invalid_argument("x_shape and w_shape must have 4 dimensions");
  }
  ConvShape s;
  s.set_input(x_shape[0], x_shape[1], x_shape[2], x_shape[3]);
  s.set_window({w_shape[2], w_shape[3]}, stride, padding, dilation);
  s.o = w_shape[0], s.groups = groups;
  s.finish();
  return s;
}

}  // namespace

void register_conv(py::module_& m) {
  m.def("conv2d_forward", &forward, py::arg("x"), py::arg("weight"), py::arg("bias"),
        py::arg("y"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("algo") = "auto",
        "y = conv2d(x, weight, bias) into a preallocated array");
  m.def("conv2d_backward", &backward, py::arg("dy"), py::arg("x"), py::arg("weight"),
        py::arg("dx"), py::arg("dweight"), py::arg("dbias"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("algo") = "auto",
        "dx, dweight, dbias of conv2d into preallocated arrays (None skips one)");
  m.def("im2col", &unfold, py::arg("x"), py::arg("cols"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        "cols = unfold(x) into a preallocated (N, C*kh*kw, OH*OW) array");
  m.def("col2im", &fold, py::arg("cols"), py::arg("x"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        "x = fold(cols) (overlaps summed) into a preallocated (N, C, H, W) array");
  m.def("conv2d_workspace_floats", &workspace_floats, py::arg("x_shape"), py::arg("w_shape"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("threads"), py::arg("backward"),
        "Largest scratch (floats) conv2d forward or backward allocates for these shapes");
  m.def(
      "conv2d_winograd_workspace_floats",
      [](const std::vector<int64_t>& x_shape, const std::vector<int64_t>& w_shape, Pair stride,
         Pair padding, Pair dilation, int64_t groups) {
        return conv2d_winograd_workspace(
            shape_of(x_shape, w_shape, stride, padding, dilation, groups));
      },
      py::arg("x_shape"), py::arg("w_shape"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("groups"),
      "Scratch (floats) conv2d's algo='winograd' allocates for these shapes");
  m.def(
      "conv2d_algo_name",
      [](const std::vector<int64_t>& x_shape, const std::vector<int64_t>& w_shape, Pair stride,
         Pair padding, Pair dilation, int64_t groups, const std::string& algo) {
        const ConvShape s = shape_of(x_shape, w_shape, stride, padding, dilation, groups);
        if (!is_winograd(algo, s)) return "im2col";
        const std::string why = winograd::unsupported(s);
        if (!why.empty()) throw std::invalid_argument(why);
        return "winograd";
      },
      py::arg("x_shape"), py::arg("w_shape"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("groups"), py::arg("algo") = "auto",
      "the algorithm `algo` ('auto', 'im2col', 'winograd') runs this convolution with");
  m.def("winograd_matrices", &winograd::matrices, py::arg("kernel_size"),
        "[A^T, G, B^T] of F(4x4, r x r) as compiled in (pykernels/winograd.h), each "
        "row-major and flattened");
  m.def(
      "conv_parallel_mode", [](int mode) {
        if (mode < 0 || mode > 2) throw std::invalid_argument("mode must be 0, 1 or 2");
        set_conv_parallel_mode(mode);
      },
      py::arg("mode"), "0 = auto, 1 = threads over images, 2 = images in sequence");
  m.def("conv_winograd_points_mode", &set_conv_winograd_points_mode, py::arg("mode"),
        "Test hook: 0 = Winograd's products shared by its rule, 1 = whole products per "
        "thread, 2 = each product over all threads; returns the previous mode");
  m.def("conv_winograd_workspace_cap", &set_conv_winograd_workspace_cap, py::arg("floats"),
        "Test hook: the cap on a CPU Winograd chunk's buffers in floats (default 2^23; the "
        "transformed weights come on top); returns the previous cap");
  m.def("conv_implicit_im2col", &set_conv_implicit_im2col, py::arg("enabled"),
        "Forward and weight gradient pack stride-1 same-width convs' columns from the image "
        "(True, the default) or materialise im2col (False); returns the previous setting");
  m.def("conv_dx_as_forward", &set_conv_dx_as_forward, py::arg("enabled"),
        "Backward-data of stride-1 convs as a forward conv of dy with the flipped kernel "
        "(True, the default) or W^T @ dy and col2im (False); returns the previous setting");
  m.def("conv_dw_from_image", &set_conv_dw_from_image, py::arg("enabled"),
        "Weight gradient packs cols^T from the image where the forward packs from it (True, "
        "the default) or materialises im2col (False); returns the previous setting");
  m.def("conv_shifted_rows", &set_conv_shifted_rows, py::arg("mode"),
        "Where the forward reads its GEMM's B rows in place from a padded image instead of "
        "packing panels: 0 nowhere, 1 by the rule (the default), 2 in every stride-1 "
        "conv; returns the previous mode");
  m.def("conv_dw_shifted_rows", &set_conv_dw_shifted_rows, py::arg("mode"),
        "Where the weight gradient is dot products of dy and the padded image on the "
        "shifted-rows grid instead of a GEMM over columns: 0 nowhere, 1 by the rule (the "
        "default), 2 in every stride-1 conv; returns the previous mode");
}

}  // namespace pk::bind

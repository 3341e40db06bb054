// conv2d / im2col / col2im bindings on raw device pointers. Python
// (pykernels/_functional/conv.py) validates with friendly messages, allocates
// the outputs and the workspace with CuPy, and passes the shapes; here the
// geometry is re-derived and checked (ConvGeometry::finish), and the workspace
// size is checked against what the chunking needs, so no call with consistent
// shapes can make a kernel step outside a buffer. 0 for an optional pointer
// (bias, dx, dweight, dbias) means none.
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <pybind11/stl.h>

#include "bind/common.h"
#include "conv.cuh"
#include "conv_winograd.cuh"

namespace pk::cuda::bind {
namespace {

using Pair = std::pair<int64_t, int64_t>;
using Shape = std::vector<int64_t>;

void require_4d(const Shape& shape, const char* name) {
  if (shape.size() != 4) {
    throw std::invalid_argument(std::string(name) + " shape must have 4 dimensions, got " +
                                std::to_string(shape.size()));
  }
}

ConvGeometry unfold_geometry(const Shape& x_shape, Pair kernel, Pair stride, Pair padding,
                             Pair dilation) {
  require_4d(x_shape, "x");
  ConvGeometry s;
  s.set_input(x_shape[0], x_shape[1], x_shape[2], x_shape[3]);
  s.set_window(kernel, stride, padding, dilation);
  s.finish();
  return s;
}

ConvGeometry conv_geometry(const Shape& x_shape, const Shape& w_shape, Pair stride, Pair padding,
                           Pair dilation, int64_t groups) {
  require_4d(w_shape, "weight");
  require_4d(x_shape, "x");
  ConvGeometry s;
  s.set_input(x_shape[0], x_shape[1], x_shape[2], x_shape[3]);
  s.set_window({w_shape[2], w_shape[3]}, stride, padding, dilation);
  s.o = w_shape[0], s.groups = groups;
  s.finish();
  if (w_shape[1] < 0 || w_shape[1] * groups != s.c) {
    throw std::invalid_argument("weight needs " + std::to_string(w_shape[1] * groups) +
                                " input channels with groups=" + std::to_string(groups) +
                                ", x has " + std::to_string(s.c));
  }
  return s;
}

ConvAlgo as_algo(int algo) {
  if (algo < int(ConvAlgo::Auto) || algo > int(ConvAlgo::Winograd)) {
    throw std::invalid_argument("algo must be 0 (auto), 1 (im2col) or 2 (winograd), got " +
                                std::to_string(algo));
  }
  return ConvAlgo(algo);
}

// (images per chunk, workspace floats) for a workspace cap of max_floats.
std::pair<int64_t, int64_t> plan(const ConvGeometry& s, int64_t max_floats, ConvAlgo algo,
                                 bool backward) {
  if (max_floats < 1) {
    throw std::invalid_argument("max_workspace_floats must be >= 1, got " +
                                std::to_string(max_floats));
  }
  const int64_t chunk = conv2d_chunk_images(s, max_floats, algo, backward);
  return {chunk, conv2d_workspace_floats(s, chunk, algo, backward)};
}

int64_t checked_chunk(const ConvGeometry& s, std::uintptr_t workspace, int64_t workspace_floats,
                      int64_t max_floats, ConvAlgo algo, bool backward) {
  const auto [chunk, need] = plan(s, max_floats, algo, backward);
  if (workspace_floats < need) {
    throw std::invalid_argument("workspace holds " + std::to_string(workspace_floats) +
                                " floats, this convolution needs " + std::to_string(need));
  }
  check_pointers(need, {workspace});
  return chunk;
}

// Null pointers only where the array is empty.
void check_conv_pointers(const ConvGeometry& s, std::uintptr_t x, std::uintptr_t weight,
                         std::uintptr_t out) {
  check_pointers(s.n * s.c * s.h * s.w, {x});
  check_pointers(s.o * s.c_per_group() * s.kh * s.kw, {weight});
  check_pointers(s.n * s.o * s.out_plane(), {out});
}

float* optional_ptr(std::uintptr_t p) { return p == 0 ? nullptr : mptr(p); }

void forward(std::uintptr_t x, std::uintptr_t weight, std::uintptr_t bias, std::uintptr_t y,
             std::uintptr_t workspace, int64_t workspace_floats, const Shape& x_shape,
             const Shape& w_shape, Pair stride, Pair padding, Pair dilation, int64_t groups,
             int64_t max_workspace_floats, int algo, std::uintptr_t stream) {
  const ConvGeometry s = conv_geometry(x_shape, w_shape, stride, padding, dilation, groups);
  const ConvAlgo chosen = conv2d_algo(s, as_algo(algo));
  const int64_t chunk =
      checked_chunk(s, workspace, workspace_floats, max_workspace_floats, chosen, false);
  check_conv_pointers(s, x, weight, y);
  py::gil_scoped_release release;
  conv2d_forward(s, cptr(x), cptr(weight), optional_ptr(bias), mptr(y), mptr(workspace), chunk,
                 as_stream(stream), chosen);
}

void backward(std::uintptr_t dy, std::uintptr_t x, std::uintptr_t weight, std::uintptr_t dx,
              std::uintptr_t dweight, std::uintptr_t dbias, std::uintptr_t workspace,
              int64_t workspace_floats, const Shape& x_shape, const Shape& w_shape, Pair stride,
              Pair padding, Pair dilation, int64_t groups, int64_t max_workspace_floats,
              int algo, std::uintptr_t stream) {
  const ConvGeometry s = conv_geometry(x_shape, w_shape, stride, padding, dilation, groups);
  const ConvAlgo chosen = conv2d_algo(s, as_algo(algo));
  const int64_t chunk =
      checked_chunk(s, workspace, workspace_floats, max_workspace_floats, chosen, true);
  check_conv_pointers(s, x, weight, dy);
  py::gil_scoped_release release;
  conv2d_backward(s, cptr(dy), cptr(x), cptr(weight), optional_ptr(dx), optional_ptr(dweight),
                  optional_ptr(dbias), mptr(workspace), chunk, as_stream(stream), chosen);
}

void unfold(std::uintptr_t x, std::uintptr_t cols, const Shape& x_shape, Pair kernel, Pair stride,
            Pair padding, Pair dilation, std::uintptr_t stream) {
  const ConvGeometry s = unfold_geometry(x_shape, kernel, stride, padding, dilation);
  check_pointers(s.n * s.col_rows() * s.out_plane(), {x, cols});
  py::gil_scoped_release release;
  im2col(s, cptr(x), mptr(cols), as_stream(stream));
}

void fold(std::uintptr_t cols, std::uintptr_t x, const Shape& x_shape, Pair kernel, Pair stride,
          Pair padding, Pair dilation, std::uintptr_t stream) {
  const ConvGeometry s = unfold_geometry(x_shape, kernel, stride, padding, dilation);
  check_pointers(s.n * s.c * s.h * s.w, {x});
  check_pointers(s.n * s.col_rows() * s.out_plane(), {cols});
  py::gil_scoped_release release;
  col2im(s, cptr(cols), mptr(x), as_stream(stream));
}

}  // namespace

void register_conv(py::module_& m) {
  m.attr("conv2d_default_workspace_floats") = kConvWorkspaceFloats;
  m.def(
      "conv2d_workspace",
      [](const Shape& x_shape, const Shape& w_shape, Pair stride, Pair padding, Pair dilation,
         int64_t groups, int64_t max_workspace_floats, int algo, bool backward) {
        const ConvGeometry s = conv_geometry(x_shape, w_shape, stride, padding, dilation, groups);
        return plan(s, max_workspace_floats, conv2d_algo(s, as_algo(algo)), backward);
      },
      py::arg("x_shape"), py::arg("w_shape"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("groups"), py::arg("max_workspace_floats"), py::arg("algo") = 0,
      py::arg("backward") = false,
      "(images per chunk, workspace floats) of conv2d forward or backward under a workspace cap");
  m.def(
      "conv2d_winograd_unsupported",
      [](const Shape& x_shape, const Shape& w_shape, Pair stride, Pair padding, Pair dilation,
         int64_t groups) {
        return winograd_unsupported(
            conv_geometry(x_shape, w_shape, stride, padding, dilation, groups));
      },
      py::arg("x_shape"), py::arg("w_shape"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("groups"),
      "why algo='winograd' cannot run this convolution, or '' when it can");
  m.def(
      "conv2d_algo_name",
      [](const Shape& x_shape, const Shape& w_shape, Pair stride, Pair padding, Pair dilation,
         int64_t groups, int algo) {
        const ConvGeometry s = conv_geometry(x_shape, w_shape, stride, padding, dilation, groups);
        return conv2d_algo(s, as_algo(algo)) == ConvAlgo::Winograd ? "winograd" : "im2col";
      },
      py::arg("x_shape"), py::arg("w_shape"), py::arg("stride"), py::arg("padding"),
      py::arg("dilation"), py::arg("groups"), py::arg("algo") = 0,
      "the algorithm `algo` (0 auto, 1 im2col, 2 winograd) runs this convolution with");

  m.def("conv2d_forward", &forward, py::arg("x"), py::arg("weight"), py::arg("bias"),
        py::arg("y"), py::arg("workspace"), py::arg("workspace_floats"), py::arg("x_shape"),
        py::arg("w_shape"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("max_workspace_floats"), py::arg("algo"), py::arg("stream"));
  m.def("conv2d_backward", &backward, py::arg("dy"), py::arg("x"), py::arg("weight"),
        py::arg("dx"), py::arg("dweight"), py::arg("dbias"), py::arg("workspace"),
        py::arg("workspace_floats"), py::arg("x_shape"), py::arg("w_shape"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("max_workspace_floats"), py::arg("algo"), py::arg("stream"));
  m.def("im2col", &unfold, py::arg("x"), py::arg("cols"), py::arg("x_shape"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("stream"));
  m.def("col2im", &fold, py::arg("cols"), py::arg("x"), py::arg("x_shape"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("stream"));
}

}  // namespace pk::cuda::bind

// Pooling bindings. Python (pykernels._functional.pool) validates and
// allocates; here the geometry is recomputed from x's shape and the window
// parameters and every buffer is checked against it, so a direct call can
// never make a kernel read or write outside an array.
#include <pybind11/stl.h>

#include <algorithm>
#include <climits>
#include <string>
#include <utility>

#include "common.h"
#include "pykernels/pool.h"

namespace pk::bind {
namespace {

void require_4d(const py::array& a, const char* name) {
  if (a.ndim() != 4) {
    throw std::invalid_argument(std::string(name) + " must be 4-D (N, C, H, W), got " +
                                std::to_string(a.ndim()) + "-D");
  }
}

void require_shape(const py::array& a, const char* name, int64_t n, int64_t c, int64_t h,
                   int64_t w) {
  require_4d(a, name);
  if (a.shape(0) != n || a.shape(1) != c || a.shape(2) != h || a.shape(3) != w) {
    throw std::invalid_argument(std::string(name) + " must have shape (" + std::to_string(n) +
                                ", " + std::to_string(c) + ", " + std::to_string(h) + ", " +
                                std::to_string(w) + ")");
  }
}

int64_t* index_ptr(const py::array& a, const char* name, bool writable) {
  if (!py::isinstance<py::array_t<int64_t>>(a) || a.dtype().kind() != 'i' || a.itemsize() != 8) {
    throw py::type_error(std::string(name) + " must be an int64 array");
  }
  if (!(a.flags() & py::array::c_style)) {
    throw std::invalid_argument(std::string(name) + " must be C-contiguous");
  }
  if (writable && !a.writeable()) throw std::invalid_argument(std::string(name) + " is read-only");
  return static_cast<int64_t*>(const_cast<void*>(a.data()));
}

// Geometry of a windowed pool of an (n, c, h, w) input, parameters checked as
// PyTorch does (padding at most half the kernel, output at least 1 x 1).
Pool2dShape window_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t kh, int64_t kw,
                         int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0 || 2 * ph > kh || 2 * pw > kw) {
    throw std::invalid_argument("pooling needs kernel_size >= 1, stride >= 1 and "
                                "0 <= padding <= kernel_size / 2");
  }
  // As PyTorch (int32 parameters): larger values would overflow the window
  // count kh * kw and the padded extents below.
  if (std::max({kh, kw, sh, sw, ph, pw}) > INT32_MAX) {
    throw std::invalid_argument("pooling kernel_size, stride and padding must be below 2^31");
  }
  const int64_t oh = (h + 2 * ph - kh) / sh + 1, ow = (w + 2 * pw - kw) / sw + 1;
  if (h + 2 * ph < kh || w + 2 * pw < kw || oh < 1 || ow < 1) {
    throw std::invalid_argument("pooling window is larger than the padded input");
  }
  if (h * w > INT32_MAX) {  // max pooling tracks in-plane positions as int32
    throw std::invalid_argument("pooling planes must hold fewer than 2^31 values");
  }
  return {n * c, h, w, oh, ow, kh, kw, sh, sw, ph, pw};
}

Pool2dShape adaptive_shape(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  if (oh < 1 || ow < 1 || h < 1 || w < 1) {
    throw std::invalid_argument("adaptive pooling needs output and input sizes >= 1");
  }
  return {n * c, h, w, oh, ow, 1, 1, 1, 1, 0, 0};
}

using Pair = std::pair<int64_t, int64_t>;

// Window geometry over the planes of `input` (x forward, dx backward), after
// checking that `output` (y forward, dy backward) has the pooled shape.
Pool2dShape pooled(const py::array& input, const char* input_name, const py::array& output,
                   const char* output_name, Pair k, Pair st, Pair pad) {
  require_4d(input, input_name);
  const Pool2dShape s = window_shape(input.shape(0), input.shape(1), input.shape(2),
                                     input.shape(3), k.first, k.second, st.first, st.second,
                                     pad.first, pad.second);
  require_shape(output, output_name, input.shape(0), input.shape(1), s.out_h, s.out_w);
  return s;
}

}  // namespace

void register_pool(py::module_& m) {
  m.def(
      "max_pool2d_forward",
      [](const py::array& x, py::array& y, py::array& indices, Pair k, Pair st, Pair pad) {
        const Pool2dShape s = pooled(x, "x", y, "y", k, st, pad);
        require_shape(indices, "indices", x.shape(0), x.shape(1), s.out_h, s.out_w);
        const float* xp = in_ptr(x, "x");
        float* yp = out_ptr(y, "y");
        int64_t* ip = index_ptr(indices, "indices", true);
        py::gil_scoped_release release;
        max_pool2d_forward(s, xp, yp, ip);
      },
      py::arg("x"), py::arg("y"), py::arg("indices"), py::arg("kernel_size"), py::arg("stride"),
      py::arg("padding"));
  m.def(
      "max_pool2d_backward",
      [](const py::array& dy, const py::array& indices, py::array& dx) {
        require_4d(dx, "dx");
        require_4d(dy, "dy");
        require_shape(indices, "indices", dy.shape(0), dy.shape(1), dy.shape(2), dy.shape(3));
        if (dx.shape(0) != dy.shape(0) || dx.shape(1) != dy.shape(1)) {
          throw std::invalid_argument("dx and dy must agree in N and C");
        }
        const Pool2dShape s{dx.shape(0) * dx.shape(1), dx.shape(2), dx.shape(3), dy.shape(2),
                            dy.shape(3), 1, 1, 1, 1, 0, 0};
        const float* dyp = in_ptr(dy, "dy");
        const int64_t* ip = index_ptr(indices, "indices", false);
        float* dxp = out_ptr(dx, "dx");
        int64_t bad;
        {
          py::gil_scoped_release release;
          bad = max_pool2d_backward(s, dyp, ip, dxp);
        }
        if (bad) {
          throw std::invalid_argument(std::to_string(bad) +
                                      " indices lie outside their H x W input plane");
        }
      },
      py::arg("dy"), py::arg("indices"), py::arg("dx"));
  m.def(
      "avg_pool2d_forward",
      [](const py::array& x, py::array& y, Pair k, Pair st, Pair pad) {
        const Pool2dShape s = pooled(x, "x", y, "y", k, st, pad);
        const float* xp = in_ptr(x, "x");
        float* yp = out_ptr(y, "y");
        py::gil_scoped_release release;
        avg_pool2d_forward(s, xp, yp);
      },
      py::arg("x"), py::arg("y"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"));
  m.def(
      "avg_pool2d_backward",
      [](const py::array& dy, py::array& dx, Pair k, Pair st, Pair pad) {
        const Pool2dShape s = pooled(dx, "dx", dy, "dy", k, st, pad);
        const float* dyp = in_ptr(dy, "dy");
        float* dxp = out_ptr(dx, "dx");
        py::gil_scoped_release release;
        avg_pool2d_backward(s, dyp, dxp);
      },
      py::arg("dy"), py::arg("dx"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"));
  m.def(
      "adaptive_avg_pool2d_forward",
      [](const py::array& x, py::array& y) {
        require_4d(x, "x");
        require_4d(y, "y");
        const Pool2dShape s = adaptive_shape(x.shape(0), x.shape(1), x.shape(2), x.shape(3),
                                             y.shape(2), y.shape(3));
        require_shape(y, "y", x.shape(0), x.shape(1), s.out_h, s.out_w);
        const float* xp = in_ptr(x, "x");
        float* yp = out_ptr(y, "y");
        py::gil_scoped_release release;
        adaptive_avg_pool2d_forward(s, xp, yp);
      },
      py::arg("x"), py::arg("y"));
  m.def(
      "adaptive_avg_pool2d_backward",
      [](const py::array& dy, py::array& dx) {
        require_4d(dy, "dy");
        require_4d(dx, "dx");
        const Pool2dShape s = adaptive_shape(dx.shape(0), dx.shape(1), dx.shape(2), dx.shape(3),
                                             dy.shape(2), dy.shape(3));
        require_shape(dy, "dy", dx.shape(0), dx.shape(1), s.out_h, s.out_w);
        const float* dyp = in_ptr(dy, "dy");
        float* dxp = out_ptr(dx, "dx");
        py::gil_scoped_release release;
        adaptive_avg_pool2d_backward(s, dyp, dxp);
      },
      py::arg("dy"), py::arg("dx"));
}

}  // namespace pk::bind

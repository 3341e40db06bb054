// Pooling on raw device pointers. Python (pykernels._functional.pool)
// validates shapes and allocates; here the geometry is rechecked (PyTorch's
// rules, the sizes the kernels' int arithmetic needs, out_h / out_w equal to
// the pooling formula), since a wrong one would make a kernel read or write
// outside an array. Nothing more can be checked about a raw pointer.
#include <pybind11/stl.h>

#include <algorithm>
#include <climits>
#include <string>
#include <utility>

#include "bind/common.h"
#include "pool.cuh"

namespace pk::cuda::bind {
namespace {

using Pair = std::pair<int64_t, int64_t>;

std::string dims(int64_t a, int64_t b) {
  return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

// Planes of in_h x in_w and out_h x out_w whose positions fit an int.
void check_planes(int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w) {
  if (planes < 0 || in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1) {
    throw std::invalid_argument("pooling needs planes >= 0 and input and output sizes >= 1, got "
                                "input " + dims(in_h, in_w) + " and output " +
                                dims(out_h, out_w));
  }
  if (std::max({in_h, in_w, out_h, out_w}) > INT32_MAX || in_h * in_w > INT32_MAX ||
      out_h * out_w > INT32_MAX) {
    throw std::invalid_argument("pooling planes must hold fewer than 2^31 values");
  }
}

// A windowed pool's geometry, checked as the CPU binding does, with out_h and
// out_w required to be the pooling formula's.
Pool2dShape window_shape(int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w,
                         Pair k, Pair st, Pair pad) {
  check_planes(planes, in_h, in_w, out_h, out_w);
  const auto [kh, kw] = k;
  const auto [sh, sw] = st;
  const auto [ph, pw] = pad;
  if (std::max({kh, kw, sh, sw, ph, pw}) > INT32_MAX || in_h + 2 * ph > INT32_MAX ||
      in_w + 2 * pw > INT32_MAX) {
    throw std::invalid_argument("pooling kernel_size, stride and padded input must be below 2^31");
  }
  if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0 || 2 * ph > kh || 2 * pw > kw) {
    throw std::invalid_argument("pooling needs kernel_size >= 1, stride >= 1 and "
                                "0 <= padding <= kernel_size / 2");
  }
  if (in_h + 2 * ph < kh || in_w + 2 * pw < kw || (in_h + 2 * ph - kh) / sh + 1 != out_h ||
      (in_w + 2 * pw - kw) / sw + 1 != out_w) {
    throw std::invalid_argument("pooling output " + dims(out_h, out_w) +
                                " does not follow from input " + dims(in_h, in_w) +
                                ", kernel_size " + dims(kh, kw) + ", stride " + dims(sh, sw) +
                                " and padding " + dims(ph, pw));
  }
  return {planes, in_h, in_w, out_h, out_w, kh, kw, sh, sw, ph, pw};
}

Pool2dShape plain_shape(int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h,
                        int64_t out_w) {
  check_planes(planes, in_h, in_w, out_h, out_w);
  return {planes, in_h, in_w, out_h, out_w, 1, 1, 1, 1, 0, 0};
}

const int64_t* index_cptr(std::uintptr_t p) { return reinterpret_cast<const int64_t*>(p); }
int64_t* index_mptr(std::uintptr_t p) { return reinterpret_cast<int64_t*>(p); }

// avg_pool2d_forward and _backward take the same arguments: the array the
// kernel reads, the one it writes, then the planes' geometry and the window.
template <void (*Op)(const Pool2dShape&, const float*, float*, cudaStream_t)>
void def_avg_pool(py::module_& m, const char* name, const char* read, const char* written) {
  m.def(
      name,
      [](std::uintptr_t in, std::uintptr_t out, int64_t planes, int64_t in_h, int64_t in_w,
         int64_t out_h, int64_t out_w, Pair k, Pair st, Pair pad, std::uintptr_t stream) {
        const Pool2dShape s = window_shape(planes, in_h, in_w, out_h, out_w, k, st, pad);
        check_pointers(planes, {in, out});
        py::gil_scoped_release release;
        Op(s, cptr(in), mptr(out), as_stream(stream));
      },
      py::arg(read), py::arg(written), py::arg("planes"), py::arg("in_h"), py::arg("in_w"),
      py::arg("out_h"), py::arg("out_w"), py::arg("kernel_size"), py::arg("stride"),
      py::arg("padding"), py::arg("stream"));
}

// adaptive_avg_pool2d_forward and _backward: the same arguments, no window.
template <void (*Op)(const Pool2dShape&, const float*, float*, cudaStream_t)>
void def_adaptive_pool(py::module_& m, const char* name, const char* read, const char* written) {
  m.def(
      name,
      [](std::uintptr_t in, std::uintptr_t out, int64_t planes, int64_t in_h, int64_t in_w,
         int64_t out_h, int64_t out_w, std::uintptr_t stream) {
        const Pool2dShape s = plain_shape(planes, in_h, in_w, out_h, out_w);
        check_pointers(planes, {in, out});
        py::gil_scoped_release release;
        Op(s, cptr(in), mptr(out), as_stream(stream));
      },
      py::arg(read), py::arg(written), py::arg("planes"), py::arg("in_h"), py::arg("in_w"),
      py::arg("out_h"), py::arg("out_w"), py::arg("stream"));
}

}  // namespace

void register_pool(py::module_& m) {
  m.def(
      "max_pool2d_forward",
      [](std::uintptr_t x, std::uintptr_t y, std::uintptr_t indices, int64_t planes, int64_t in_h,
         int64_t in_w, int64_t out_h, int64_t out_w, Pair k, Pair st, Pair pad,
         std::uintptr_t stream) {
        const Pool2dShape s = window_shape(planes, in_h, in_w, out_h, out_w, k, st, pad);
        check_pointers(planes, {x, y, indices});
        py::gil_scoped_release release;
        max_pool2d_forward(s, cptr(x), mptr(y), index_mptr(indices), as_stream(stream));
      },
      py::arg("x"), py::arg("y"), py::arg("indices"), py::arg("planes"), py::arg("in_h"),
      py::arg("in_w"), py::arg("out_h"), py::arg("out_w"), py::arg("kernel_size"),
      py::arg("stride"), py::arg("padding"), py::arg("stream"));
  m.def(
      "max_pool2d_backward",
      [](std::uintptr_t dy, std::uintptr_t indices, std::uintptr_t dx, std::uintptr_t bad_flag,
         int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h, int64_t out_w,
         std::uintptr_t stream) {
        const Pool2dShape s = plain_shape(planes, in_h, in_w, out_h, out_w);
        check_pointers(planes, {dy, indices, dx, bad_flag});
        py::gil_scoped_release release;
        max_pool2d_backward(s, cptr(dy), index_cptr(indices), mptr(dx),
                            reinterpret_cast<int*>(bad_flag), as_stream(stream));
      },
      py::arg("dy"), py::arg("indices"), py::arg("dx"), py::arg("bad_flag"), py::arg("planes"),
      py::arg("in_h"), py::arg("in_w"), py::arg("out_h"), py::arg("out_w"), py::arg("stream"));
  def_avg_pool<avg_pool2d_forward>(m, "avg_pool2d_forward", "x", "y");
  def_avg_pool<avg_pool2d_backward>(m, "avg_pool2d_backward", "dy", "dx");
  def_adaptive_pool<adaptive_avg_pool2d_forward>(m, "adaptive_avg_pool2d_forward", "x", "y");
  def_adaptive_pool<adaptive_avg_pool2d_backward>(m, "adaptive_avg_pool2d_backward", "dy", "dx");
}

}  // namespace pk::cuda::bind

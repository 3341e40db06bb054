// One parameter's SGD update, torch.optim.SGD's rule, shared by the CPU
// (csrc/sgd.cpp) and the GPU (cuda/sgd.cu):
//   d = g + weight_decay * w                   (d = g when weight_decay is 0)
//   v = first step ? d : momentum * v + (1 - dampening) * d
//   d = nesterov ? d + momentum * v : v        (only with momentum)
//   w = w - lr * d
// Each product and sum is rounded to float32 on its own, never fused into an
// FMA, so the CPU, the GPU and the NumPy reference (pykernels/reference/sgd.py)
// agree bit for bit.
#pragma once

#include <type_traits>

#include "pykernels/host_device.h"

namespace pk::sgd {

struct Hyper {
  float lr = 0.0f, momentum = 0.0f, one_minus_dampening = 1.0f, weight_decay = 0.0f;
  bool nesterov = false;
};

// The float32 values the kernels compute with, from the caller's doubles;
// 1 - dampening is taken in double and rounded once, as NumPy does with the
// Python float in the reference.
inline Hyper make_hyper(double lr, double momentum, double dampening, double weight_decay,
                        bool nesterov) {
  return {float(lr), float(momentum), float(1.0 - dampening), float(weight_decay), nesterov};
}

// nvcc contracts a * b + c into an FMA unless told otherwise, hence the
// intrinsics on the device. On the host, csrc/sgd.cpp and the emulator's
// build are compiled with -ffp-contract=off (an x86-64 baseline build has no
// FMA to contract into anyway).
PK_HOST_DEVICE inline float mul(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

PK_HOST_DEVICE inline float add(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

PK_HOST_DEVICE inline float sub(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

// Which terms a step has, fixed at compile time: a branch inside the loop
// would keep the CPU's compiler from vectorising it.
template <bool MOMENTUM, bool FIRST, bool NESTEROV, bool DECAY>
struct Kind {
  static constexpr bool momentum = MOMENTUM, first = FIRST, nesterov = NESTEROV, decay = DECAY;
};

// The new value of parameter w with gradient g; with momentum, *v is its
// velocity, written here (on the first step its old value is not read).
template <class K>
PK_HOST_DEVICE inline float update(float w, float g, float* v, const Hyper& h) {
  float d = K::decay ? add(g, mul(h.weight_decay, w)) : g;
  if constexpr (K::momentum) {
    const float velocity =
        K::first ? d : add(mul(h.momentum, *v), mul(h.one_minus_dampening, d));
    *v = velocity;
    d = K::nesterov ? add(d, mul(h.momentum, velocity)) : velocity;
  }
  return sub(w, mul(h.lr, d));
}

template <class Fn>
void with_flag(bool flag, Fn&& fn) {
  if (flag) {
    fn(std::true_type{});
  } else {
    fn(std::false_type{});
  }
}

// fn(Kind<...>{}) for the step that h and first_step describe.
template <class Fn>
void with_kind(const Hyper& h, bool first_step, Fn&& fn) {
  const bool momentum = h.momentum != 0.0f;
  with_flag(momentum, [&](auto m) {
    with_flag(momentum && first_step, [&](auto f) {
      with_flag(momentum && h.nesterov, [&](auto n) {
        with_flag(h.weight_decay != 0.0f, [&](auto d) {
          fn(Kind<decltype(m)::value, decltype(f)::value, decltype(n)::value,
                  decltype(d)::value>{});
        });
      });
    });
  });
}

}  // namespace pk::sgd

// SGD step on the GPU: torch.optim.SGD's update (momentum, dampening, weight
// decay, Nesterov) in one pass, one element per thread of a grid-stride loop:
// read w, g (and v), write w (and v), 12 to 20 bytes per parameter. PyTorch's
// for-each path runs about five elementwise kernels over the same arrays;
// this runs one. The per-element math is the CPU's (pykernels/sgd_update.h),
// each operation rounded alone (__fmul_rn / __fadd_rn), so the two agree.
#include "sgd.cuh"

namespace pk::cuda {
namespace {

constexpr int kThreads = 256;
constexpr unsigned int kMaxBlocks = 65535u * 4u;

template <class K>
__global__ void sgd_kernel(float* __restrict__ param, const float* __restrict__ grad,
                           float* __restrict__ velocity, int64_t n, sgd::Hyper h) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    float* v = K::momentum ? velocity + i : nullptr;
    param[i] = sgd::update<K>(param[i], grad[i], v, h);
  }
}

}  // namespace

void sgd_step(float* param, const float* grad, float* velocity, int64_t n, const sgd::Hyper& h,
              bool first_step, cudaStream_t stream) {
  if (n <= 0) return;
  sgd::with_kind(h, first_step, [&](auto kind) {
    PK_LAUNCH(blocks_for(n, kThreads, kMaxBlocks), kThreads, 0, stream,
              sgd_kernel<decltype(kind)>)(param, grad, velocity, n, h);
    check_launch("sgd_kernel");
  });
}

}  // namespace pk::cuda

// LSTM on the GPU: the fused pointwise passes of one time step (the same
// split as csrc/lstm.cpp) and the time loops that alternate them with the
// recurrent GEMM. The GEMMs outside the loops -- one input projection for all
// T steps, and after backpropagation through time dx, dW_ih and dW_hh as
// three GEMMs over all T*N rows -- are pk::cuda::sgemm calls issued by
// pykernels/_functional/lstm.py, which drives CPU and GPU with one code path.
//
//   forward:  [i f g o] = [σ σ tanh σ](gates + b),  c1 = f c + i g,  h1 = o tanh c1
//   backward: dh = dh1 (+ dh_rec),  dc1' = dc1 + dh o (1 - tanh²c1)
//             di = dc1' g i(1-i),  df = dc1' c f(1-f),  dg = dc1' i (1-g²),
//             do = dh tanh(c1) o(1-o),  dc = dc1' f
// tanh c1 is recomputed from the saved gates and c, as on the CPU, so the
// cache is the same: the activated gates, the cells and the outputs.
//
// Layout and parallelisation: gates is (N, 4H) row-major, states (N, H). One
// thread per hidden unit j (blockIdx.x, threadIdx.x) handles the four gates
// of j for rows blockIdx.y, blockIdx.y + gridDim.y, ...: each of its loads is
// one of a few contiguous row segments, so a warp reads 32 consecutive floats
// of each gate block (coalesced), and the four bias values stay in registers
// across rows. Each output element is written by exactly one thread: no
// atomics, bitwise repeatable.
//
// What bounds it: pure bandwidth, ~44 bytes per hidden unit forward (4 gates
// in and out, bias amortised, c in, c1 and h1 out) and ~48-52 backward, a few
// flops each, plus 4 bytes per gate and K slab when the loops hand it the
// recurrent product unsummed (below); at the benchmark's N = 64, H = 512
// that is ~1.4 MB per step (~4.5 MB with 6 slabs), a microsecond or so on an
// H200, so a step's time is the recurrent GEMM plus launch latency. Accurate expf/tanhf cost nothing
// here (the kernel waits on memory) and keep the results within a few ulp
// of the CPU's polynomial versions.
#include "lstm.cuh"

#include "gemm.cuh"
#include "splitk.cuh"

namespace pk::cuda {
namespace {

constexpr int kMaxThreads = 256;
constexpr unsigned int kMaxRowBlocks = 65535u;

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// Pre-activation e of `gates`, plus the recurrent product's K slabs when
// the time loop left them unsummed (count 0: already in gates): the sum
// sgemm's reduction would have stored there with beta = 1, bit for bit.
__device__ __forceinline__ float pre_activation(const float* gates, const Slabs& recurrent,
                                                int64_t e) {
  return recurrent.count ? recurrent.sum(e) + gates[e] : gates[e];
}

__global__ void __launch_bounds__(kMaxThreads)
    lstm_forward_kernel(int64_t n, int64_t h, float* __restrict__ gates, Slabs recurrent,
                        const float* __restrict__ bias, const float* __restrict__ c,
                        float* __restrict__ c1, float* __restrict__ h1) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= h) return;
  const float bi = bias[j], bf = bias[h + j], bg = bias[2 * h + j], bo = bias[3 * h + j];
  for (int64_t row = blockIdx.y; row < n; row += gridDim.y) {
    const int64_t e = row * 4 * h + j;
    float* g_row = gates + row * 4 * h;
    const int64_t k = row * h + j;
    const float i = sigmoid(pre_activation(gates, recurrent, e) + bi);
    const float f = sigmoid(pre_activation(gates, recurrent, e + h) + bf);
    const float g = tanhf(pre_activation(gates, recurrent, e + 2 * h) + bg);
    const float o = sigmoid(pre_activation(gates, recurrent, e + 3 * h) + bo);
    const float cell = f * c[k] + i * g;
    g_row[j] = i;
    g_row[h + j] = f;
    g_row[2 * h + j] = g;
    g_row[3 * h + j] = o;
    c1[k] = cell;
    h1[k] = o * tanhf(cell);
  }
}

__global__ void __launch_bounds__(kMaxThreads)
    lstm_backward_kernel(int64_t n, int64_t h, const float* __restrict__ dh1, Slabs dh_rec,
                         float* __restrict__ dc,
                         const float* __restrict__ gates, const float* __restrict__ c,
                         float* __restrict__ dgates) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= h) return;
  for (int64_t row = blockIdx.y; row < n; row += gridDim.y) {
    const float* g_row = gates + row * 4 * h;
    float* d_row = dgates + row * 4 * h;
    const int64_t k = row * h + j;
    const float i = g_row[j], f = g_row[h + j], g = g_row[2 * h + j], o = g_row[3 * h + j];
    const float dh = dh_rec.count ? dh1[k] + dh_rec.sum(k) : dh1[k];
    const float c_prev = c[k];
    const float tc = tanhf(f * c_prev + i * g);
    const float dcell = dc[k] + dh * o * (1.0f - tc * tc);
    d_row[j] = dcell * g * i * (1.0f - i);
    d_row[h + j] = dcell * c_prev * f * (1.0f - f);
    d_row[2 * h + j] = dcell * i * (1.0f - g * g);
    d_row[3 * h + j] = dh * tc * o * (1.0f - o);
    dc[k] = dcell * f;
  }
}

// Threads along the hidden units (a whole number of warps, no more than H
// needs), blocks along rows: small H does not launch idle warps.
struct Shape {
  dim3 grid;
  dim3 block;
};

Shape shape_for(int64_t n, int64_t h) {
  const int64_t warps = (h + 31) / 32;
  const int threads = int(warps * 32 < kMaxThreads ? warps * 32 : kMaxThreads);
  const unsigned int col_blocks = unsigned((h + threads - 1) / threads);
  const unsigned int row_blocks = n < int64_t(kMaxRowBlocks) ? unsigned(n) : kMaxRowBlocks;
  return {dim3(col_blocks, row_blocks), dim3(threads)};
}

void launch_forward(int64_t n, int64_t h, float* gates, const Slabs& recurrent,
                    const float* bias, const float* c, float* c1, float* h1,
                    cudaStream_t stream) {
  if (n <= 0 || h <= 0) return;
  const Shape s = shape_for(n, h);
  PK_LAUNCH(s.grid, s.block, 0, stream, lstm_forward_kernel)(n, h, gates, recurrent, bias, c,
                                                             c1, h1);
  check_launch("lstm_forward_kernel");
}

void launch_backward(int64_t n, int64_t h, const float* dh1, const Slabs& dh_rec, float* dc,
                     const float* gates, const float* c, float* dgates, cudaStream_t stream) {
  if (n <= 0 || h <= 0) return;
  const Shape s = shape_for(n, h);
  PK_LAUNCH(s.grid, s.block, 0, stream, lstm_backward_kernel)(n, h, dh1, dh_rec, dc, gates, c,
                                                              dgates);
  check_launch("lstm_backward_kernel");
}

}  // namespace

void lstm_pointwise_forward(int64_t n, int64_t h, float* gates, const float* bias,
                            const float* c, float* c1, float* h1, cudaStream_t stream) {
  launch_forward(n, h, gates, Slabs{}, bias, c, c1, h1, stream);
}

void lstm_pointwise_backward(int64_t n, int64_t h, const float* dh1, const float* dh_rec,
                             float* dc, const float* gates, const float* c, float* dgates,
                             cudaStream_t stream) {
  launch_backward(n, h, dh1, Slabs{dh_rec, dh_rec ? 1 : 0, 0}, dc, gates, c, dgates, stream);
}

// Both loops take the recurrent product's K slabs straight into the
// pointwise pass when auto splits it (the LSTM step's few tiles usually
// are): two launches a step instead of three, one scratch buffer for all
// steps, and the same bits as sgemm + pointwise.
void lstm_recurrence_forward(int64_t steps, int64_t n, int64_t h, float* gates,
                             const float* w_hh, const float* bias, const float* h0,
                             const float* c0, float* y, float* cells, cudaStream_t stream) {
  const int64_t state = n * h, step_gates = n * 4 * h;
  const SgemmSplit split = sgemm_auto_split(n, 4 * h, h);
  const StreamScratch partials(steps > 0 && split.splits > 1 ? split.splits * step_gates : 0,
                               stream);
  for (int64_t t = 0; t < steps; ++t) {
    const float* h_prev = t ? y + (t - 1) * state : h0;
    const float* c_prev = t ? cells + (t - 1) * state : c0;
    float* gates_t = gates + t * step_gates;
    Slabs recurrent;  // none: the product is summed into gates_t
    if (partials.data() != nullptr) {
      sgemm_partials(split, false, true, n, 4 * h, h, h_prev, h, w_hh, h, partials.data(),
                     stream);
      recurrent = {partials.data(), split.splits, step_gates};
    } else {
      sgemm(GemmAlgo::Auto, false, true, n, 4 * h, h, 1.0f, h_prev, h, w_hh, h, 1.0f, gates_t,
            4 * h, stream);
    }
    launch_forward(n, h, gates_t, recurrent, bias, c_prev, cells + t * state, y + t * state,
                   stream);
  }
}

void lstm_recurrence_backward(int64_t steps, int64_t n, int64_t h, const float* dy, float* dh,
                              float* dc, const float* gates, const float* cells,
                              const float* c0, const float* w_hh, float* dgates,
                              cudaStream_t stream) {
  const int64_t state = n * h, step_gates = n * 4 * h;
  const SgemmSplit split = sgemm_auto_split(n, h, 4 * h);
  const StreamScratch partials(steps > 1 && split.splits > 1 ? split.splits * state : 0, stream);
  Slabs dh_rec{dh, 1, 0};  // dL/dh of the last step, from the caller
  for (int64_t t = steps - 1; t >= 0; --t) {
    const float* c_prev = t ? cells + (t - 1) * state : c0;
    float* dgates_t = dgates + t * step_gates;
    launch_backward(n, h, dy + t * state, dh_rec, dc, gates + t * step_gates, c_prev, dgates_t,
                    stream);
    // dL/dh_{t-1}: left in slabs for the next pass, except step 0's, which
    // the caller gets in dh (overwritten: beta = 0, after the pass read it).
    if (t > 0 && partials.data() != nullptr) {
      sgemm_partials(split, false, false, n, h, 4 * h, dgates_t, 4 * h, w_hh, h, partials.data(),
                     stream);
      dh_rec = {partials.data(), split.splits, state};
    } else {
      sgemm(GemmAlgo::Auto, false, false, n, h, 4 * h, 1.0f, dgates_t, 4 * h, w_hh, h, 0.0f, dh,
            h, stream);
      dh_rec = {dh, 1, 0};
    }
  }
}

}  // namespace pk::cuda

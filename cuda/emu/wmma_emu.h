// The part of CUDA's warp matrix API (nvcuda::wmma, <mma.h>) that the TF32
// rung of cuda/gemm.cu uses, for the CPU emulator (cuda_emu.h).
//
// On a GPU a fragment's elements are spread over the 32 lanes of a warp in
// an unspecified way; here every lane holds the whole tile, which code that
// keeps to the API (elementwise operations on `x`, the *_sync calls) cannot
// tell apart. As on the GPU, each *_sync call waits for the whole warp on
// entry, and store_matrix_sync has each lane write only its share of the
// tile, so a lane that reads what another stored needs a __syncwarp first
// (ThreadSanitizer reports it otherwise: tools/emu_sanitize.sh). Products are
// summed in FP32 in k order; tensor cores may sum in another order. A
// fragment address that the GPU would fault on (not 32-byte aligned, or a
// leading dimension not a multiple of 16 bytes) fails the launch here too.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
namespace precision {
struct tf32 {};
}  // namespace precision
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int rows = std::is_same_v<Use, matrix_b> ? K : M;
  static constexpr int cols = std::is_same_v<Use, matrix_a> ? K : N;
  static constexpr int num_elements = rows * cols;
  float x[num_elements];
};

// Round to TF32 (10 mantissa bits), to nearest with ties away from zero, as
// cvt.rna.tf32.f32 does; infinities and NaN pass through.
inline float __float_to_tf32(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits = (bits + 0x1000u) & 0xffffe000u;
  std::memcpy(&value, &bits, 4);
  return value;
}

// The GPU faults on a fragment load or store whose pointer is not 32-byte
// aligned or whose leading dimension is not a multiple of 16 bytes; so does
// the emulator, through the launch's error.
inline bool fragment_address_ok(const float* p, unsigned ldm) {
  if (reinterpret_cast<std::uintptr_t>(p) % 32 == 0 && ldm % 4 == 0) return true;
  ::pk_emu::fault(cudaErrorMisalignedAddress);
  return false;
}

template <class Frag>
void fill_fragment(Frag& frag, float value) {
  for (float& e : frag.x) e = value;
}

template <class Use, int M, int N, int K, class T, class Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& frag, const float* p, unsigned ldm) {
  using Frag = fragment<Use, M, N, K, T, Layout>;
  ::pk_emu::whole_warp();
  if (!fragment_address_ok(p, ldm)) return;
  for (int r = 0; r < Frag::rows; ++r)
    for (int c = 0; c < Frag::cols; ++c)
      frag.x[r * Frag::cols + c] =
          std::is_same_v<Layout, row_major> ? p[r * ldm + c] : p[c * ldm + r];
}

template <int M, int N, int K, class TA, class LA, class TB, class LB>
void mma_sync(fragment<accumulator, M, N, K, float>& d,
              const fragment<matrix_a, M, N, K, TA, LA>& a,
              const fragment<matrix_b, M, N, K, TB, LB>& b,
              const fragment<accumulator, M, N, K, float>& c) {
  ::pk_emu::whole_warp();
  fragment<accumulator, M, N, K, float> sum = c;  // d may be c
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j)
      for (int p = 0; p < K; ++p) sum.x[i * N + j] += a.x[i * K + p] * b.x[p * N + j];
  d = sum;
}

template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& frag, unsigned ldm,
                       layout_t layout) {
  ::pk_emu::whole_warp();
  if (!fragment_address_ok(p, ldm)) return;
  for (int e = int(::pk_emu::linear_thread % 32); e < M * N; e += 32) {
    const int r = e / N, c = e % N;
    p[layout == mem_row_major ? r * ldm + c : c * ldm + r] = frag.x[e];
  }
}

}  // namespace nvcuda::wmma

// AVX-512F SGEMM micro-kernel and packers (built with -mavx512f -mavx2 -mfma).
//
// Register tile: 8 x 48 of row-major C in 24 zmm accumulators. Each k step
// loads the packed B row b[p*48 .. p*48+48) as 3 vectors and broadcasts each
// of the 8 packed A values a[p*8 + i] into FMAs: 24 independent FMAs per step
// (enough to cover FMA latency on both ports) for 11 loads, so the load
// ports are not the limit as they are for 16-wide tiles (17 loads per 16
// FMAs). Measured against 16x16, 12x32, 6x64-style tiles on a Sapphire
// Rapids core; 8 rows also divide every M of the AlexNet shapes exactly.
//
// Packing: the copy case moves whole 16-float pieces; the transposing case
// (A not transposed, or B transposed) loads 16 x 16 blocks and transposes
// them in registers instead of moving one float at a time.
//
// Only intrinsics and functions local to this file appear here, so nothing
// compiled with AVX-512 can be shared with (and run by) portable code.
#include <immintrin.h>

#include <cstdint>

#include "pykernels/gemm_kernels.h"

namespace pk {
namespace gemm {
namespace {

constexpr int kRows = 8;  // MR
constexpr int kVecs = 3;  // NR = 16 * kVecs
constexpr int kCols = 16 * kVecs;

// How far ahead (in k steps) to touch the A panel stream coming from L2.
constexpr int kPrefetchSteps = 8;

// NV vectors of C columns per row; row p of B starts at b_row_at(p): a packed
// panel's rows are 16 * kVecs floats apart, the shifted kernel's are anywhere.
template <int MR, int NV, typename BRow>
void tile(int64_t kc, const float* __restrict a, BRow b_row_at, float* c, int64_t ldc,
          float alpha, float beta) {
  // The C tile is needed only after the k loop; start fetching it now so its
  // rows (ldc apart, often not in cache) arrive while the FMAs run.
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * NV - 1), _MM_HINT_T0);
  }
  __m512 acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < kc; ++p) {
    const float* b = b_row_at(p);
    __m512 b_row[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b_row[v] = _mm512_loadu_ps(b + 16 * v);
    _mm_prefetch(reinterpret_cast<const char*>(a + kPrefetchSteps * MR), _MM_HINT_T0);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const __m512 a_i = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(a_i, b_row[v], acc[i][v]);
    }
    a += MR;
  }
  const __m512 alpha_v = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + i * ldc + 16 * v, _mm512_mul_ps(alpha_v, acc[i][v]));
    }
    return;
  }
  const __m512 beta_v = _mm512_set1_ps(beta);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* out = c + i * ldc + 16 * v;
      const __m512 scaled_c = _mm512_mul_ps(beta_v, _mm512_loadu_ps(out));
      _mm512_storeu_ps(out, _mm512_fmadd_ps(alpha_v, acc[i][v], scaled_c));
    }
  }
}

// Row p of a packed B panel (kCols floats per row, whatever NV reads of it).
auto packed_rows(const float* b) {
  return [b](int64_t p) { return b + p * kCols; };
}

void full_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                 float beta) {
  tile<kRows, kVecs>(kc, a, packed_rows(b), c, ldc, alpha, beta);
}

// One, two or three vectors of columns, as `cols` needs.
template <typename BRow>
void tile_of_width(int64_t kc, const float* a, BRow b_row_at, float* c, int64_t ldc, float alpha,
                   float beta, int64_t cols) {
  if (cols <= 16) {
    tile<kRows, 1>(kc, a, b_row_at, c, ldc, alpha, beta);
  } else if (cols <= 32) {
    tile<kRows, 2>(kc, a, b_row_at, c, ldc, alpha, beta);
  } else {
    tile<kRows, kVecs>(kc, a, b_row_at, c, ldc, alpha, beta);
  }
}

__mmask16 first_lanes(int64_t count) {
  return count >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << count) - 1u);
}

int64_t clamp16(int64_t x) { return x < 0 ? 0 : (x > 16 ? 16 : x); }

// The all-lanes maskz_ forms compile to the plain instructions; GCC 12 warns
// (falsely, -Wmaybe-uninitialized) about the undefined source operand that
// the unmasked intrinsics carry.
constexpr __mmask16 kAll = 0xffff;
__m512 unpack_lo(__m512 x, __m512 y) { return _mm512_maskz_unpacklo_ps(kAll, x, y); }
__m512 unpack_hi(__m512 x, __m512 y) { return _mm512_maskz_unpackhi_ps(kAll, x, y); }
template <int kImm>
__m512 shuffle_in_lanes(__m512 x, __m512 y) { return _mm512_maskz_shuffle_ps(kAll, x, y, kImm); }
template <int kImm>
__m512 shuffle_lanes(__m512 x, __m512 y) { return _mm512_maskz_shuffle_f32x4(kAll, x, y, kImm); }

// rows[t] (16 floats each) become rows[q][t] = old rows[t][q].
void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = unpack_lo(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = unpack_hi(r[2 * i], r[2 * i + 1]);
  }
  // u[4g + c]: lane L holds column 4L + c of rows 4g .. 4g+3.
  __m512 u[16];
  for (int g = 0; g < 4; ++g) {
    const __m512 lo01 = t[4 * g], hi01 = t[4 * g + 1], lo23 = t[4 * g + 2], hi23 = t[4 * g + 3];
    u[4 * g + 0] = shuffle_in_lanes<0x44>(lo01, lo23);
    u[4 * g + 1] = shuffle_in_lanes<0xEE>(lo01, lo23);
    u[4 * g + 2] = shuffle_in_lanes<0x44>(hi01, hi23);
    u[4 * g + 3] = shuffle_in_lanes<0xEE>(hi01, hi23);
  }
  // A 4 x 4 transpose of 128-bit lanes finishes column c for every lane L.
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = shuffle_lanes<0x44>(u[c], u[4 + c]);
    const __m512 v1 = shuffle_lanes<0xEE>(u[c], u[4 + c]);
    const __m512 v2 = shuffle_lanes<0x44>(u[8 + c], u[12 + c]);
    const __m512 v3 = shuffle_lanes<0xEE>(u[8 + c], u[12 + c]);
    r[0 + c] = shuffle_lanes<0x88>(v0, v2);
    r[4 + c] = shuffle_lanes<0xDD>(v0, v2);
    r[8 + c] = shuffle_lanes<0x88>(v1, v3);
    r[12 + c] = shuffle_lanes<0xDD>(v1, v3);
  }
}

// Strided == false: walk each source row once across all panels.
void pack_copy(const float* src, int64_t ld, int64_t extent, int64_t kc, int width, float* dst) {
  const int64_t panel_floats = width * kc;
  if (width % 16 != 0) {  // pieces would straddle panels: go panel by panel
    for (int64_t p = 0; p < kc; ++p, src += ld) {
      float* out = dst + p * width;
      for (int64_t j0 = 0; j0 < extent; j0 += width, out += panel_floats) {
        for (int j = 0; j < width; j += 16) {
          const __m512 v = _mm512_maskz_loadu_ps(first_lanes(clamp16(extent - j0 - j)), src + j0 + j);
          _mm512_mask_storeu_ps(out + j, first_lanes(width - j), v);
        }
      }
    }
    return;
  }
  // Whole panels take plain moves; only a ragged last panel needs masks.
  const int64_t whole = extent / width * width;
  for (int64_t p = 0; p < kc; ++p, src += ld) {
    float* out = dst + p * width;
    int64_t j0 = 0;
    for (; j0 < whole; j0 += width, out += panel_floats) {
      for (int j = 0; j < width; j += 16) _mm512_storeu_ps(out + j, _mm512_loadu_ps(src + j0 + j));
    }
    if (j0 == extent) continue;
    for (int j = 0; j < width; j += 16) {
      _mm512_storeu_ps(out + j, _mm512_maskz_loadu_ps(first_lanes(clamp16(extent - j0 - j)), src + j0 + j));
    }
  }
}

// Strided == true: 16 x 16 blocks transposed in registers; rows past
// `extent` and steps past kc are masked off, so nothing is read out of bounds.
void pack_transpose_panel(const float* src, int64_t ld, int64_t live, int64_t kc, int width, float* dst) {
  for (int j0 = 0; j0 < width; j0 += 16) {
    const int64_t live_rows = clamp16(live - j0);
    const __mmask16 store_mask = first_lanes(width - j0);
    for (int64_t p0 = 0; p0 < kc; p0 += 16) {
      const int64_t steps = clamp16(kc - p0);
      const __mmask16 load_mask = first_lanes(steps);
      __m512 r[16];
      for (int t = 0; t < 16; ++t) {
        r[t] = t < live_rows ? _mm512_maskz_loadu_ps(load_mask, src + (j0 + t) * ld + p0)
                             : _mm512_setzero_ps();
      }
      transpose16(r);
      for (int64_t q = 0; q < steps; ++q) _mm512_mask_storeu_ps(dst + (p0 + q) * width + j0, store_mask, r[q]);
    }
  }
}

void pack_avx512(const float* src, int64_t ld, bool strided, int64_t extent, int64_t kc, int width,
                 float* dst) {
  if (!strided) {
    pack_copy(src, ld, extent, kc, width, dst);
    return;
  }
  for (int64_t j0 = 0; j0 < extent; j0 += width, dst += width * kc) {
    pack_transpose_panel(src + j0 * ld, ld, extent - j0, kc, width, dst);
  }
}

// The last column panel of a product often holds a few live columns (AlexNet's
// 4 x 169 = 676 = 14 * 48 + 4): computing one or two vectors instead of three
// saves that panel's wasted FMAs, with each live element's arithmetic unchanged.
void edge_kernel(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                 float beta, int64_t cols) {
  tile_of_width(kc, a, packed_rows(b), c, ldc, alpha, beta, cols);
}

void shifted_kernel(int64_t kc, const float* a, const float* b, const int64_t* offsets, float* c,
                    int64_t ldc, float alpha, float beta, int64_t cols) {
  tile_of_width(kc, a, [b, offsets](int64_t p) { return b + offsets[p]; }, c, ldc, alpha, beta,
                cols);
}

}  // namespace

// kc = 384 measured ahead of 256: the B micro-panel (kc * 192 bytes) spills
// from a 48 KiB L1d into L2, which has bandwidth to spare at 3 vector loads
// per 24 FMAs, while a deeper block halves the C tile updates.
// mc: the A block (mc * kc * 4 = ~1 MiB) fills half of a 2 MiB L2.
// nc: the B block (kc * nc * 4 = ~6 MiB) lives in L3.
extern const MicroKernel kAvx512Kernel = {
    kRows, kCols, full_kernel, edge_kernel, shifted_kernel, pack_avx512, pack_avx512, 384, 672, 4096,
};

}  // namespace gemm
}  // namespace pk

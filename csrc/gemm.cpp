// Single-precision GEMM on row-major matrices: C = alpha * op(A) * op(B) + beta * C,
// op(A) is M x K, op(B) is K x N, op(X) = X or X^T as stored (see gemm.h).
//
// Variants, a ladder from readable to fast:
//   naive   - one dot product per C element, nothing else.
//   blocked - cache tiles and i-k-j loop order, so the innermost loop runs
//             along a contiguous row of B and C and the compiler vectorizes it.
//   packed  - Goto/BLIS: blocks of op(A) (MC x KC) and op(B) (KC x NC) are
//             copied into micro-panels that the per-ISA register-tile kernel
//             (gemm_kernel_<isa>.cpp) streams through; the copy reads through
//             any transpose, so all four layouts run at the same speed.
//   auto    - packed (it also wins on tiny problems, see sgemm_auto).
//
// Threading never splits the K sum: every C element accumulates over k in the
// same order whatever the thread count, so results are bitwise reproducible.
#include "pykernels/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <new>
#include <stdexcept>

#include "pykernels/gemm_kernels.h"
#include "pykernels/isa.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pk {
namespace {

using gemm::MicroKernel;

struct GemmArgs {
  bool trans_a, trans_b;
  int64_t m, n, k;
  float alpha;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float beta;
  float* c;
  int64_t ldc;
  const PackedOperand* a_packed = nullptr;  // then a, lda and trans_a are unused
  const PackedOperand* b_packed = nullptr;
  const BPanelSource* b_panels = nullptr;  // then b, ldb and trans_b are unused

  // op(A)[i][p] and op(B)[p][j], reading through the stored transpose.
  float a_at(int64_t i, int64_t p) const { return trans_a ? a[p * lda + i] : a[i * lda + p]; }
  float b_at(int64_t p, int64_t j) const { return trans_b ? b[j * ldb + p] : b[p * ldb + j]; }
};

int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }
int64_t round_up(int64_t x, int64_t multiple) { return ceil_div(x, multiple) * multiple; }

// Addresses of op(A)[i0][p0] and op(B)[p0][j0] in their stored layouts.
const float* a_source(bool trans_a, const float* a, int64_t lda, int64_t i0, int64_t p0) {
  return trans_a ? a + p0 * lda + i0 : a + i0 * lda + p0;
}
const float* b_source(bool trans_b, const float* b, int64_t ldb, int64_t p0, int64_t j0) {
  return trans_b ? b + j0 * ldb + p0 : b + p0 * ldb + j0;
}

float* aligned_floats(int64_t floats) {
  const size_t bytes = static_cast<size_t>(round_up(std::max<int64_t>(1, floats) * 4, 64));
  auto* data = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (data == nullptr) throw std::bad_alloc();
  return data;
}

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// C = beta * C on rows [row_begin, row_end); beta == 0 writes zeros so that
// NaN or garbage already in C cannot leak into the result.
void scale_rows(const GemmArgs& g, int64_t row_begin, int64_t row_end) {
  if (g.beta == 1.0f) return;
  for (int64_t i = row_begin; i < row_end; ++i) {
    float* row = g.c + i * g.ldc;
    if (g.beta == 0.0f) {
      std::fill(row, row + g.n, 0.0f);
    } else {
      for (int64_t j = 0; j < g.n; ++j) row[j] *= g.beta;
    }
  }
}

// ---------------------------------------------------------------- naive ----

void sgemm_naive(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) {
      float sum = 0.0f;
      for (int64_t p = 0; p < g.k; ++p) sum += g.a_at(i, p) * g.b_at(p, j);
      float& out = g.c[i * g.ldc + j];
      out = g.beta == 0.0f ? g.alpha * sum : g.alpha * sum + g.beta * out;
    }
  }
}

// -------------------------------------------------------------- blocked ----

// Tiles sized so one row block of C plus a KB x NB tile of B stay in L2.
constexpr int64_t kBlockRows = 32;
constexpr int64_t kBlockDepth = 256;
constexpr int64_t kBlockCols = 512;

// C[i][j0:j1] += a_ip * op(B)[p][j0:j1]; contiguous unless B is transposed.
void axpy_row(const GemmArgs& g, float a_ip, int64_t p, int64_t j0, int64_t j1, float* c_row) {
  if (!g.trans_b) {
    const float* b_row = g.b + p * g.ldb;
    for (int64_t j = j0; j < j1; ++j) c_row[j] += a_ip * b_row[j];
  } else {
    const float* b_col = g.b + p;
    for (int64_t j = j0; j < j1; ++j) c_row[j] += a_ip * b_col[j * g.ldb];
  }
}

void blocked_row_block(const GemmArgs& g, int64_t i0, int64_t i1) {
  scale_rows(g, i0, i1);
  for (int64_t j0 = 0; j0 < g.n; j0 += kBlockCols) {
    const int64_t j1 = std::min(g.n, j0 + kBlockCols);
    for (int64_t p0 = 0; p0 < g.k; p0 += kBlockDepth) {
      const int64_t p1 = std::min(g.k, p0 + kBlockDepth);
      for (int64_t i = i0; i < i1; ++i) {
        float* c_row = g.c + i * g.ldc;
        for (int64_t p = p0; p < p1; ++p) axpy_row(g, g.alpha * g.a_at(i, p), p, j0, j1, c_row);
      }
    }
  }
}

void sgemm_blocked(const GemmArgs& g) {
  const int64_t row_blocks = ceil_div(g.m, kBlockRows);
  const bool worth_threads = g.m * g.n * g.k >= (int64_t{1} << 18);
#pragma omp parallel for schedule(static) if (worth_threads)
  for (int64_t blk = 0; blk < row_blocks; ++blk) {
    const int64_t i0 = blk * kBlockRows;
    blocked_row_block(g, i0, std::min(g.m, i0 + kBlockRows));
  }
}

// --------------------------------------------------------------- packed ----

// Grow-only 64-byte aligned scratch, one per thread, so repeated calls do not
// allocate.
class Scratch {
 public:
  ~Scratch() { std::free(data_); }
  float* get(int64_t floats) {
    if (floats > capacity_) {
      std::free(data_);
      data_ = nullptr;
      capacity_ = 0;
      data_ = aligned_floats(floats);
      capacity_ = floats;
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  int64_t capacity_ = 0;
};

thread_local Scratch t_a_scratch;
thread_local Scratch t_b_scratch;

void pack_portable(const float* src, int64_t ld, bool strided, int64_t extent, int64_t kc, int width,
                   float* dst) {
  for (int64_t j0 = 0; j0 < extent; j0 += width, dst += width * kc) {
    const int64_t live = std::min<int64_t>(width, extent - j0);
    for (int64_t p = 0; p < kc; ++p) {
      float* out = dst + p * width;
      for (int64_t j = 0; j < live; ++j) out[j] = strided ? src[(j0 + j) * ld + p] : src[p * ld + j0 + j];
      for (int64_t j = live; j < width; ++j) out[j] = 0.0f;
    }
  }
}

gemm::PackFn a_packer(const MicroKernel& uk) { return uk.pack_a ? uk.pack_a : pack_portable; }
gemm::PackFn b_packer(const MicroKernel& uk) { return uk.pack_b ? uk.pack_b : pack_portable; }

const MicroKernel& kernel_for(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return gemm::kAvx512Kernel;
    case Isa::Avx2: return gemm::kAvx2Kernel;
    default: return gemm::kGenericKernel;
  }
}

// Cut `extent` into equal blocks no larger than `cap`, rounded to `multiple`,
// so that no block is a thin leftover.
int64_t even_block(int64_t extent, int64_t cap, int64_t multiple) {
  const int64_t blocks = ceil_div(extent, cap);
  return round_up(ceil_div(extent, blocks), multiple);
}

// Depth of the K blocks: a function of k and the kernel only, never of the
// threads, because it fixes where the K sum is cut. Packed operands use it too.
int64_t k_block(const MicroKernel& uk, int64_t k) { return k <= 0 ? 1 : even_block(k, uk.kc, 1); }

// Rectangle of C owned by one thread, in units of rows/columns.
struct TileRange {
  int64_t i_begin, i_end, j_begin, j_end;
};

// B micro-panels packed per step on the first pass over a B block.
constexpr int64_t kPackGroupPanels = 4;

class PackedGemm {
 public:
  // kc_ is k_block's; mc, nc and the thread grid only partition C.
  PackedGemm(const MicroKernel& uk, const GemmArgs& g) : uk_(uk), g_(g), kc_(k_block(uk, g.k)) {}

  void run(int threads) {
    int grid_m = 1, grid_n = 1;
    choose_grid(threads, &grid_m, &grid_n);
    const int cells = grid_m * grid_n;
    if (cells == 1) {
      compute({0, g_.m, 0, g_.n});
      return;
    }
    // An exception must not leave a parallel region; carry one out instead.
    std::exception_ptr failure;
#pragma omp parallel num_threads(cells)
    {
#ifdef _OPENMP
      const int self = omp_get_thread_num(), team = omp_get_num_threads();
#else
      const int self = 0, team = 1;
#endif
      try {
        // A team smaller than asked (nested parallelism, limits) still covers every cell.
        for (int cell = self; cell < cells; cell += team) {
          compute(cell_range(cell / grid_n, grid_m, cell % grid_n, grid_n));
        }
      } catch (...) {
#pragma omp critical(pk_sgemm_failure)
        failure = std::current_exception();
      }
    }
    if (failure) std::rethrow_exception(failure);
  }

 private:
  // Split C into grid_m x grid_n rectangles of whole register tiles, choosing
  // the shape whose busiest thread does the least padded compute plus packing
  // (each thread packs the A rows and B columns of its own rectangle).
  void choose_grid(int threads, int* grid_m, int* grid_n) const {
    double best = -1.0;
    for (int gm = 1; gm <= threads; ++gm) {
      if (threads % gm != 0) continue;
      const int gn = threads / gm;
      const double rows = static_cast<double>(ceil_div(ceil_div(g_.m, uk_.mr), gm) * uk_.mr);
      const double cols = static_cast<double>(ceil_div(ceil_div(g_.n, uk_.nr), gn) * uk_.nr);
      const double k = static_cast<double>(g_.k);
      constexpr double kPackCostInFmas = 16.0;  // one packed float vs. one FMA lane
      const double a_packs = static_cast<double>(ceil_div(static_cast<int64_t>(cols), uk_.nc));
      const double cost = rows * cols * k + kPackCostInFmas * k * (rows * a_packs + cols);
      if (best < 0.0 || cost < best) {
        best = cost;
        *grid_m = gm;
        *grid_n = gn;
      }
    }
  }

  TileRange cell_range(int gi, int grid_m, int gj, int grid_n) const {
    const int64_t m_tiles = ceil_div(g_.m, uk_.mr), n_tiles = ceil_div(g_.n, uk_.nr);
    auto edge = [](int64_t tiles, int part, int parts, int64_t width, int64_t limit) {
      return std::min(limit, tiles * part / parts * width);
    };
    return {edge(m_tiles, gi, grid_m, uk_.mr, g_.m), edge(m_tiles, gi + 1, grid_m, uk_.mr, g_.m),
            edge(n_tiles, gj, grid_n, uk_.nr, g_.n), edge(n_tiles, gj + 1, grid_n, uk_.nr, g_.n)};
  }

  // Goto's five loops over one thread's rectangle of C. The B block is packed
  // piecewise during the first pass over it (see macro_kernel), not up front.
  void compute(const TileRange& r) const {
    const int64_t rows = r.i_end - r.i_begin, cols = r.j_end - r.j_begin;
    if (rows <= 0 || cols <= 0) return;
    const int64_t mc = even_block(rows, uk_.mc, uk_.mr);
    const int64_t nc = even_block(cols, uk_.nc, uk_.nr);
    float* a_pack = g_.a_packed ? nullptr : t_a_scratch.get(mc * kc_);
    // With a single row block each B panel is used by one pass only, so a
    // small ring of panels (kept in L1/L2) replaces the whole packed block.
    const bool single_pass = mc >= rows;
    const int64_t group_cols = kPackGroupPanels * uk_.nr;
    float* b_pack = g_.b_packed ? nullptr : t_b_scratch.get(kc_ * (single_pass ? group_cols : nc));
    for (int64_t jc = r.j_begin; jc < r.j_end; jc += nc) {
      const int64_t nc_now = std::min(nc, r.j_end - jc);
      for (int64_t pc = 0; pc < g_.k; pc += kc_) {
        const int64_t kc_now = std::min(kc_, g_.k - pc);
        // Only the first K block applies the caller's beta; later ones accumulate.
        const float beta = pc == 0 ? g_.beta : 1.0f;
        for (int64_t ic = r.i_begin; ic < r.i_end; ic += mc) {
          const int64_t mc_now = std::min(mc, r.i_end - ic);
          const float* a_block = g_.a_packed ? g_.a_packed->panels(pc, ic) : a_pack;
          if (!g_.a_packed) pack_a(ic, mc_now, pc, kc_now, a_pack);
          const BBlock b_block =
              g_.b_packed ? BBlock{jc, pc, kc_now, nc_now, g_.b_packed->panels(pc, jc), nullptr, false}
                          : BBlock{jc, pc, kc_now, nc_now, b_pack, ic == r.i_begin ? b_pack : nullptr,
                                   single_pass};
          macro_kernel(b_block, mc_now, a_block, g_.c + ic * g_.ldc + jc, beta);
        }
      }
    }
  }

  void pack_a(int64_t i0, int64_t rows, int64_t p0, int64_t kc, float* dst) const {
    a_packer(uk_)(a_source(g_.trans_a, g_.a, g_.lda, i0, p0), g_.lda, !g_.trans_a, rows, kc,
                  uk_.mr, dst);
  }

  const float* b_source(int64_t p0, int64_t j0) const {
    return pk::b_source(g_.trans_b, g_.b, g_.ldb, p0, j0);
  }

  void pack_b(int64_t p0, int64_t kc, int64_t j0, int64_t cols, float* dst) const {
    if (g_.b_panels != nullptr) return g_.b_panels->pack(p0, kc, j0, cols, uk_.nr, dst);
    b_packer(uk_)(b_source(p0, j0), g_.ldb, g_.trans_b, cols, kc, uk_.nr, dst);
  }

  // Walks the cache lines of a stored region of B (the next group to pack),
  // touching a few per micro-kernel call: rows of B sit ldb apart, too far
  // for hardware prefetchers, and spreading the requests lets the memory
  // reads overlap the arithmetic instead of stalling the packer.
  class Prefetcher {
   public:
    Prefetcher() = default;
    Prefetcher(const float* src, int64_t ld, int64_t rows, int64_t run) : src_(src), ld_(ld), rows_(rows), run_(run) {}
    int64_t lines() const { return rows_ * ceil_div(run_, kLineFloats); }
    void advance(int64_t count) {
      for (; count > 0 && row_ < rows_; --count) {
        __builtin_prefetch(src_ + row_ * ld_ + x_, 0, 3);
        x_ += kLineFloats;
        if (x_ >= run_) x_ = 0, ++row_;
      }
    }

   private:
    static constexpr int64_t kLineFloats = 16;
    const float* src_ = nullptr;
    int64_t ld_ = 0, rows_ = 0, run_ = 0, row_ = 0, x_ = 0;
  };

  Prefetcher b_prefetcher(int64_t p0, int64_t kc, int64_t j0, int64_t cols) const {
    if (g_.b_panels != nullptr) return Prefetcher();  // nothing stored to walk
    // Transposed B stores each column of op(B) as a contiguous run of kc.
    return g_.trans_b ? Prefetcher(b_source(p0, j0), g_.ldb, cols, kc)
                      : Prefetcher(b_source(p0, j0), g_.ldb, kc, cols);
  }

  // One KC x NC block of op(B), with whether this pass must pack it.
  struct BBlock {
    int64_t jc, pc, kc, cols;
    const float* panels;  // where the kernel reads the block's panels
    float* pack_into;     // = panels when this pass packs them, else nullptr
    bool ring;            // panels holds one group, refilled as jr advances
  };

  // jr outer, ir inner: one B micro-panel stays in L1 while A panels stream
  // from L2. On the first pass B is packed a few panels at a time just before
  // use, so freshly packed panels are consumed from cache rather than written
  // out to L3 and read back.
  void macro_kernel(const BBlock& blk, int64_t rows, const float* a_pack, float* c, float beta) const {
    const int64_t kc = blk.kc, group = kPackGroupPanels * uk_.nr;
    const int64_t calls_per_group = kPackGroupPanels * ceil_div(rows, uk_.mr);
    Prefetcher next_group;
    int64_t lines_per_call = 0;
    for (int64_t jr = 0; jr < blk.cols; jr += uk_.nr) {
      if (blk.pack_into != nullptr && jr % group == 0) {
        pack_b(blk.pc, kc, blk.jc + jr, std::min(group, blk.cols - jr),
               blk.pack_into + (blk.ring ? 0 : jr * kc));
        const int64_t next = jr + group;
        if (next < blk.cols) {
          next_group = b_prefetcher(blk.pc, kc, blk.jc + next, std::min(group, blk.cols - next));
          lines_per_call = ceil_div(next_group.lines(), calls_per_group);
        }
      }
      const int64_t tile_cols = std::min<int64_t>(uk_.nr, blk.cols - jr);
      const float* b_panel = blk.panels + (blk.ring ? jr % group : jr) * kc;
      for (int64_t ir = 0; ir < rows; ir += uk_.mr) {
        const int64_t tile_rows = std::min<int64_t>(uk_.mr, rows - ir);
        const float* a_panel = a_pack + ir * kc;
        float* c_tile = c + ir * g_.ldc + jr;
        next_group.advance(lines_per_call);
        if (tile_rows == uk_.mr && tile_cols == uk_.nr) {
          uk_.kernel(kc, a_panel, b_panel, c_tile, g_.ldc, g_.alpha, beta);
        } else {
          edge_tile(kc, a_panel, b_panel, c_tile, tile_rows, tile_cols, beta);
        }
      }
    }
  }

  // A partial tile runs the same kernel on a full-size scratch tile, so edge
  // elements get exactly the arithmetic interior elements would.
  void edge_tile(int64_t kc, const float* a_panel, const float* b_panel, float* c, int64_t rows,
                 int64_t cols, float beta) const {
    constexpr int kMaxTile = 64 * 64;
    alignas(64) float tile[kMaxTile];
    const int64_t nr = uk_.nr;
    if (beta != 0.0f) {
      std::fill(tile, tile + uk_.mr * nr, 0.0f);
      for (int64_t i = 0; i < rows; ++i) std::copy(c + i * g_.ldc, c + i * g_.ldc + cols, tile + i * nr);
    }
    if (uk_.edge != nullptr) {
      uk_.edge(kc, a_panel, b_panel, tile, nr, g_.alpha, beta, cols);
    } else {
      uk_.kernel(kc, a_panel, b_panel, tile, nr, g_.alpha, beta);
    }
    for (int64_t i = 0; i < rows; ++i) std::copy(tile + i * nr, tile + i * nr + cols, c + i * g_.ldc);
  }

  const MicroKernel& uk_;
  const GemmArgs& g_;
  const int64_t kc_;
};

// Below this many multiply-adds a parallel region costs more than it saves.
constexpr int64_t kMinWorkPerThread = int64_t{1} << 19;

int useful_threads(int64_t work) {
  const int64_t useful = std::max<int64_t>(1, work / kMinWorkPerThread);
  return static_cast<int>(std::min<int64_t>(max_threads(), useful));
}

void sgemm_packed(const GemmArgs& g, Isa isa) {
  PackedGemm(kernel_for(isa), g).run(useful_threads(g.m * g.n * g.k));
}
void sgemm_packed(const GemmArgs& g) { sgemm_packed(g, active_isa()); }

// Runs a product with a packed operand, or only C's scaling when there is nothing to add.
void sgemm_with_packed(const GemmArgs& g, Isa isa) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0 || g.alpha == 0.0f) {
    scale_rows(g, 0, g.m);
    return;
  }
  sgemm_packed(g, isa);
}

// Measured against blocked down to 8 x 8 x 8: with reused per-thread buffers
// and no threads below kMinWorkPerThread, packing costs less than the SIMD
// register tile gains at every size, so auto is simply packed.
void sgemm_auto(const GemmArgs& g) { sgemm_packed(g); }

}  // namespace

PackedOperand::PackedOperand(Side side, int64_t outer, int64_t depth)
    : side_(side), outer_(std::max<int64_t>(0, outer)), depth_(std::max<int64_t>(0, depth)),
      isa_(active_isa()) {
  const MicroKernel& uk = kernel_for(isa_);
  padded_outer_ = round_up(outer_, side == Side::A ? uk.mr : uk.nr);
  kc_ = k_block(uk, depth_);
  data_.reset(aligned_floats(padded_outer_ * depth_));
}

int64_t PackedOperand::floats(Side side, int64_t outer, int64_t depth) {
  const MicroKernel& uk = kernel_for(active_isa());
  const int64_t width = side == Side::A ? uk.mr : uk.nr;
  return round_up(std::max<int64_t>(0, outer), width) * std::max<int64_t>(0, depth);
}

const float* PackedOperand::panels(int64_t p0, int64_t at) const {
  return data_.get() + p0 * padded_outer_ + at * std::min(kc_, depth_ - p0);
}

RegisterTile register_tile(Isa isa) {
  const MicroKernel& uk = kernel_for(isa);
  return {uk.mr, uk.nr};
}

// The packed driver's K blocks, betas and tiles, without its B packing.
void sgemm_shifted_rows(const PackedOperand& a, const float* b, const int64_t* offsets,
                        int64_t j0, int64_t j1, float* c, int64_t ldc) {
  const MicroKernel& uk = kernel_for(a.isa());
  const int64_t m = a.outer(), k = a.depth(), kc = k_block(uk, k);
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc + j0, c + i * ldc + j1, 0.0f);
    return;
  }
  for (int64_t pc = 0; pc < k; pc += kc) {
    const int64_t kc_now = std::min(kc, k - pc);
    const float beta = pc == 0 ? 0.0f : 1.0f;
    for (int64_t jr = j0; jr < j1; jr += uk.nr) {
      const int64_t cols = std::min<int64_t>(uk.nr, j1 - jr);
      for (int64_t ir = 0; ir < m; ir += uk.mr) {
        uk.shifted(kc_now, a.panels(pc, ir), b + jr, offsets + pc, c + ir * ldc + jr, ldc, 1.0f,
                   beta, cols);
      }
    }
  }
}

namespace {

// Every K block of op(X), cut into pieces of whole panels packed in parallel
// (each piece is its own region of the output, so the split cannot change it).
template <typename Source>
void pack_all(const MicroKernel& uk, gemm::PackFn pack, bool strided, int64_t ld, int64_t outer,
              int64_t depth, int width, Source source, const PackedOperand& dst) {
  const int64_t kc = k_block(uk, depth), blocks = ceil_div(depth, kc);
  const int64_t piece = 8 * static_cast<int64_t>(width), pieces = ceil_div(outer, piece);
  const bool worth_threads = outer * depth >= kMinWorkPerThread / 8;
#pragma omp parallel for collapse(2) schedule(static) if (worth_threads)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    for (int64_t q = 0; q < pieces; ++q) {
      const int64_t p0 = blk * kc, j0 = q * piece;
      pack(source(p0, j0), ld, strided, std::min(piece, outer - j0), std::min(kc, depth - p0),
           width, const_cast<float*>(dst.panels(p0, j0)));
    }
  }
}

void require_side(const PackedOperand& x, PackedOperand::Side side) {
  if (x.side() != side) {
    throw std::invalid_argument(side == PackedOperand::Side::A
                                    ? "sgemm: an operand packed as B used as A"
                                    : "sgemm: an operand packed as A used as B");
  }
}

}  // namespace

PackedOperand PackedOperand::pack_a(bool trans_a, int64_t m, int64_t k, const float* a,
                                    int64_t lda) {
  PackedOperand packed(Side::A, m, k);
  const MicroKernel& uk = kernel_for(packed.isa_);
  pack_all(uk, a_packer(uk), !trans_a, lda, packed.outer_, packed.depth_, uk.mr,
           [&](int64_t p0, int64_t i0) { return a_source(trans_a, a, lda, i0, p0); }, packed);
  return packed;
}

PackedOperand PackedOperand::pack_b(bool trans_b, int64_t k, int64_t n, const float* b,
                                    int64_t ldb) {
  PackedOperand packed(Side::B, n, k);
  const MicroKernel& uk = kernel_for(packed.isa_);
  pack_all(uk, b_packer(uk), trans_b, ldb, packed.outer_, packed.depth_, uk.nr,
           [&](int64_t p0, int64_t j0) { return b_source(trans_b, b, ldb, p0, j0); }, packed);
  return packed;
}

void sgemm(const PackedOperand& a, bool trans_b, int64_t n, float alpha, const float* b,
           int64_t ldb, float beta, float* c, int64_t ldc) {
  require_side(a, PackedOperand::Side::A);
  GemmArgs g{false, trans_b, a.outer(), n, a.depth(), alpha, nullptr, 0, b, ldb, beta, c, ldc};
  g.a_packed = &a;
  sgemm_with_packed(g, a.isa());
}

void sgemm(const PackedOperand& a, const BPanelSource& b, int64_t n, float alpha, float beta,
           float* c, int64_t ldc) {
  require_side(a, PackedOperand::Side::A);
  GemmArgs g{false, false, a.outer(), n, a.depth(), alpha, nullptr, 0, nullptr, 0, beta, c, ldc};
  g.a_packed = &a;
  g.b_panels = &b;
  sgemm_with_packed(g, a.isa());
}

void sgemm(bool trans_a, int64_t m, int64_t k, float alpha, const float* a, int64_t lda,
           const BPanelSource& b, int64_t n, float beta, float* c, int64_t ldc) {
  GemmArgs g{trans_a, false, m, n, k, alpha, a, lda, nullptr, 0, beta, c, ldc};
  g.b_panels = &b;
  sgemm_with_packed(g, active_isa());
}

void pack_b_panels(const float* src, int64_t ld, bool strided, int64_t extent, int64_t kc,
                   int width, float* dst) {
  b_packer(kernel_for(active_isa()))(src, ld, strided, extent, kc, width, dst);
}

void sgemm(bool trans_a, int64_t m, float alpha, const float* a, int64_t lda,
           const PackedOperand& b, float beta, float* c, int64_t ldc) {
  require_side(b, PackedOperand::Side::B);
  GemmArgs g{trans_a, false, m, b.outer(), b.depth(), alpha, a, lda, nullptr, 0, beta, c, ldc};
  g.b_packed = &b;
  sgemm_with_packed(g, b.isa());
}

void sgemm(GemmAlgo algo, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  const GemmArgs g{trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc};
  if (k <= 0 || alpha == 0.0f) {
    scale_rows(g, 0, m);
    return;
  }
  switch (algo) {
    case GemmAlgo::Naive: sgemm_naive(g); break;
    case GemmAlgo::Blocked: sgemm_blocked(g); break;
    case GemmAlgo::Packed: sgemm_packed(g); break;
    default: sgemm_auto(g); break;
  }
}

}  // namespace pk

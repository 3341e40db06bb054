// Machine-peak probes: what the FMA units and the memory system can do, so
// that every kernel figure can be quoted as a fraction of a measured peak.
#pragma once

#include <cstdint>

#include "pykernels/isa.h"

namespace pk {

// Runs `iterations` rounds of independent multiply-adds on each of `threads`
// OpenMP threads with `isa`'s widest vectors; returns the flops performed.
double fma_peak_flops(Isa isa, int64_t iterations, int threads);

// Sums n floats with all OpenMP threads: a read-bandwidth probe.
double read_sum(const float* x, int64_t n);

// STREAM triad a[i] = b[i] + s * c[i] with all OpenMP threads: moves 12 bytes
// per element (read b and c, write a), a read+write bandwidth probe.
void triad(float* a, const float* b, const float* c, float s, int64_t n);

namespace peak {
// One thread's probe per ISA (each in its own ISA-flagged file); returns flops.
double fma_loop_generic(int64_t iterations);
double fma_loop_avx2(int64_t iterations);
double fma_loop_avx512(int64_t iterations);
}  // namespace peak

}  // namespace pk

#pragma once

#include <cstdint>

#include "common.cuh"

namespace pk::cuda {

// Runs `blocks` x 256 threads, each doing `iterations` rounds of 8
// independent FMA chains, and writes one float per thread to `sink` (so the
// work cannot be optimised away). FLOPs = blocks * 256 * iterations * 16.
void fma_peak(float* sink, int64_t blocks, int64_t iterations, cudaStream_t stream);

}  // namespace pk::cuda

// The racecheck's control (tools/racecheck.sh): each thread writes its slot of
// a shared array, then reads its neighbour's. Built with -DSYNC a barrier
// orders the two and ThreadSanitizer must stay quiet; built without it the
// read races the write and ThreadSanitizer must report it. If the second
// build is not caught, the emulator's threads no longer show races and a
// clean racecheck would mean nothing.
#include <cstdio>

#include "emu/cuda_emu.h"

__global__ void read_neighbour(const float* in, float* out) {
  __shared__ float slots[64];
  slots[threadIdx.x] = in[threadIdx.x];
#ifdef SYNC
  __syncthreads();
#endif
  out[threadIdx.x] = slots[(threadIdx.x + 1) % 64];
}

int main() {
  float in[64], out[64];
  for (int i = 0; i < 64; ++i) in[i] = float(i + 1);
  pk_emu::launch(dim3(4), dim3(64), read_neighbour)(in, out);
  std::printf("out[63] = %g\n", out[63]);
  return 0;
}

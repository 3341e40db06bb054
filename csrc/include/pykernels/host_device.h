// PK_HOST_DEVICE marks a function that both the CPU build (g++) and the GPU
// build (nvcc, or g++ for the emulator) compile: shared math such as
// dropout's generator (counter_rng.h) and SGD's update (sgd_update.h).
#pragma once

#if defined(__CUDACC__) || defined(PYKERNELS_CUDA_EMU)
#if defined(PYKERNELS_CUDA_EMU) && !defined(__CUDACC__)
// The emulator (cuda/emu/cuda_emu.h) defines these as nothing; defining them
// the same way here lets this header come before it.
#ifndef __host__
#define __host__
#endif
#ifndef __device__
#define __device__
#endif
#endif
#define PK_HOST_DEVICE __host__ __device__
#else
#define PK_HOST_DEVICE
#endif

// Scratch memory the CPU kernels keep between calls.
#pragma once

#include <cstdint>
#include <memory>

namespace pk {

// Uninitialised, grow-only scratch, one set per thread (a thread_local of its user)
// and kept between calls, as the GEMM keeps its packing buffers: every float
// is written before it is read, and both zero-filling megabytes per call and
// the page faults of fresh allocations showed in profiles (3-5% of conv4's
// backward at batch 16).
class Buffer {
 public:
  float* get(int64_t n) {
    if (n > size_) {
      data_.reset(new float[n]);
      size_ = n;
    }
    return data_.get();
  }
  float* data() const { return data_.get(); }
  // Frees a buffer grown past the cap, so one huge call does not pin its
  // scratch for the rest of the process; smaller ones stay for reuse.
  void trim() {
    if (size_ > kKeptFloats) {
      data_.reset();
      size_ = 0;
    }
  }

  static constexpr int64_t kKeptFloats = int64_t{1} << 24;  // 64 MiB

 private:
  std::unique_ptr<float[]> data_;
  int64_t size_ = 0;
};

}  // namespace pk

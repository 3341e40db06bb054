// Helpers for splitting flat element ranges across OpenMP threads.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <exception>

namespace pk {

// Carries the first exception thrown inside an OpenMP region out of it: one
// escaping the region would call std::terminate. Wrap each work item in run()
// so a failing thread still reaches the region's barriers, then rethrow()
// after the region.
class RegionFailure {
 public:
  template <typename Fn>
  void run(Fn fn) noexcept {
    try {
      fn();
    } catch (...) {
#pragma omp critical(pk_region_failure)
      if (!failure_) failure_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  std::exception_ptr failure_;
};

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kMinElementsPerThread = 1 << 15;

// Threads worth using for `n` independent elementwise items.
inline int threads_for(int64_t n, int64_t min_per_thread = kMinElementsPerThread) {
  const int64_t useful = std::max<int64_t>(1, n / min_per_thread);
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), useful));
}

// Calls body(begin, end) on contiguous chunks of [0, n), one per thread, with
// chunk starts aligned to 16 floats so each thread's vector loop starts on a
// cache line when the base pointer does.
template <typename Body>
void parallel_chunks(int64_t n, Body body) {
  const int nthreads = threads_for(n);
  if (nthreads <= 1) {
    body(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(nthreads)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t nt = omp_get_num_threads();
    const int64_t per = ((n + nt - 1) / nt + 15) / 16 * 16;
    const int64_t begin = std::min(n, t * per);
    const int64_t end = std::min(n, begin + per);
    if (begin < end) body(begin, end);
  }
}

// Calls body(begin, end) over [0, items) split into one contiguous range per
// thread; `work` (elements touched in all) decides how many threads pay off.
// Each item is handled whole by one thread, so per-item results do not depend
// on the thread count.
template <typename Body>
void parallel_ranges(int64_t items, int64_t work, Body body,
                     int64_t min_work_per_thread = kMinElementsPerThread) {
  const int nthreads =
      static_cast<int>(std::min<int64_t>(threads_for(work, min_work_per_thread), items));
  if (nthreads <= 1) {
    if (items > 0) body(int64_t{0}, items);
    return;
  }
#pragma omp parallel num_threads(nthreads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t begin = items * t / nt, end = items * (t + 1) / nt;
    if (begin < end) body(begin, end);
  }
}

// Runs body(item) for every item of [0, count), each whole on one thread of
// a team of `threads` whose nested regions (a GEMM's) get one thread, then
// after() once on each thread of the team. A GEMM's result does not depend
// on its thread count, so this changes only who computes each item.
template <typename Body, typename After>
void for_items_on_team(int64_t count, int threads, Body body, After after) {
  RegionFailure failure;
#pragma omp parallel num_threads(threads)
  {
    omp_set_num_threads(1);  // this thread's nested regions get one thread
#pragma omp for schedule(static)
    for (int64_t i = 0; i < count; ++i) failure.run([&] { body(i); });
    after();
  }
  failure.rethrow();
}

}  // namespace pk

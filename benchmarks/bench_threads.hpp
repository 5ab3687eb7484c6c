// The thread count a benchmark runs with: the one asked for, or OpenMP's
// default when none was (0 or less), set for OpenMP and so for the CPU
// backend's pool, which follows omp_get_max_threads(). Without OpenMP: 1.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ctnn::bench {

inline int use_threads(int requested) {
#if defined(_OPENMP)
  const int threads = requested > 0 ? requested : omp_get_max_threads();
  omp_set_num_threads(threads);
  return threads;
#else
  (void)requested;
  return 1;
#endif
}

}  // namespace ctnn::bench

// The median wall time of `runs` calls of f, after one untimed call (which
// warms caches and lets buffers grow), in seconds.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace ctnn::bench {

template <class F>
double median_seconds(int runs, F&& f) {
  f();
  std::vector<double> t;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace ctnn::bench

// Measures this machine's FP32 fused-multiply-add peak with the CPU backend's
// vector type: every thread runs independent FMA chains (enough to cover the
// FMA latency on two pipes) on registers only. Benchmarks report their
// GFLOP/s as a fraction of this number.
#pragma once

#include <chrono>
#include <cstdio>

#include "ctnn/backend/cpu/simd.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ctnn::bench {

template <class Arch = backend::cpu::default_arch>
double fma_peak_gflops(int threads) {
  using V = backend::cpu::simd<Arch>;
  using vec = typename V::vec;
  constexpr int chains = 24;
  constexpr long iterations = 4'000'000;
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    float sink = 0;
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      vec acc[chains];
      for (int i = 0; i < chains; ++i) acc[i] = V::set1(0.001f * static_cast<float>(i));
      const vec a = V::set1(0.999999f), b = V::set1(1e-7f);
      for (long it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
        for (int i = 0; i < chains; ++i) acc[i] = V::fma(acc[i], a, b);
      }
      alignas(64) float out[64];
      for (int i = 0; i < chains; ++i) {
        V::store(out, acc[i]);
        sink += out[0];
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double flops = 2.0 * V::width * chains * static_cast<double>(iterations) * threads;
    if (sink == 12345.0f) std::puts("");  // uses the result
    best = std::max(best, flops / s / 1e9);
  }
  return best;
}

}  // namespace ctnn::bench

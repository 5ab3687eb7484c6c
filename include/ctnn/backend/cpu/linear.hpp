// The fully connected head on the CPU backend. Weights [out][in] are repacked
// once into [out / B][in][B], so one vector load holds B output features of
// one input feature and the kernel broadcasts inputs instead of reducing
// horizontally. The layer is memory-bound (every weight is used N times), so
// items are processed four at a time to reuse each loaded weight vector.
#pragma once

#include <algorithm>
#include <cstddef>

#include "ctnn/backend/cpu/simd.hpp"
#include "ctnn/backend/cpu/thread_pool.hpp"

namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

template <class Arch>
constexpr std::size_t packed_linear_floats(int in_features, int out_features) {
  constexpr std::size_t B = static_cast<std::size_t>(block_width<Arch>);
  return (static_cast<std::size_t>(out_features) + B - 1) / B * B * static_cast<std::size_t>(in_features);
}

template <class Arch>
void pack_linear_weights(const float* w, int in_features, int out_features, float* dst) {
  constexpr int B = block_width<Arch>;
  const int blocks = (out_features + B - 1) / B;
  std::size_t at = 0;
  for (int ob = 0; ob < blocks; ++ob)
    for (int i = 0; i < in_features; ++i)
      for (int b = 0; b < B; ++b, ++at) {
        const int o = ob * B + b;
        dst[at] = o < out_features ? w[static_cast<std::size_t>(o) * in_features + i] : 0.0f;
      }
}

// y[n][o] = bias[o] + sum_i w[o][i] x[n][i]; x is dense [items][in], y dense
// [items][out]; bias padded to whole blocks. Parallel over output blocks.
template <class Arch>
void run_linear(const float* x, float* y, std::size_t items, int in_features, int out_features, const float* w,
                const float* bias, const Parallel& par) {
  using V = simd<Arch>;
  using vec = typename V::vec;
  constexpr int B = V::width;
  constexpr std::size_t group = 4;
  const long blocks = (out_features + B - 1) / B;
  const std::size_t in = static_cast<std::size_t>(in_features);
  par.at_least(static_cast<std::size_t>(blocks) * in * items, 65536)(blocks, [&](long ob, int) {
    const float* wb = w + static_cast<std::size_t>(ob) * in * B;
    for (std::size_t n0 = 0; n0 < items; n0 += group) {
      const std::size_t count = std::min(group, items - n0);
      vec acc[group];
      for (std::size_t k = 0; k < group; ++k) acc[k] = V::load(bias + static_cast<std::size_t>(ob) * B);
      for (std::size_t i = 0; i < in; ++i) {
        const vec wv = V::load(wb + i * B);
        for (std::size_t k = 0; k < count; ++k) acc[k] = V::fma(wv, V::set1(x[(n0 + k) * in + i]), acc[k]);
      }
      for (std::size_t k = 0; k < count; ++k) {
        alignas(64) float out[B];
        V::store(out, acc[k]);
        const int valid = std::min(B, out_features - static_cast<int>(ob) * B);
        std::copy(out, out + valid, y + (n0 + k) * static_cast<std::size_t>(out_features) + static_cast<std::size_t>(ob) * B);
      }
    }
  });
}

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu

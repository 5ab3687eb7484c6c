// Shared by the training tests: seeded uniform test inputs.
#pragma once

#include <cstdint>

#include <ctnn/core/init.hpp>
#include <ctnn/core/tensor.hpp>

namespace ctnn::test {
// Uniform in [-scale, scale), from a seeded SplitMix64.
inline Tensor random_tensor(Extents e, std::uint64_t seed, float scale = 1.f) {
  Tensor t(e);
  SplitMix64 rng(seed);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>((2 * rng.uniform() - 1) * scale);
  return t;
}
}  // namespace ctnn::test

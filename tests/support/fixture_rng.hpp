// The parity fixtures' PRNG, bit-for-bit the same as tests/parity/make_fixtures.py.
//
// Conv/linear weights and input images are regenerated from it instead of
// being committed, which keeps the ResNet-50 fixture at a few hundred KB.
// Every value is defined by (tensor name, flat index) alone, so any tensor can
// be produced independently and in any order:
//
//   seed   = fnv1a64(name) ^ base_seed
//   z_i    = splitmix64 output i of a generator whose state starts at `seed`
//            (= mix(seed + (i + 1) * 0x9e3779b97f4a7c15))
//   k_i    = z_i >> 40                        24 bits
//   weight = float(double(k_i - 2^23) * (sqrt(6 / fan_in) / 2^23))   fan_in = prod(shape[1:])
//   image  = float(double(k_i - 2^23) * (2 / 2^23) + offset[n][c]),
//            offset = float(double(j - 2^23) * (1 / 2^23)), j from stream name + ".offset"
//
// Each result is one correctly rounded double operation followed by one
// rounding to float, which numpy and C++ perform identically (no libm calls
// other than sqrt, which IEEE 754 requires to be correctly rounded).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ctnn::test {

inline constexpr std::uint64_t fixture_base_seed = 0x63746E6E70617269ull;  // "ctnnpari"

constexpr std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char ch : s) {
    h ^= static_cast<std::uint8_t>(ch);
    h *= 0x100000001b3ull;
  }
  return h;
}

constexpr std::uint64_t splitmix64_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Output i (0-based) of splitmix64 started from state `seed`.
constexpr std::uint64_t splitmix64_at(std::uint64_t seed, std::uint64_t i) {
  return splitmix64_mix(seed + (i + 1) * 0x9e3779b97f4a7c15ull);
}

constexpr std::uint64_t stream_seed(std::string_view name, std::uint64_t base_seed = fixture_base_seed) {
  return fnv1a64(name) ^ base_seed;
}

// Draw i of the named stream, centred: k_i - 2^23 in [-2^23, 2^23).
constexpr std::int64_t centred_draw(std::uint64_t seed, std::uint64_t i) {
  return static_cast<std::int64_t>(splitmix64_at(seed, i) >> 40) - (std::int64_t{1} << 23);
}

// Uniform in [-bound, bound): float(double(k - 2^23) * (bound / 2^23)).
inline void fill_symmetric(std::string_view name, double bound, std::span<float> out,
                           std::uint64_t base_seed = fixture_base_seed) {
  const std::uint64_t seed = stream_seed(name, base_seed);
  const double step = bound / static_cast<double>(std::int64_t{1} << 23);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<float>(static_cast<double>(centred_draw(seed, i)) * step);
}

// A conv or linear weight of the given shape (He-uniform bound sqrt(6 / fan_in)).
inline void fill_weight(std::string_view name, std::span<const std::size_t> shape, std::span<float> out,
                        std::uint64_t base_seed = fixture_base_seed) {
  if (shape.size() < 2)
    throw std::invalid_argument("fixture_rng: '" + std::string(name) + "' has rank " + std::to_string(shape.size()) +
                                "; only tensors of rank >= 2 are generated");
  std::size_t n = 1, fan_in = 1;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    n *= shape[d];
    if (d) fan_in *= shape[d];
  }
  if (n != out.size())
    throw std::invalid_argument("fixture_rng: '" + std::string(name) + "' has " + std::to_string(n) +
                                " elements but the destination holds " + std::to_string(out.size()));
  fill_symmetric(name, std::sqrt(6.0 / static_cast<double>(fan_in)), out, base_seed);
}

// An N x C x H x W input batch: noise in [-2, 2) plus a per-image, per-channel
// offset in [-1, 1), so global statistics (and pooled features) differ per image.
inline void fill_image(std::string_view name, std::size_t n, std::size_t c, std::size_t h, std::size_t w,
                       std::span<float> out, std::uint64_t base_seed = fixture_base_seed) {
  if (out.size() != n * c * h * w)
    throw std::invalid_argument("fixture_rng: image '" + std::string(name) + "' needs " +
                                std::to_string(n * c * h * w) + " floats, destination holds " +
                                std::to_string(out.size()));
  const std::uint64_t seed = stream_seed(name, base_seed);
  const std::uint64_t offset_seed = stream_seed(std::string(name) + ".offset", base_seed);
  const double noise_step = 2.0 / static_cast<double>(std::int64_t{1} << 23);
  const double offset_step = 1.0 / static_cast<double>(std::int64_t{1} << 23);
  const std::size_t plane = h * w;
  for (std::size_t nc = 0; nc < n * c; ++nc) {
    // The offset is itself rounded to float first, as numpy stores it.
    const double offset = static_cast<float>(static_cast<double>(centred_draw(offset_seed, nc)) * offset_step);
    for (std::size_t p = 0; p < plane; ++p) {
      const std::size_t i = nc * plane + p;
      out[i] = static_cast<float>(static_cast<double>(centred_draw(seed, i)) * noise_step + offset);
    }
  }
}

}  // namespace ctnn::test

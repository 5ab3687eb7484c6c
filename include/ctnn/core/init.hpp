// Parameter initialisation: torchvision's defaults, PyTorch's layer defaults,
// He/Kaiming and Xavier/Glorot (uniform and normal), and zeros. Seeded and
// reproducible across compilers and standard libraries: the generator and the
// normal transform are our own (std::normal_distribution is not portable),
// and every tensor draws from a stream keyed by its name, so initialising one
// layer never shifts the values of another.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <string_view>
#include <vector>

#include "ctnn/core/layer.hpp"

namespace ctnn {

enum class Init {
  torchvision,      // ResNet.__init__: conv Kaiming-normal (fan_out, ReLU gain); Linear as pytorch_default
  pytorch_default,  // Conv2d/Linear reset_parameters: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  he_normal,        // N(0, 2/fan_in), bias 0
  he_uniform,       // U(-sqrt(6/fan_in), sqrt(6/fan_in)), bias 0
  xavier_normal,    // N(0, 2/(fan_in+fan_out)), bias 0
  xavier_uniform,   // U(-sqrt(6/(fan_in+fan_out)), ...), bias 0
  zeros,            // weights and biases 0
};

// splitmix64: tiny, fast, and good enough for initialisation.
class SplitMix64 {
 public:
  constexpr explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  // The generator's whole state: SplitMix64(g.state()) continues where g is.
  constexpr std::uint64_t state() const { return state_; }
  constexpr std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  constexpr double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Standard normal via Box-Muller (one value per call, for simplicity).
  double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  std::uint64_t state_;
};

constexpr std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

namespace detail {
inline void fill_uniform(std::span<float> t, SplitMix64& rng, double bound) {
  for (float& v : t) v = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
}
inline void fill_normal(std::span<float> t, SplitMix64& rng, double stddev) {
  for (float& v : t) v = static_cast<float>(rng.normal() * stddev);
}
inline void fill(std::span<float> t, float value) {
  for (float& v : t) v = value;
}
}  // namespace detail

// Initialises the tensors of `tensors` (all of them, or those under the module
// path `prefix`, e.g. "fc" or "layer4.1") in `arena`.
inline void initialize(std::span<float> arena, const std::vector<TensorInfo>& tensors, Init scheme,
                       std::uint64_t seed, std::string_view prefix = {}) {
  for (const TensorInfo& t : tensors) {
    if (!prefix.empty() && !(t.name.size() > prefix.size() && t.name.starts_with(prefix) && t.name[prefix.size()] == '.'))
      continue;
    std::span<float> data = arena.subspan(t.offset, t.size);
    SplitMix64 rng(seed ^ fnv1a64(t.name));
    const double fan_in = t.fan_in, fan_out = t.fan_out;
    switch (t.role) {
      case TensorRole::bn_weight: detail::fill(data, 1.f); continue;
      case TensorRole::bn_bias: detail::fill(data, 0.f); continue;
      case TensorRole::bn_running_mean: detail::fill(data, 0.f); continue;
      case TensorRole::bn_running_var: detail::fill(data, 1.f); continue;
      default: break;
    }
    const bool is_bias = t.role == TensorRole::conv_bias || t.role == TensorRole::linear_bias;
    const bool is_conv = t.role == TensorRole::conv_weight || t.role == TensorRole::conv_bias;
    switch (scheme) {
      case Init::torchvision:
        if (is_conv && !is_bias) {
          detail::fill_normal(data, rng, std::sqrt(2.0 / fan_out));
          break;
        }
        [[fallthrough]];
      case Init::pytorch_default: detail::fill_uniform(data, rng, 1.0 / std::sqrt(fan_in)); break;
      case Init::he_normal:
        is_bias ? detail::fill(data, 0.f) : detail::fill_normal(data, rng, std::sqrt(2.0 / fan_in));
        break;
      case Init::he_uniform:
        is_bias ? detail::fill(data, 0.f) : detail::fill_uniform(data, rng, std::sqrt(6.0 / fan_in));
        break;
      case Init::xavier_normal:
        is_bias ? detail::fill(data, 0.f) : detail::fill_normal(data, rng, std::sqrt(2.0 / (fan_in + fan_out)));
        break;
      case Init::xavier_uniform:
        is_bias ? detail::fill(data, 0.f) : detail::fill_uniform(data, rng, std::sqrt(6.0 / (fan_in + fan_out)));
        break;
      case Init::zeros: detail::fill(data, 0.f); break;
    }
  }
}

}  // namespace ctnn

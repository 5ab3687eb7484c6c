// Shared helpers of the CUDA tests: the same parameters in a reference model
// and a CUDA model, informative BatchNorm state, and the error measure.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <ctnn/backend/cuda/cuda.cuh>
#include <ctnn/ctnn.hpp>

namespace ctnn::cuda_test {

// The FP32 path must agree with the reference backend this closely
// (max |diff| / max |reference| over all outputs).
inline constexpr double fp32_tolerance = 1e-4;
// TF32 keeps 10 mantissa bits per operand (FP32 accumulation); measured on
// an H100 and documented in docs/cuda-backend.md, with headroom for the
// deepest networks.
inline constexpr double tf32_tolerance = 3e-2;
// BF16 keeps 7 (the simulator measures 6-10x TF32's error on the same
// networks: tests/cuda_host). Not yet measured on a GPU: 8x TF32's bound.
inline constexpr double bf16_tolerance = 2.5e-1;

struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  double uniform(double lo, double hi) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return lo + (hi - lo) * static_cast<double>(s >> 11) / 9007199254740992.0;
  }
};

inline Tensor random_input(Extents e, std::uint64_t seed) {
  Tensor x(e);
  Rng r(seed);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(r.uniform(-1.5, 1.5));
  return x;
}

// Fresh torchvision-initialised BatchNorms are the identity, which would let
// a broken BN fold pass. Give every BN its own scale, shift and statistics.
template <class M>
void randomize_batchnorm(M& model, std::uint64_t seed) {
  Rng r(seed);
  model.update([&](Parameters& p) {
    for (const TensorInfo& t : p.infos()) {
      const std::span<float> v = p.tensor(t.name);
      switch (t.role) {
        case TensorRole::bn_weight: for (float& x : v) x = static_cast<float>(r.uniform(0.6, 1.2)); break;
        case TensorRole::bn_bias: for (float& x : v) x = static_cast<float>(r.uniform(-0.2, 0.2)); break;
        case TensorRole::bn_running_mean: for (float& x : v) x = static_cast<float>(r.uniform(-0.2, 0.2)); break;
        case TensorRole::bn_running_var: for (float& x : v) x = static_cast<float>(r.uniform(0.6, 1.6)); break;
        default: break;
      }
    }
  });
}

template <class Dst, class Src>
void copy_parameters(Dst& dst, const Src& src) {
  const std::span<const float> from = src.parameters();
  dst.update([&](Parameters& p) {
    REQUIRE(p.arena().size() == from.size());
    std::copy(from.begin(), from.end(), p.arena().begin());
  });
}

struct ErrorStats {
  double max_abs = 0, scale = 0;
  bool finite = true;
  double relative() const { return scale > 0 ? max_abs / scale : max_abs; }
};

inline ErrorStats compare(ConstTensorView got, ConstTensorView want) {
  ErrorStats s;
  REQUIRE(got.shape == want.shape);
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got.data[i])) s.finite = false;
    s.max_abs = std::max(s.max_abs, std::abs(static_cast<double>(got.data[i]) - want.data[i]));
    s.scale = std::max(s.scale, std::abs(static_cast<double>(want.data[i])));
  }
  return s;
}

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Runs `Net` on the reference backend and on the three CUDA precisions with the
// same parameters and inputs; checks logits (or probabilities) and pooled
// features. One line per comparison makes the tolerance margins visible.
template <class Net, class... Ctor>
void check_against_reference(const char* label, std::vector<Extents> inputs, Ctor... ctor) {
  Model<Net, backend::Reference> ref(ctor...);
  randomize_batchnorm(ref, 17);
  Model<Net, backend::Cuda> fp32(ctor...);
  Model<Net, backend::CudaTF32> tf32(ctor...);
  Model<Net, backend::CudaBF16> bf16(ctor...);
  copy_parameters(fp32, ref);
  copy_parameters(tf32, ref);
  copy_parameters(bf16, ref);
  std::uint64_t seed = 1;
  for (const Extents& e : inputs) {
    const Tensor x = random_input(e, seed++);
    const Capacity cap{e.n, e.h, e.w};
    auto rc = ref.make_context(cap);
    auto fc = fp32.make_context(cap);
    auto tc = tf32.make_context(cap);
    auto bc = bf16.make_context(cap);
    for (Stage stage : {Stage::output, Stage::features}) {
      const auto t0 = std::chrono::steady_clock::now();
      const Tensor want = Tensor::copy_of(stage == Stage::output ? ref.forward(x, rc) : ref.features(x, rc));
      const double ref_s = seconds_since(t0);
      const ConstTensorView a = stage == Stage::output ? fp32.forward(x, fc) : fp32.features(x, fc);
      const ErrorStats ea = compare(a, want);
      const ConstTensorView b = stage == Stage::output ? tf32.forward(x, tc) : tf32.features(x, tc);
      const ErrorStats eb = compare(b, want);
      const ConstTensorView c = stage == Stage::output ? bf16.forward(x, bc) : bf16.features(x, bc);
      const ErrorStats ec = compare(c, want);
      std::printf("  %-44s %-9s %-18s fp32 rel %.2e  tf32 rel %.2e  bf16 rel %.2e  (max |ref| %.3g, reference %.2f s)\n",
                  label, stage == Stage::output ? "output" : "features", to_string(e).c_str(), ea.relative(),
                  eb.relative(), ec.relative(), ea.scale, ref_s);
      CHECK_MESSAGE(ea.finite, label << ": FP32 produced non-finite values");
      CHECK_MESSAGE(eb.finite, label << ": TF32 produced non-finite values");
      CHECK_MESSAGE(ec.finite, label << ": BF16 produced non-finite values");
      CHECK_MESSAGE(ea.relative() <= fp32_tolerance,
                    label << " " << to_string(e) << ": FP32 relative error " << ea.relative());
      CHECK_MESSAGE(eb.relative() <= tf32_tolerance,
                    label << " " << to_string(e) << ": TF32 relative error " << eb.relative());
      CHECK_MESSAGE(ec.relative() <= bf16_tolerance,
                    label << " " << to_string(e) << ": BF16 relative error " << ec.relative());
      // BF16 rounds harder than TF32: equal errors would mean it ran another precision.
      CHECK_MESSAGE(ec.relative() > eb.relative(), label << ": BF16 no less exact than TF32");
      CHECK_MESSAGE(ea.scale > 0, label << ": the reference output is all zeros, the comparison proves nothing");
    }
  }
}

}  // namespace ctnn::cuda_test

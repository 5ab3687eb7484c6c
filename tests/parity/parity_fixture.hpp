// Loads a PyTorch parity fixture (tests/data/parity/*.safetensors, written by
// tests/parity/make_fixtures.py) into a ctnn Model and compares its outputs.
//
// A fixture stores only what the shared PRNG cannot regenerate: every tensor
// of rank <= 1 (BatchNorm statistics and affine parameters, linear biases),
// the expected outputs and pooled features, and "prng_probe.<name>" values of
// every generated tensor. Filling a model therefore proves two things besides
// the numbers: the model has exactly torchvision's tensor names and shapes
// (every stored tensor and every probe must be claimed by a model tensor), and
// the C++ generator reproduces numpy's bit for bit.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/io/safetensors.hpp>

#include "fixture_rng.hpp"

namespace ctnn::test {

inline constexpr const char* probe_prefix = "prng_probe.";
inline constexpr const char* expected_prefix = "expected.";

struct Fixture {
  io::TensorFile file;
  Extents input_shape{};

  // tests/data/<folder>/<name>.safetensors
  explicit Fixture(const std::string& name, const std::string& folder = "parity")
      : file(io::read_safetensors(std::filesystem::path(CTNN_TEST_DATA_DIR) / folder / (name + ".safetensors"))) {
    const std::string shape = metadata("input_shape");
    std::size_t d[4] = {}, k = 0, pos = 0;
    while (k < 4 && pos <= shape.size()) {
      const std::size_t next = std::min(shape.find('x', pos), shape.size());
      d[k++] = std::stoul(shape.substr(pos, next - pos));
      pos = next + 1;
    }
    REQUIRE_MESSAGE(k == 4, file.source << ": metadata input_shape '" << shape << "' is not NxCxHxW");
    input_shape = {d[0], d[1], d[2], d[3]};
  }

  std::string metadata(const std::string& key) const {
    for (const auto& [k, v] : file.metadata)
      if (k == key) return v;
    FAIL(file.source << ": no metadata '" << key << "'");
    return {};
  }

  std::vector<float> floats(const std::string& name) const {
    const io::TensorRecord* r = file.find(name);
    REQUIRE_MESSAGE(r != nullptr, file.source << ": no tensor '" << name << "'");
    std::vector<float> v(r->elements());
    io::convert_to_f32(*r, v, file.source);
    return v;
  }

  // The input batch, regenerated and checked against the stored probe.
  Tensor input() const {
    Tensor x(input_shape);
    fill_image("input", input_shape.n, input_shape.c, input_shape.h, input_shape.w, {x.data(), x.size()});
    check_probe("input", {x.data(), x.size()});
    return x;
  }

  void check_probe(const std::string& name, std::span<const float> generated) const {
    const io::TensorRecord* r = file.find(probe_prefix + name);
    REQUIRE_MESSAGE(r != nullptr, file.source << ": no PRNG probe for '" << name
                                              << "' (the model has a generated tensor torchvision does not)");
    const std::vector<float> probe = floats(probe_prefix + name);
    const std::size_t n = generated.size();
    REQUIRE(probe.size() == 4);
    const std::size_t at[4] = {0, 1, n / 2, n - 1};
    for (std::size_t i = 0; i < 4; ++i)
      REQUIRE_MESSAGE(std::memcmp(&probe[i], &generated[at[i]], sizeof(float)) == 0,
                      file.source << ": PRNG value " << at[i] << " of '" << name << "' is " << generated[at[i]]
                                  << ", numpy generated " << probe[i]);
  }

  // Rank >= 2 tensors from the PRNG, everything else from the file; then
  // checks that nothing in the file was left unclaimed.
  template <class M>
  void fill(M& model) const {
    std::set<std::string> claimed;
    model.update([&](Parameters& p) {
      for (const TensorInfo& t : p.infos()) {
        const std::span<float> dst = p.tensor(t.name);
        if (t.shape.size() >= 2) {
          fill_weight(t.name, t.shape, dst);
          check_probe(t.name, dst);
          claimed.insert(probe_prefix + t.name);
          continue;
        }
        const io::TensorRecord* r = file.find(t.name);
        REQUIRE_MESSAGE(r != nullptr, file.source << ": the model's tensor '" << t.name
                                                  << "' is not in the fixture (a torchvision name mismatch?)");
        REQUIRE_MESSAGE((r->shape.size() == t.shape.size() &&
                         std::equal(t.shape.begin(), t.shape.end(), r->shape.begin())),
                        file.source << ": '" << t.name << "' has shape " << io::shape_string(r->shape)
                                    << " in the fixture");
        io::convert_to_f32(*r, dst, file.source);
        claimed.insert(t.name);
      }
    });
    for (const io::TensorRecord& r : file.tensors) {
      if (r.name.starts_with(expected_prefix) || r.name == std::string(probe_prefix) + "input") continue;
      CHECK_MESSAGE(claimed.count(r.name) == 1,
                    file.source << ": torchvision tensor '" << r.name << "' has no counterpart in the ctnn model");
    }
  }
};

// max |actual - expected| / max |expected|, over all elements.
inline double relative_error(ConstTensorView actual, const std::vector<float>& expected) {
  REQUIRE(actual.size() == expected.size());
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(actual.data[i]) - expected[i]));
    scale = std::max(scale, std::abs(static_cast<double>(expected[i])));
  }
  REQUIRE(scale > 0);
  return diff / scale;
}

inline constexpr double parity_tolerance = 1e-4;

struct Stopwatch {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

// Runs one fixture: fills the model, checks the pooled features (when asked;
// they cost a second backbone pass on the reference backend) and the output.
template <class Net>
void check_parity(const std::string& name, bool check_features) {
  const Fixture fx(name);
  Model<Net, backend::Reference> model;
  fx.fill(model);
  const Tensor x = fx.input();
  auto ctx = model.make_context({fx.input_shape.n, fx.input_shape.h, fx.input_shape.w});

  if (check_features) {
    const std::vector<float> want = fx.floats("expected.features");
    const Stopwatch t;
    const ConstTensorView f = model.features(x, ctx);
    const double secs = t.seconds();
    REQUIRE(f.shape.n == fx.input_shape.n);
    REQUIRE(f.shape.per_item() * f.shape.n == want.size());
    const double err = relative_error(f, want);
    MESSAGE(name << " features: max rel err " << err << " (" << secs << " s)");
    CHECK(err <= parity_tolerance);
  }

  const std::vector<float> want = fx.floats("expected.output");
  const Stopwatch t;
  const ConstTensorView y = model.forward(x, ctx);
  const double secs = t.seconds();
  REQUIRE(y.shape.n == fx.input_shape.n);
  REQUIRE(y.shape.per_item() * y.shape.n == want.size());
  const double err = relative_error(y, want);
  MESSAGE(name << " output: max rel err " << err << " (" << secs << " s, " << model.backend_description() << ")");
  CHECK(err <= parity_tolerance);
}

}  // namespace ctnn::test

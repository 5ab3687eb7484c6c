// Model behaviour: run-time checks, contexts, typed predictions, thread sharing.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>

#include <cmath>
#include <stdexcept>
#include <thread>
#include <type_traits>

using namespace ctnn;

namespace {
Tensor pattern(std::size_t n, std::size_t c, std::size_t h, std::size_t w, unsigned salt = 1) {
  Tensor t(n, c, h, w);
  SplitMix64 rng(salt);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(2 * rng.uniform() - 1);
  return t;
}
using Small = ResNet20<Linear<64, 10>, Image<1, dynamic, dynamic>>;
}  // namespace

TEST_CASE("dynamic inputs: any size works, a too-small one is refused with the layer's name") {
  using Net = Network<Image<3, dynamic, dynamic>, Conv<3, 4, 7>, GlobalAvgPool, Linear<4, 2>>;
  Model<Net, backend::Reference> model;
  auto ctx = model.make_context({1, 16, 16});
  CHECK(model.forward(pattern(1, 3, 9, 13), ctx).shape == Extents{1, 2, 1, 1});
  try {
    model.forward(pattern(1, 3, 5, 9), ctx);
    FAIL("expected an error");
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    CHECK(msg.find("5x9 is too small") != std::string::npos);
    CHECK(msg.find("'0'") != std::string::npos);  // the layer's name
  }
  CHECK_THROWS_WITH_AS(model.forward(pattern(1, 2, 9, 9), ctx), doctest::Contains("2 channels, the network expects 3"),
                       std::invalid_argument);
}

TEST_CASE("features are the pooled backbone output; predict is typed by the head") {
  Model<Small, backend::Reference> model(Init::torchvision, 7);
  const Tensor x = pattern(3, 1, 28, 28);
  auto ctx = model.make_context({3, 28, 28});
  const ConstTensorView f = model.features(x, ctx);
  CHECK(f.shape == Extents{3, 64, 1, 1});
  const Tensor feats = Tensor::copy_of(f);
  const Tensor logits = Tensor::copy_of(model.forward(x, ctx));
  // The head alone, applied to the features by hand, gives the logits.
  const auto w = model.tensor("fc.weight"), b = model.tensor("fc.bias");
  for (std::size_t n = 0; n < 3; ++n)
    for (std::size_t o = 0; o < 10; ++o) {
      double acc = b[o];
      for (std::size_t i = 0; i < 64; ++i) acc += double(w[o * 64 + i]) * feats(n, i);
      CHECK(logits(n, o) == doctest::Approx(acc).epsilon(1e-5));
    }
  static_assert(std::is_same_v<decltype(model.predict(x, ctx)), Tensor>);

  Model<ResNet20<Sequential<Linear<64, 1>, Sigmoid>, Image<1, dynamic, dynamic>>, backend::Reference> binary;
  auto bctx = binary.make_context({3, 28, 28});
  const auto decisions = binary.predict(x, bctx);
  static_assert(std::is_same_v<std::decay_t<decltype(decisions)>, std::vector<BinaryPrediction>>);
  REQUIRE(decisions.size() == 3);
  for (const auto& d : decisions) CHECK(d.positive == (d.probability >= 0.5f));

  Model<ResNet20<Sequential<Linear<64, 5>, DropoutRatio<1, 2>, Softmax>, Image<1, dynamic, dynamic>>,
        backend::Reference>
      multi;
  auto mctx = multi.make_context({3, 28, 28});
  const Tensor probs = Tensor::copy_of(multi.forward(x, mctx));
  const auto classes = multi.predict(x, mctx);
  static_assert(std::is_same_v<std::decay_t<decltype(classes)>, std::vector<ClassPrediction>>);
  for (std::size_t n = 0; n < 3; ++n) {
    double sum = 0;
    for (std::size_t c = 0; c < 5; ++c) {
      sum += probs(n, c);
      CHECK(probs(n, c) <= classes[n].probability);
    }
    CHECK(sum == doctest::Approx(1.0));
    CHECK(probs(n, static_cast<std::size_t>(classes[n].label)) == classes[n].probability);
  }
}

TEST_CASE("one const model, several threads, one context each") {
  Model<Small, backend::Reference> model(Init::torchvision, 3);
  const Tensor a = pattern(2, 1, 20, 24, 11), b = pattern(1, 1, 17, 15, 12);
  auto c0 = model.make_context({2, 24, 24});
  const Tensor ya = Tensor::copy_of(model.forward(a, c0));
  const Tensor yb = Tensor::copy_of(model.forward(b, c0));
  const auto& shared = model;
  bool same_a = true, same_b = true;
  std::thread ta([&] {
    auto ctx = shared.make_context({2, 20, 24});
    for (int i = 0; i < 3; ++i) {
      const auto y = shared.forward(a, ctx);
      for (std::size_t j = 0; j < y.size(); ++j) same_a = same_a && y.data[j] == ya.data()[j];
    }
  });
  std::thread tb([&] {
    auto ctx = shared.make_context({1, 17, 15});
    for (int i = 0; i < 3; ++i) {
      const auto y = shared.forward(b, ctx);
      for (std::size_t j = 0; j < y.size(); ++j) same_b = same_b && y.data[j] == yb.data()[j];
    }
  });
  ta.join();
  tb.join();
  CHECK(same_a);
  CHECK(same_b);
}

TEST_CASE("initialisers: seeded, reproducible, with the documented scales, per layer") {
  Model<ResNet18<Linear<512, 10>>, backend::Reference> a(Init::torchvision, 5), b(Init::torchvision, 5), c(Init::torchvision, 6);
  const auto stats = [](std::span<const float> s) {
    double m = 0, m2 = 0, lo = 1e9, hi = -1e9;
    for (float v : s) m += v, m2 += double(v) * v, lo = std::min<double>(lo, v), hi = std::max<double>(hi, v);
    m /= double(s.size());
    return std::array<double, 4>{m, std::sqrt(m2 / double(s.size()) - m * m), lo, hi};
  };
  CHECK(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
  CHECK(!std::equal(a.parameters().begin(), a.parameters().end(), c.parameters().begin()));
  // torchvision: conv Kaiming-normal fan_out (std sqrt(2 / (256*9))); fc U(+-1/sqrt(512)).
  const auto conv = stats(a.tensor("layer3.1.conv1.weight"));
  CHECK(conv[0] == doctest::Approx(0).epsilon(0.002));
  CHECK(conv[1] == doctest::Approx(std::sqrt(2.0 / (256 * 9))).epsilon(0.01));
  const auto fc = stats(a.tensor("fc.weight"));
  CHECK(fc[3] <= 1 / std::sqrt(512.0));
  CHECK(fc[3] > 0.98 / std::sqrt(512.0));
  CHECK(a.tensor("bn1.weight")[3] == 1.f);
  CHECK(a.tensor("bn1.running_var")[3] == 1.f);

  // Per layer: only the head changes.
  const std::vector<float> backbone(a.tensor("layer4.1.conv2.weight").begin(), a.tensor("layer4.1.conv2.weight").end());
  a.init(Init::xavier_uniform, 9, "fc");
  CHECK(std::equal(backbone.begin(), backbone.end(), a.tensor("layer4.1.conv2.weight").begin()));
  const auto xav = stats(a.tensor("fc.weight"));
  const double bound = std::sqrt(6.0 / (512 + 10));
  CHECK(xav[3] <= bound);
  CHECK(xav[3] > 0.95 * bound);
  CHECK(xav[1] == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.05));
  CHECK(a.tensor("fc.bias")[0] == 0.f);
  a.init(Init::he_normal, 9, "fc");
  CHECK(stats(a.tensor("fc.weight"))[1] == doctest::Approx(std::sqrt(2.0 / 512)).epsilon(0.05));
  a.init(Init::xavier_normal, 9, "fc");
  CHECK(stats(a.tensor("fc.weight"))[1] == doctest::Approx(std::sqrt(2.0 / 522)).epsilon(0.05));
  a.init(Init::he_uniform, 9, "fc");
  CHECK(stats(a.tensor("fc.weight"))[3] <= std::sqrt(6.0 / 512));
  a.init(Init::zeros, 9, "fc");
  CHECK(stats(a.tensor("fc.weight"))[3] == 0.0);
}

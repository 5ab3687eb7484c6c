// Backward passes against finite differences, losses and optimisers against
// their formulas, and training that actually learns.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>

#include "train_support.hpp"

#include <cmath>
#include <vector>

using namespace ctnn;
using namespace ctnn::train;
using ctnn::test::random_tensor;

namespace {
template <class Loss, class Net>
void check_gradients(const Tensor& x, const Targets& targets, std::uint64_t seed) {
  Model<Net, backend::Reference> model(Init::torchvision, seed);
  // Non-trivial BN parameters, so their gradients are not degenerate.
  model.update([](Parameters& p) {
    SplitMix64 rng(99);
    for (const TensorInfo& t : p.infos())
      if (t.role == TensorRole::bn_weight || t.role == TensorRole::bn_bias)
        for (float& v : p.tensor(t.name)) v = static_cast<float>(t.role == TensorRole::bn_weight ? 0.5 + rng.uniform() : rng.uniform() - 0.5);
  });
  const Program& program = model.program();
  const std::vector<float> base(model.parameters().begin(), model.parameters().end());
  const auto loss_at = [&](std::vector<float> params, std::vector<float>* grads) {
    backend::Reference::TrainingExecutor ex(program, params);
    SplitMix64 rng(5);  // the same dropout mask every time
    const ConstTensorView y = ex.forward(x, Mode::train, rng);
    const double l = Loss::value(y, targets, ex.output_gradient());
    if (grads) {
      ex.backward();
      grads->assign(ex.gradients().begin(), ex.gradients().end());
    }
    return l;
  };
  std::vector<float> grads;
  loss_at(base, &grads);
  int checked = 0;
  for (const TensorInfo& t : model.tensors()) {
    if (!t.trainable()) continue;
    for (std::size_t j : {std::size_t{0}, t.size / 2, t.size - 1}) {
      const std::size_t at = t.offset + j;
      const double h = 1e-2 * std::max(0.1, std::abs(double(base[at])));
      std::vector<float> up = base, down = base;
      up[at] = static_cast<float>(base[at] + h);
      down[at] = static_cast<float>(base[at] - h);
      const double fd = (loss_at(up, nullptr) - loss_at(down, nullptr)) / (double(up[at]) - double(down[at]));
      INFO(t.name, "[", j, "] analytic ", grads[at], " finite difference ", fd);
      CHECK(std::abs(fd - grads[at]) <= 2e-3 + 3e-2 * std::abs(fd));
      ++checked;
    }
  }
  CHECK(checked >= 9);  // three elements of every learnable tensor
}
}  // namespace

TEST_CASE("gradients of every layer kind match finite differences") {
  using Net = Network<Image<2, 9, 8>, Conv<2, 4, 3, 1, 1, true>, BatchNorm<4>, ReLU, MaxPool<3, 2, 1>,
                      BasicBlock<4, 6, 2>, BasicBlock<6, 6, 1>, GlobalAvgPool, Linear<6, 5>, DropoutRatio<1, 4>,
                      Linear<5, 3>>;
  const Tensor x = random_tensor({3, 2, 9, 8}, 1);
  const std::vector<int> labels{2, 0, 1};
  check_gradients<CrossEntropy, Net>(x, {.classes = labels}, 3);
}

TEST_CASE("gradients through option-A (zero-padding) shortcuts") {
  using Net = Network<Image<2, 9, 8>, Conv<2, 4, 3, 1, 1>, BatchNorm<4>, ReLU, BasicBlock<4, 8, 2, ZeroPadShortcut>,
                      BasicBlock<8, 8, 1, ZeroPadShortcut>, GlobalAvgPool, Linear<8, 3>>;
  const Tensor x = random_tensor({4, 2, 9, 8}, 17);
  const std::vector<int> labels{2, 1, 0, 1};
  check_gradients<CrossEntropy, Net>(x, {.classes = labels}, 18);
}

TEST_CASE("gradients through grouped convolutions (a ResNeXt bottleneck)") {
  using Net = Network<Image<4, 7, 6>, Conv<4, 8, 3, 1, 1, true, 2>, BatchNorm<8>, ReLU, Bottleneck<8, 4, 2, 4, 16>,
                      GlobalAvgPool, Linear<16, 3>>;
  const Tensor x = random_tensor({3, 4, 7, 6}, 11);
  const std::vector<int> labels{1, 2, 0};
  check_gradients<CrossEntropy, Net>(x, {.classes = labels}, 12);
}

TEST_CASE("gradients through Bottleneck, Sigmoid + BCE and Softmax + its cross-entropy") {
  using Bin = Network<Image<3, 6, 6>, Bottleneck<3, 2, 2>, GlobalAvgPool, Linear<8, 1>, Sigmoid>;
  const std::vector<float> targets{1.f, 0.f, 1.f};
  check_gradients<BCE, Bin>(random_tensor({3, 3, 6, 6}, 2), {.binary = targets}, 4);
  using Logit = Network<Image<3, 5, 5>, Conv<3, 4, 3>, ReLU, GlobalAvgPool, Linear<4, 1>>;
  check_gradients<BCEWithLogits, Logit>(random_tensor({3, 3, 5, 5}, 3), {.binary = targets}, 5);
  using Soft = Network<Image<3, 5, 5>, Conv<3, 4, 3>, ReLU, GlobalAvgPool, Linear<4, 4>, Softmax>;
  const std::vector<int> labels{3, 1, 0};
  check_gradients<CrossEntropyOnProbabilities, Soft>(random_tensor({3, 3, 5, 5}, 4), {.classes = labels}, 6);
}

TEST_CASE("losses by hand") {
  Tensor y(2, 3, 1, 1), dy(2, 3, 1, 1);
  const float logits[6] = {1, 2, 3, 0, 0, 0};
  std::copy(logits, logits + 6, y.data());
  const std::vector<int> labels{2, 1};
  const double ce = CrossEntropy::value(y, {.classes = labels}, dy);
  const double l0 = -(3 - std::log(std::exp(1) + std::exp(2) + std::exp(3))), l1 = std::log(3.0);
  CHECK(ce == doctest::Approx((l0 + l1) / 2));
  CHECK(dy(1, 1) == doctest::Approx((1.0 / 3 - 1) / 2));

  Tensor z(2, 1, 1, 1), dz(2, 1, 1, 1);
  z(0, 0) = 0.f, z(1, 0) = 2.f;
  const std::vector<float> t{1.f, 0.f};
  const double bce = BCEWithLogits::value(z, {.binary = t}, dz);
  CHECK(bce == doctest::Approx((std::log(2.0) + (2 + std::log1p(std::exp(-2.0)))) / 2));
  Tensor p(2, 1, 1, 1), dp(2, 1, 1, 1);
  p(0, 0) = 0.5f, p(1, 0) = 1.f / (1.f + std::exp(-2.f));
  CHECK(BCE::value(p, {.binary = t}, dp) == doctest::Approx(bce).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(CrossEntropy::value(y, {.classes = std::vector<int>{0, 3}}, dy), doctest::Contains("outside [0, 3)"),
                       std::invalid_argument);
}

namespace {
// The optimiser's rule over a parameter vector, as a training executor runs it.
template <class O>
void take_step(O& opt, std::vector<float>& w, const std::vector<float>& g, std::vector<float>& state,
               const std::vector<unsigned char>& mask) {
  opt.begin_step();
  const auto k = static_cast<std::size_t>(opt.state_size());
  state.resize(k * w.size());
  for (std::size_t i = 0; i < w.size(); ++i)
    if (mask[i]) opt.update(w[i], g[i], state.data() + k * i, opt.lr, opt.weight_decay);
}
}  // namespace

TEST_CASE("SGD with momentum, Adam and AdamW follow PyTorch's update rules") {
  std::vector<float> w{1.f, -2.f}, state;
  const std::vector<float> g{0.5f, 1.f};
  const std::vector<unsigned char> all{1, 1}, first{1, 0};
  SGD sgd{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01};
  take_step(sgd, w, g, state, all);  // buf = g + wd*w
  CHECK(w[0] == doctest::Approx(1 - 0.1 * (0.5 + 0.01)));
  take_step(sgd, w, g, state, first);  // only the first moves
  const double g0 = 0.5 + 0.01 * (1 - 0.1 * 0.51);
  CHECK(w[0] == doctest::Approx(1 - 0.1 * 0.51 - 0.1 * (0.9 * 0.51 + g0)));
  CHECK(w[1] == doctest::Approx(-2 - 0.1 * (1 - 0.02)));

  std::vector<float> n{1.f};
  std::vector<float> ns;
  SGD nesterov{.lr = 0.1, .momentum = 0.9, .nesterov = true};
  take_step(nesterov, n, std::vector<float>{0.5f}, ns, std::vector<unsigned char>{1});
  CHECK(n[0] == doctest::Approx(1 - 0.1 * (0.5 + 0.9 * 0.5)));  // g + momentum * buf, buf = g

  std::vector<float> a{1.f}, as;
  Adam adam{.lr = 0.01};
  take_step(adam, a, std::vector<float>{0.3f}, as, std::vector<unsigned char>{1});
  CHECK(a[0] == doctest::Approx(1 - 0.01));  // the first Adam step moves by lr * sign(g)

  // AdamW decays the weight itself: w * (1 - lr * wd), then the Adam step.
  std::vector<float> d{2.f}, ds;
  AdamW adamw(0.01, 0.1);
  take_step(adamw, d, std::vector<float>{0.3f}, ds, std::vector<unsigned char>{1});
  CHECK(d[0] == doctest::Approx(2 * (1 - 0.01 * 0.1) - 0.01));
  // Adam's L2 decay adds wd * w to the gradient instead (a different number).
  std::vector<float> l{2.f}, ls;
  Adam l2{.lr = 0.01, .weight_decay = 0.1};
  take_step(l2, l, std::vector<float>{-0.1f}, ls, std::vector<unsigned char>{1});
  CHECK(l[0] == doctest::Approx(2 - 0.01));  // g + wd*w = 0.1 > 0
}

TEST_CASE("head-only fine-tuning learns and leaves the backbone untouched") {
  using Net = ResNet20<Linear<64, 4>, Image<1, dynamic, dynamic>>;
  Model<Net, backend::Reference> model(Init::torchvision, 11);
  const Tensor x = random_tensor({16, 1, 12, 12}, 7);
  // Labels from a fixed rule on the features, so that the head can learn them.
  auto ctx = model.make_context({16, 12, 12});
  const Tensor feats = Tensor::copy_of(model.features(x, ctx));
  std::vector<int> labels(16);
  for (std::size_t n = 0; n < 16; ++n) {
    std::size_t best = 0;
    for (std::size_t c = 0; c < 4; ++c)
      if (feats(n, c * 7) > feats(n, best * 7)) best = c;
    labels[n] = static_cast<int>(best);
  }
  const std::vector<float> backbone(model.tensor("layer3.2.conv2.weight").begin(), model.tensor("layer3.2.conv2.weight").end());
  const std::vector<float> head(model.tensor("fc.weight").begin(), model.tensor("fc.weight").end());
  auto trainer = make_trainer<CrossEntropy>(model, Adam{.lr = 0.05}, Scope::head_only);
  const double first = trainer.step(x, {.classes = labels});
  double last = first;
  for (int i = 0; i < 60; ++i) last = trainer.step_on_features(feats, {.classes = labels});
  CHECK(last < 0.5 * first);
  CHECK(std::equal(backbone.begin(), backbone.end(), model.tensor("layer3.2.conv2.weight").begin()));
  CHECK(!std::equal(head.begin(), head.end(), model.tensor("fc.weight").begin()));
  // Inference sees the trained head.
  const auto predictions = model.predict(x, ctx);
  int right = 0;
  for (std::size_t n = 0; n < 16; ++n) {
    std::size_t best = 0;
    for (std::size_t c = 1; c < 4; ++c)
      if (predictions(n, c) > predictions(n, best)) best = c;
    right += static_cast<int>(best) == labels[n];
  }
  CHECK(right >= 14);
}

TEST_CASE("whole-network training fits a batch and updates BatchNorm statistics") {
  using Net = Network<Image<1, 8, 8>, Conv<1, 4, 3, 1, 1>, BatchNorm<4>, ReLU, BasicBlock<4, 4, 2>, GlobalAvgPool,
                      Linear<4, 2>>;
  Model<Net, backend::Reference> model(Init::torchvision, 2);
  const Tensor x = random_tensor({8, 1, 8, 8}, 9);
  const std::vector<int> labels{0, 1, 1, 0, 1, 0, 0, 1};
  auto trainer = make_trainer<CrossEntropy>(model, SGD{.lr = 0.1, .momentum = 0.9});
  const double first = trainer.step(x, {.classes = labels});
  double last = first;
  for (int i = 0; i < 40; ++i) last = trainer.step(x, {.classes = labels});
  CHECK(last < 0.3 * first);
  CHECK(model.tensor("1.running_var")[0] != 1.f);
  CHECK(model.tensor("1.running_mean")[0] != 0.f);
}

TEST_CASE("a grouped convolution's gradients equal those of the dense convolution with block-diagonal weights") {
  // 12 -> 18 channels in 3 groups: 4 inputs and 6 outputs per group; stride 2, padding 1. The 1x1
  // conv before it receives the grouped conv's input gradient (backward-data).
  using Grouped = Network<Image<12, 7, 8>, Conv<12, 12, 1>, Conv<12, 18, 3, 2, 1, true, 3>, GlobalAvgPool, Linear<18, 4>>;
  using Dense = Network<Image<12, 7, 8>, Conv<12, 12, 1>, Conv<12, 18, 3, 2, 1, true>, GlobalAvgPool, Linear<18, 4>>;
  Model<Grouped, backend::Reference> g(Init::torchvision, 21);
  Model<Dense, backend::Reference> d(Init::zeros);
  d.update([&](Parameters& p) {
    const auto gw = g.tensor("1.weight");
    auto dw = p.tensor("1.weight");
    for (std::size_t o = 0; o < 18; ++o)
      for (std::size_t i = 0; i < 4; ++i)
        std::copy_n(gw.begin() + static_cast<long>((o * 4 + i) * 9), 9,
                    dw.begin() + static_cast<long>((o * 12 + o / 6 * 4 + i) * 9));
    for (const char* t : {"0.weight", "1.bias", "3.weight", "3.bias"}) std::ranges::copy(g.tensor(t), p.tensor(t).begin());
  });
  const Tensor x = random_tensor({3, 12, 7, 8}, 13);
  const std::vector<int> labels{3, 0, 2};
  const auto gradients = [&](auto& model) {
    backend::Reference::TrainingExecutor ex(model.program(), model.parameters());
    SplitMix64 rng(0);
    const ConstTensorView y = ex.forward(x, Mode::train, rng);
    CrossEntropy::value(y, {.classes = labels}, ex.output_gradient());
    ex.backward();
    return std::vector<float>(ex.gradients().begin(), ex.gradients().end());
  };
  const std::vector<float> gg = gradients(g), dg = gradients(d);
  const auto at = [](const auto& m, const char* name) { for (const TensorInfo& t : m.tensors()) if (t.name == name) return t.offset; return std::size_t{0}; };
  for (std::size_t o = 0; o < 18; ++o)
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t k = 0; k < 9; ++k) {
        const float a = gg[at(g, "1.weight") + (o * 4 + i) * 9 + k], b = dg[at(d, "1.weight") + (o * 12 + o / 6 * 4 + i) * 9 + k];
        CHECK(a == doctest::Approx(b).epsilon(1e-5));
      }
  for (std::size_t o = 0; o < 18; ++o) CHECK(gg[at(g, "1.bias") + o] == doctest::Approx(dg[at(d, "1.bias") + o]).epsilon(1e-5));
  for (std::size_t j = 0; j < 144; ++j)  // through backward-data
    CHECK(gg[at(g, "0.weight") + j] == doctest::Approx(dg[at(d, "0.weight") + j]).epsilon(1e-5));
}

// Each layer against values computed by hand, through the reference backend.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>

#include <cmath>
#include <vector>

using namespace ctnn;

namespace {
// Runs a one-layer (or few-layer) network on `input` with parameters set by `setup`.
template <class Net, class Setup>
Tensor run(const Tensor& input, Setup&& setup) {
  Model<Net, backend::Reference> model(Init::zeros);
  model.update(setup);
  auto ctx = model.make_context({input.shape().n, input.shape().h, input.shape().w});
  return Tensor::copy_of(model.forward(input, ctx));
}
Tensor iota(std::size_t n, std::size_t c, std::size_t h, std::size_t w, float start = 1.f) {
  Tensor t(n, c, h, w);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = start + static_cast<float>(i);
  return t;
}
}  // namespace

TEST_CASE("Conv: 3x3, padding 1, two input channels, by hand") {
  using Net = Network<Image<2, 3, 3>, Conv<2, 1, 3, 1, 1>>;
  // Input channel 0 is 1..9, channel 1 is 10..18; all weights 1 on channel 0, 2 on channel 1.
  const Tensor x = iota(1, 2, 3, 3);
  const Tensor y = run<Net>(x, [](Parameters& p) {
    auto w = p.tensor("0.weight");
    for (int i = 0; i < 9; ++i) w[static_cast<std::size_t>(i)] = 1.f, w[9 + static_cast<std::size_t>(i)] = 2.f;
  });
  REQUIRE(y.shape() == Extents{1, 1, 3, 3});
  // Centre: sum of all of channel 0 (45) + 2 * sum of channel 1 (126) = 297.
  CHECK(y(0, 0, 1, 1) == doctest::Approx(297));
  // Top-left corner sees rows 0-1, cols 0-1: ch0 1+2+4+5=12, ch1 10+11+13+14=48 -> 12 + 96 = 108.
  CHECK(y(0, 0, 0, 0) == doctest::Approx(108));
  // Bottom-right: ch0 5+6+8+9=28, ch1 14+15+17+18=64 -> 28 + 128 = 156.
  CHECK(y(0, 0, 2, 2) == doctest::Approx(156));
}

TEST_CASE("Conv: stride 2 without padding and a bias") {
  using Net = Network<Image<1, 5, 5>, Conv<1, 2, 3, 2, 0, true>>;
  const Tensor x = iota(1, 1, 5, 5, 0.f);  // x[r][c] = 5r + c
  const Tensor y = run<Net>(x, [](Parameters& p) {
    auto w = p.tensor("0.weight");
    w[4] = 1.f;    // output 0 picks the window centre
    w[9 + 0] = 1.f;  // output 1 picks the top-left of the window
    p.tensor("0.bias")[1] = 0.5f;
  });
  REQUIRE(y.shape() == Extents{1, 2, 2, 2});
  CHECK(y(0, 0, 0, 0) == 6.f);   // centre of window at (1,1)
  CHECK(y(0, 0, 1, 1) == 18.f);  // centre (3,3)
  CHECK(y(0, 1, 0, 1) == 2.5f);  // top-left (0,2) + 0.5
  CHECK(y(0, 1, 1, 0) == 10.5f); // top-left (2,0) + 0.5
}

TEST_CASE("BatchNorm uses running statistics: (x - mean) / sqrt(var + eps) * gamma + beta") {
  using Net = Network<Image<2, 1, 2>, BatchNorm<2>>;
  Tensor x(1, 2, 1, 2);
  x(0, 0, 0, 0) = 1, x(0, 0, 0, 1) = 3, x(0, 1, 0, 0) = -2, x(0, 1, 0, 1) = 4;
  const Tensor y = run<Net>(x, [](Parameters& p) {
    auto g = p.tensor("0.weight"), b = p.tensor("0.bias"), m = p.tensor("0.running_mean"), v = p.tensor("0.running_var");
    g[0] = 2, g[1] = 0.5f, b[0] = 1, b[1] = -1, m[0] = 1, m[1] = 0, v[0] = 4 - 1e-5f, v[1] = 1;
  });
  CHECK(y(0, 0, 0, 0) == doctest::Approx(1.0));                                   // (1-1)/2*2+1
  CHECK(y(0, 0, 0, 1) == doctest::Approx(3.0));                                   // (3-1)/2*2+1
  CHECK(y(0, 1, 0, 0) == doctest::Approx(-2 / std::sqrt(1 + 1e-5) * 0.5 - 1));
  CHECK(y(0, 1, 0, 1) == doctest::Approx(4 / std::sqrt(1 + 1e-5) * 0.5 - 1));
}

TEST_CASE("MaxPool: padding never wins, even over negative values") {
  using Net = Network<Image<1, 4, 4>, MaxPool<3, 2, 1>>;
  Tensor x(1, 1, 4, 4);
  for (std::size_t i = 0; i < 16; ++i) x.data()[i] = -100.f + static_cast<float>(i);
  const Tensor y = run<Net>(x, [](Parameters&) {});
  REQUIRE(y.shape() == Extents{1, 1, 2, 2});
  CHECK(y(0, 0, 0, 0) == -95.f);  // rows 0-1, cols 0-1 -> max is x[1][1] = -100 + 5
  CHECK(y(0, 0, 0, 1) == -93.f);  // rows 0-1, cols 1-3 -> x[1][3] = -100 + 4 + 3
  CHECK(y(0, 0, 1, 1) == -85.f);  // rows 1-3, cols 1-3 -> x[3][3]
}

TEST_CASE("GlobalAvgPool, Linear, ReLU, Sigmoid, Softmax and Dropout by hand") {
  using Net = Network<Image<2, 2, 2>, GlobalAvgPool, Linear<2, 3>, ReLU, DropoutRatio<1, 2>>;
  Tensor x(1, 2, 2, 2);
  for (std::size_t i = 0; i < 4; ++i) x.data()[i] = 1.f + static_cast<float>(i), x.data()[4 + i] = -4.f;
  // means: [2.5, -4]
  const Tensor y = run<Net>(x, [](Parameters& p) {
    auto w = p.tensor("1.weight");  // [3, 2]
    w[0] = 1, w[1] = 0, w[2] = 0, w[3] = 1, w[4] = 1, w[5] = 1;
    auto b = p.tensor("1.bias");
    b[0] = 0.5f, b[1] = 0, b[2] = 0;
  });
  REQUIRE(y.shape() == Extents{1, 3, 1, 1});
  CHECK(y(0, 0) == doctest::Approx(3.0));  // 2.5 + 0.5
  CHECK(y(0, 1) == 0.f);                   // relu(-4), dropout is identity at inference
  CHECK(y(0, 2) == 0.f);                   // relu(-1.5)

  using Heads = Network<Image<3, 1, 1>, Softmax>;
  Tensor z(2, 3, 1, 1);
  const float v[6] = {1, 2, 3, 1000, 1000, 1000};
  std::copy(v, v + 6, z.data());
  const Tensor s = run<Heads>(z, [](Parameters&) {});
  const double e = std::exp(1.0), sum = e + e * e + e * e * e;
  CHECK(s(0, 0) == doctest::Approx(e / sum));
  CHECK(s(0, 2) == doctest::Approx(e * e * e / sum));
  CHECK(s(1, 1) == doctest::Approx(1.0 / 3));  // large logits stay finite

  using Sig = Network<Image<2, 1, 1>, Sigmoid>;
  Tensor q(1, 2, 1, 1);
  q(0, 0) = 0.f, q(0, 1) = std::log(3.f);
  const Tensor r = run<Sig>(q, [](Parameters&) {});
  CHECK(r(0, 0) == doctest::Approx(0.5));
  CHECK(r(0, 1) == doctest::Approx(0.75));
}

TEST_CASE("BasicBlock: the ReLU follows the residual add") {
  // 1 channel, identity convs (centre tap 1), BN identity: out = relu(relu(x) + x).
  using Net = Network<Image<1, 1, 3>, BasicBlock<1, 1, 1>>;
  Tensor x(1, 1, 1, 3);
  x(0, 0, 0, 0) = -2, x(0, 0, 0, 1) = 1, x(0, 0, 0, 2) = 3;
  const Tensor y = run<Net>(x, [](Parameters& p) {
    p.tensor("0.conv1.weight")[4] = 1;
    p.tensor("0.conv2.weight")[4] = 1;
    for (const char* bn : {"0.bn1", "0.bn2"}) {
      p.tensor(std::string(bn) + ".weight")[0] = 1;
      p.tensor(std::string(bn) + ".running_var")[0] = 1 - 1e-5f;
    }
  });
  CHECK(y(0, 0, 0, 0) == 0.f);                      // relu(0 + -2)
  CHECK(y(0, 0, 0, 1) == doctest::Approx(2.0));     // relu(1 + 1)
  CHECK(y(0, 0, 0, 2) == doctest::Approx(6.0));     // relu(3 + 3)
}

// Learning-rate schedules against torch.optim.lr_scheduler's values, label
// smoothing against its formula and finite differences, and the trainer's
// parameter groups: no weight decay on BatchNorm and biases, learning-rate
// multipliers, frozen stages, gradient clipping by norm.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "train_support.hpp"

using namespace ctnn;
using namespace ctnn::train;
using ctnn::test::random_tensor;

namespace {
// Printed by torch 1.13: for i in range(n): lrs.append(opt.param_groups[0]['lr']); opt.step(); sched.step()
const double torch_step[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025};  // StepLR(3, 0.5)
const double torch_cosine[] = {0.1, 0.09757729755661011, 0.0905463412215599, 0.07959536998847742,
                               0.0657963412215599, 0.0505, 0.03520365877844011, 0.02140463001152259,
                               0.010453658778440109, 0.0034227024433899004, 0.001};  // CosineAnnealingLR(10, 0.001)
const double torch_one_cycle[] = {0.0040000000000000036, 0.052000000000000005, 0.1, 0.09504846320134738,
                                  0.0811745653949763, 0.06112620219362893, 0.03887419780637107, 0.0188258346050237,
                                  0.004951936798652629, 4e-07};  // OneCycleLR(0.1, 10, 0.3, 25, 1e4)
const double torch_linear[] = {0.025, 0.04375, 0.0625, 0.08125, 0.1, 0.1};  // LinearLR(0.25, total_iters=4)

using Small = Network<Image<2, 6, 5>, Conv<2, 4, 3, 1, 1, true>, BatchNorm<4>, ReLU, BasicBlock<4, 4, 1>, GlobalAvgPool,
                      Linear<4, 3>>;

// The update (after - before) of every tensor after one step with `options`.
std::vector<double> one_step_update(SGD sgd, TrainOptions options) {
  Model<Small, backend::Reference> model(Init::torchvision, 4);
  const std::vector<float> before(model.parameters().begin(), model.parameters().end());
  const Tensor x = random_tensor({4, 2, 6, 5}, 9);
  const std::vector<int> labels{0, 2, 1, 2};
  auto trainer = make_trainer<CrossEntropy>(model, sgd, options);
  trainer.step(x, {.classes = labels});
  std::vector<double> u(before.size());
  for (std::size_t i = 0; i < u.size(); ++i) u[i] = double(model.parameters()[i]) - before[i];
  return u;
}

const TensorInfo& info(const Model<Small, backend::Reference>& m, const std::string& name) {
  for (const TensorInfo& t : m.tensors())
    if (t.name == name) return t;
  FAIL("no tensor ", name);
  return m.tensors().front();
}
}  // namespace

TEST_CASE("schedules give torch.optim.lr_scheduler's rates") {
  const Schedule step = Schedule::step(0.1, 3, 0.5), cosine = Schedule::cosine(0.1, 10, 0.001);
  const Schedule cycle = Schedule::one_cycle(0.1, 10, 0.3, 25, 1e4);
  const Schedule warm = Schedule::constant(0.1).with_warmup(4, 0.25);
  for (long i = 0; i < 8; ++i) CHECK(step.at(i) == doctest::Approx(torch_step[i]).epsilon(1e-12));
  for (long i = 0; i < 11; ++i) CHECK(cosine.at(i) == doctest::Approx(torch_cosine[i]).epsilon(1e-9));
  for (long i = 0; i < 10; ++i) CHECK(cycle.at(i) == doctest::Approx(torch_one_cycle[i]).epsilon(1e-9));
  for (long i = 0; i < 6; ++i) CHECK(warm.at(i) == doctest::Approx(torch_linear[i]).epsilon(1e-12));
  // Warm-up multiplies the schedule underneath, which runs from step 0.
  const Schedule warm_cosine = Schedule::cosine(0.1, 10).with_warmup(5);
  CHECK(warm_cosine.at(0) == 0.0);
  CHECK(warm_cosine.at(2) == doctest::Approx(0.4 * Schedule::cosine(0.1, 10).at(2)));
  CHECK(warm_cosine.at(7) == doctest::Approx(Schedule::cosine(0.1, 10).at(7)));
  CHECK(cosine.at(50) == doctest::Approx(0.001));  // past the end: the floor
  CHECK_THROWS_WITH_AS(Schedule::cosine(-1, 10), doctest::Contains("learning rate"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(Schedule::one_cycle(0.1, 10, 1.5), doctest::Contains("0 < warm < 1"), std::invalid_argument);
}

TEST_CASE("the trainer steps along its schedule") {
  Model<Small, backend::Reference> model(Init::torchvision, 4);
  const Tensor x = random_tensor({2, 2, 6, 5}, 3);
  const std::vector<int> labels{1, 0};
  auto trainer = make_trainer<CrossEntropy>(model, SGD{.lr = 5.0},
                                            TrainOptions{.schedule = Schedule::step(0.1, 2, 0.5)});
  CHECK(trainer.learning_rate() == doctest::Approx(0.1));
  for (int i = 0; i < 3; ++i) trainer.step(x, {.classes = labels});
  CHECK(trainer.learning_rate() == doctest::Approx(0.05));  // the 4th step's rate
  CHECK(trainer.optimizer().lr == doctest::Approx(0.05));   // the 3rd step ran at 0.1 * 0.5
}

TEST_CASE("label smoothing: PyTorch's value, and its gradient by finite differences") {
  Tensor y(2, 4, 1, 1), dy(2, 4, 1, 1), scratch(2, 4, 1, 1);
  const float z[8] = {1.0f, -0.5f, 2.0f, 0.25f, 0.0f, 0.3f, -1.2f, 0.8f};
  std::copy(z, z + 8, y.data());
  const std::vector<int> labels{2, 1};
  const LossOptions smooth{.label_smoothing = 0.1};
  const double got = CrossEntropy::value(y, {.classes = labels}, dy, smooth);
  double want = 0;
  for (std::size_t n = 0; n < 2; ++n) {
    double sum = 0;
    for (std::size_t k = 0; k < 4; ++k) sum += std::exp(double(z[n * 4 + k]));
    for (std::size_t k = 0; k < 4; ++k) {
      const double q = 0.9 * (static_cast<int>(k) == labels[n]) + 0.1 / 4;
      want -= q * (z[n * 4 + k] - std::log(sum));
    }
  }
  CHECK(got == doctest::Approx(want / 2).epsilon(1e-9));
  for (std::size_t i = 0; i < 8; ++i) {
    Tensor up = Tensor::copy_of(y), down = Tensor::copy_of(y);
    up.data()[i] += 1e-3f;
    down.data()[i] -= 1e-3f;
    const double fd = (CrossEntropy::value(up, {.classes = labels}, scratch, smooth) -
                       CrossEntropy::value(down, {.classes = labels}, scratch, smooth)) /
                      (double(up.data()[i]) - double(down.data()[i]));
    CHECK(dy.data()[i] == doctest::Approx(fd).epsilon(1e-3));
  }
  const std::vector<float> binary{1.f, 0.f};
  Tensor p(2, 1, 1, 1), dp(2, 1, 1, 1);
  p(0, 0) = 0.3f, p(1, 0) = 0.6f;
  CHECK_THROWS_WITH_AS(BCE::value(p, {.binary = binary}, dp, smooth), doctest::Contains("BCE has no label smoothing"),
                       std::invalid_argument);
}

TEST_CASE("parameter groups: no decay on BatchNorm and biases, learning-rate multipliers, frozen stages") {
  const Model<Small, backend::Reference> layout;
  const SGD plain{.lr = 0.1}, decayed{.lr = 0.1, .weight_decay = 0.5};
  const std::vector<double> base = one_step_update(plain, {});
  const std::vector<double> all = one_step_update(decayed, {});
  const std::vector<double> some = one_step_update(decayed, {.decay_norm_and_bias = false});
  const Model<Small, backend::Reference> start(Init::torchvision, 4);  // the starting weights
  for (const char* name : {"0.weight", "3.conv1.weight", "5.weight"}) {  // weights: decayed either way
    const TensorInfo& t = info(layout, name);
    for (std::size_t i = t.offset; i < t.offset + t.size; i += 7) {
      CHECK(all[i] == doctest::Approx(base[i] - 0.1 * 0.5 * start.parameters()[i]).epsilon(1e-4).scale(1e-6));
      CHECK(some[i] == doctest::Approx(all[i]).epsilon(1e-6));
    }
  }
  for (const char* name : {"0.bias", "1.weight", "1.bias", "3.bn2.weight", "5.bias"}) {  // not decayed when asked
    const TensorInfo& t = info(layout, name);
    for (std::size_t i = t.offset; i < t.offset + t.size; ++i) {
      CHECK(some[i] == doctest::Approx(base[i]).epsilon(1e-6));
      if (std::abs(start.parameters()[i]) > 1e-3f)  // BatchNorm's bias starts at 0: nothing to decay
        CHECK(all[i] == doctest::Approx(base[i] - 0.1 * 0.5 * start.parameters()[i]).epsilon(1e-4));
    }
  }
  // The head at 10x the rate, the first stage frozen.
  const std::vector<double> grouped = one_step_update(plain, {.lr_scale = {{"5", 10.0}}, .frozen = {"0", "1", "3"}});
  for (const TensorInfo& t : layout.tensors()) {
    if (!t.trainable()) continue;
    for (std::size_t i = t.offset; i < t.offset + t.size; ++i) {
      if (t.name.starts_with("5."))
        CHECK(grouped[i] == doctest::Approx(10 * base[i]).epsilon(1e-4));
      else
        CHECK(grouped[i] == 0.0);
    }
  }
  Model<Small, backend::Reference> model;
  CHECK_THROWS_WITH_AS(make_trainer<CrossEntropy>(model, plain, TrainOptions{.frozen = {"layer9"}}),
                       doctest::Contains("cannot freeze 'layer9'"), std::invalid_argument);
}

TEST_CASE("gradient clipping scales the step down to the requested norm") {
  Model<Small, backend::Reference> model(Init::torchvision, 4);
  const Tensor x = random_tensor({4, 2, 6, 5}, 9);
  const std::vector<int> labels{0, 2, 1, 2};
  const std::vector<double> base = one_step_update(SGD{.lr = 0.1}, {});
  auto trainer = make_trainer<CrossEntropy>(model, SGD{.lr = 0.1}, TrainOptions{.clip_grad_norm = 0.01});
  const std::vector<float> before(model.parameters().begin(), model.parameters().end());
  trainer.step(x, {.classes = labels});
  const double norm = trainer.gradient_norm();
  REQUIRE(norm > 0.01);  // so that clipping applies
  double step_norm = 0;
  for (const TensorInfo& t : model.tensors()) {
    if (!t.trainable()) continue;  // running statistics move regardless
    for (std::size_t i = t.offset; i < t.offset + t.size; ++i) {
      const double u = double(model.parameters()[i]) - before[i], want = base[i] * 0.01 / (norm + 1e-6);
      CHECK(std::abs(u - want) <= 1e-3 * std::abs(want) + 6e-8);  // float32 storage of the weights
      step_norm += u * u;
    }
  }
  CHECK(std::sqrt(step_norm) == doctest::Approx(0.1 * 0.01).epsilon(1e-3));  // lr x the clipped norm
}

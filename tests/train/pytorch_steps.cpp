// The reference training executor against PyTorch: a few optimiser steps of
// whole networks and of a head, compared with PyTorch run in float64
// (tests/data/train/*.safetensors, made by tests/train/make_training_fixtures.py):
// ResNet-20, ResNet-18, ResNeXt-50 (grouped convolutions) and a head-only fine-tune.
//
// Every parameter's update must be at least as close to the float64 run as
// PyTorch float32's own update is (the factor is printed), or within 1e-3 of
// the tensor's largest update where PyTorch float32 is closer than that,
// beyond the half-ulp rounding of storing the parameter in float32; the
// losses and the running statistics must agree within 1e-4 too. A deliberately wrong
// formula (SGD without Nesterov) must fail the same comparison.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "../parity/parity_fixture.hpp"

using namespace ctnn;
using namespace ctnn::train;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

struct Agreement {
  double worst_ratio = 0;  // max over tensors of (ctnn's error) / (allowed error)
  std::string worst_tensor;
  double loss_error = 0;   // max relative error of the losses
  double stats_error = 0;  // max |running stat - float64| / max(1, |float64|)
  bool ok() const { return worst_ratio <= 1 && loss_error <= 1e-4 && stats_error <= 1e-4; }
};

template <class Net, class Loss, class Opt>
Agreement train_like_pytorch(const std::string& name, Opt optimizer) {
  const test::Fixture fx(name, "train");
  Model<Net, backend::Reference> model;
  fx.fill(model);
  const std::vector<float> before(model.parameters().begin(), model.parameters().end());
  const Tensor x = fx.input();
  const auto labels = split(fx.metadata("labels"));
  std::vector<int> classes;
  std::vector<float> binary;
  for (const std::string& l : labels)
    (l.find('.') != std::string::npos ? binary.push_back(std::stof(l)) : classes.push_back(std::stoi(l)));
  const Targets targets{.classes = classes, .binary = binary};
  const Scope scope = fx.metadata("scope") == "head_only" ? Scope::head_only : Scope::whole_network;
  auto trainer = make_trainer<Loss>(model, optimizer, scope);

  Agreement a;
  const std::vector<float> losses = fx.floats("expected.loss");
  REQUIRE(losses.size() == static_cast<std::size_t>(std::stoi(fx.metadata("steps"))));
  for (float want : losses) {
    const double got = trainer.step(x, targets);
    a.loss_error = std::max(a.loss_error, std::abs(got - want) / std::max(1e-3, std::abs(double(want))));
  }
  for (const TensorInfo& t : model.tensors()) {
    if (!t.trainable()) {
      const std::vector<float> want = fx.floats("expected.final." + t.name);
      for (std::size_t i = 0; i < t.size; ++i)
        a.stats_error = std::max(a.stats_error, std::abs(double(model.parameters()[t.offset + i]) - want[i]) /
                                                    std::max(1.0, std::abs(double(want[i]))));
      continue;
    }
    const std::vector<float> want = fx.floats("expected.update." + t.name);
    const double err32 = fx.floats("expected.err32." + t.name)[0];
    const double largest = fx.floats("expected.max_update." + t.name)[0];
    const std::size_t probes = std::min<std::size_t>(t.size, 64);
    REQUIRE(want.size() == probes);
    double err = 0;
    for (std::size_t i = 0; i < probes; ++i) {
      const std::size_t at = t.offset + (probes > 1 ? i * (t.size - 1) / (probes - 1) : 0);
      // Parameters are stored in float32 (here and in PyTorch float32): the
      // stored result carries up to half a unit in the last place of rounding.
      const float after = model.parameters()[at];
      const double update = double(after) - double(before[at]);
      const double storage = 0.5 * (std::nextafter(std::abs(after), INFINITY) - std::abs(after));
      err = std::max(err, std::abs(update - want[i]) - storage);
    }
    const double allowed = std::max(err32, 1e-3 * largest);
    const double ratio = allowed > 0 ? err / allowed : (err > 0 ? INFINITY : 0);
    if (ratio > a.worst_ratio) a.worst_ratio = ratio, a.worst_tensor = t.name;
  }
  MESSAGE(name << ": worst update error " << a.worst_ratio << " x the allowed (" << a.worst_tensor
               << "), losses within " << a.loss_error << ", running statistics within " << a.stats_error);
  return a;
}

}  // namespace

TEST_CASE("ResNet-20, whole network, SGD with Nesterov and weight decay: three steps as PyTorch float64") {
  using Net = ResNet20<Linear<64, 10>, Image<1, 13, 11>>;
  const SGD sgd{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true};
  const Agreement a = train_like_pytorch<Net, CrossEntropy>("resnet20_sgd_nesterov", sgd);
  CHECK(a.ok());
  // The comparison can fail: plain momentum instead of Nesterov is caught.
  SGD wrong = sgd;
  wrong.nesterov = false;
  CHECK_FALSE(train_like_pytorch<Net, CrossEntropy>("resnet20_sgd_nesterov", wrong).ok());
}

TEST_CASE("ResNet-18 at 37x45, whole network, Adam: two steps as PyTorch float64") {
  using Net = ResNet18<Linear<512, 10>, Image<3, 37, 45>>;
  CHECK(train_like_pytorch<Net, CrossEntropy>("resnet18_adam_37x45", Adam{.lr = 1e-3, .eps = 1e-3}).ok());
}

// One step: from this starting point ResNeXt-50's second step is chaotic in any
// float32 implementation (perturbing the float64 run's weights by 1e-6
// relative moves its second loss by 4%; PyTorch float32's second loss is off
// by 0.4 to 6% depending on the learning rate), so only the first step's update
// is a fair comparison.
TEST_CASE("ResNeXt-50 32x4d at 96x96, whole network, SGD with momentum: one step as PyTorch float64") {
  using Net = ResNeXt50_32x4d<Linear<2048, 5>, Image<3, 96, 96>>;
  const SGD sgd{.lr = 1e-3, .momentum = 0.9, .weight_decay = 1e-4};
  CHECK(train_like_pytorch<Net, CrossEntropy>("resnext50_sgd_96x96", sgd).ok());
}

TEST_CASE("ResNet-20 head-only Sigmoid + BCE fine-tune: three steps as PyTorch float64, the backbone untouched") {
  using Net = ResNet20<Sequential<Linear<64, 1>, Sigmoid>, Image<1, 13, 11>>;
  CHECK(train_like_pytorch<Net, BCE>("resnet20_head_bce", SGD{.lr = 0.2, .momentum = 0.9}).ok());
}

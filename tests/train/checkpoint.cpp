// A run saved and resumed from a checkpoint takes exactly the steps of the
// uninterrupted run: the same losses and the same parameters, bit for bit
// (optimiser state, step count and schedule position, dropout RNG, BatchNorm
// statistics and data order all restored); and bad checkpoints are refused.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>
#include <ctnn/data/batches.hpp>

#include <filesystem>
#include <vector>

#include "temp_path.hpp"

using namespace ctnn;
using namespace ctnn::train;

namespace {
using Net = ResNet20<Sequential<DropoutRatio<1, 4>, Linear<64, 3>>, Image<1, 10, 10>>;

data::ImageDataset images() {
  std::vector<std::uint8_t> px(24 * 100);
  std::vector<int> labels(24);
  SplitMix64 rng(4);
  for (auto& p : px) p = static_cast<std::uint8_t>(rng.next() >> 56);
  for (std::size_t i = 0; i < 24; ++i) labels[i] = static_cast<int>(i % 3);
  return data::ImageDataset(std::move(px), std::move(labels), 1, 10, 10, 3);
}

template <class Backend, class Opt>
auto make(Model<Net, Backend>& model, Opt opt) {
  return make_trainer<CrossEntropy>(model, opt,
                                    TrainOptions{.seed = 9, .schedule = Schedule::cosine(0.05, 12).with_warmup(2)});
}

// Steps [first, last) of a run over 2 epochs of 3 batches, returning the losses.
template <class T>
std::vector<double> run(T& trainer, data::Batches& batches, std::size_t first, std::size_t last) {
  std::vector<double> losses;
  for (std::size_t s = first; s < last; ++s) {
    if (s % batches.count() == 0 || s == first) batches.start_epoch(s / batches.count());
    const data::Batch x = batches.get(s % batches.count());
    losses.push_back(trainer.step(x.images, {.classes = x.labels}));
  }
  return losses;
}
}  // namespace

TEST_CASE_TEMPLATE("resuming from a checkpoint reproduces the uninterrupted run bit for bit", Backend,
                   backend::Reference, backend::Cpu) {
  const data::ImageDataset d = images();
  const data::BatchOptions opts{.augment = {.crop_padding = 1, .horizontal_flip = true}};
  const Adam adam{.lr = 0.05, .weight_decay = 1e-4};
  const auto path = ctnn_test::temp_path("checkpoint_test.safetensors");

  Model<Net, Backend> whole(Init::torchvision, 2);
  auto straight = make(whole, adam);
  data::Batches b1(d, 8, 5, opts);
  const std::vector<double> all = run(straight, b1, 0, 6);

  Model<Net, Backend> first(Init::torchvision, 2);
  auto part = make(first, adam);
  data::Batches b2(d, 8, 5, opts);
  std::vector<double> losses = run(part, b2, 0, 4);
  save_checkpoint(part, path, {.epoch = 1, .batch = 1});

  Model<Net, Backend> second(Init::zeros);  // a fresh process would start from anything
  auto resumed = make(second, adam);
  const Progress at = load_checkpoint(resumed, path);
  CHECK(at.epoch == 1);
  CHECK(at.batch == 1);
  data::Batches b3(d, 8, 5, opts);
  const std::vector<double> rest = run(resumed, b3, 4, 6);
  losses.insert(losses.end(), rest.begin(), rest.end());
  REQUIRE(losses.size() == all.size());
  for (std::size_t i = 0; i < all.size(); ++i) CHECK(losses[i] == all[i]);
  CHECK(std::equal(whole.parameters().begin(), whole.parameters().end(), second.parameters().begin(),
                   second.parameters().end()));

  // The model's tensors are a state_dict PyTorch can load (beside the optimiser's entries).
  const io::TensorFile f = io::read_weights(path);
  CHECK(f.find("layer3.2.bn2.running_var") != nullptr);
  CHECK(f.find("fc.1.weight") != nullptr);
  CHECK(f.find("optimizer.state") != nullptr);

  // Refusals: another scope, another optimiser's state size, not a checkpoint.
  Model<Net, Backend> other(Init::zeros);
  auto head = make_trainer<CrossEntropy>(other, adam, Scope::head_only);
  CHECK_THROWS_WITH_AS(load_checkpoint(head, path), doctest::Contains("trained whole_network"), io::LoadError);
  auto sgd = make_trainer<CrossEntropy>(other, SGD{.lr = 0.1, .momentum = 0.9});
  CHECK_THROWS_WITH_AS(load_checkpoint(sgd, path), doctest::Contains("this optimizer keeps"), io::LoadError);
  other.save(path);
  auto plain = make_trainer<CrossEntropy>(other, adam);
  CHECK_THROWS_WITH_AS(load_checkpoint(plain, path), doctest::Contains("not a ctnn training checkpoint"),
                       io::LoadError);
  std::filesystem::remove(path);
}

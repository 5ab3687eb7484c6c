// train::fit, the epoch loop: resume from its checkpoint equals the
// uninterrupted run (history and parameters, bit for bit), early stopping
// and keep-best by validation accuracy, the JSON log; and the confusion
// matrix it reports against hand counts.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>
#include <ctnn/train/fit.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "temp_path.hpp"

using namespace ctnn;
using namespace ctnn::train;

namespace {
using Net = ResNet20<Linear<64, 3>, Image<1, 10, 10>>;

data::ImageDataset images(std::size_t n, std::uint64_t seed) {
  std::vector<std::uint8_t> px(n * 100);
  std::vector<int> labels(n);
  SplitMix64 rng(seed);
  for (std::size_t i = 0; i < n; ++i) {
    labels[i] = static_cast<int>(i % 3);
    for (std::size_t p = 0; p < 100; ++p)  // a class-dependent brightness, so that there is something to learn
      px[i * 100 + p] = static_cast<std::uint8_t>((rng.next() >> 58) + 60 * labels[i]);
  }
  return data::ImageDataset(std::move(px), std::move(labels), 1, 10, 10, 3);
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::filesystem::path temp(const char* name) { return ctnn_test::temp_path(name); }

template <class M>
auto make(M& model) {
  return make_trainer<CrossEntropy>(model, SGD{.lr = 0.05, .momentum = 0.9, .nesterov = true},
                                    TrainOptions{.seed = 3, .schedule = Schedule::cosine(0.05, 4 * 3)});
}
}  // namespace

TEST_CASE("fit: stopping after 2 epochs and resuming from the checkpoint equals the uninterrupted run") {
  const data::ImageDataset train = images(24, 1), val = images(12, 2);
  const data::BatchOptions opts{.augment = {.crop_padding = 1, .horizontal_flip = true}};
  const FitOptions base{.epochs = 4, .eval_batch = 5, .progress = ProgressStyle::quiet};

  Model<Net, backend::Cpu> whole(Init::torchvision, 2);
  auto straight = make(whole);
  data::Batches b1(train, 8, 5, opts);
  const FitResult all = fit(straight, b1, &val, base);
  REQUIRE(all.history.size() == 4);

  FitOptions first_half = base;
  first_half.stop_after = 2;
  first_half.checkpoint = temp("ctnn_fit_test.ckpt.safetensors");
  {
    Model<Net, backend::Cpu> m(Init::torchvision, 2);
    auto t = make(m);
    data::Batches b(train, 8, 5, opts);
    CHECK(fit(t, b, &val, first_half).history.size() == 2);
  }
  Model<Net, backend::Cpu> resumed(Init::torchvision, 7);  // another initialisation: the checkpoint replaces it
  auto t = make(resumed);
  data::Batches b2(train, 8, 5, opts);
  const Progress at = load_checkpoint(t, first_half.checkpoint);
  CHECK(at.epoch == 2);
  REQUIRE(at.history.size() == 2);
  const FitResult rest = fit(t, b2, &val, base, at);
  REQUIRE(rest.history.size() == 4);
  for (std::size_t e = 0; e < 4; ++e) {
    CAPTURE(e);
    CHECK(rest.history[e].epoch == e + 1);
    CHECK(rest.history[e].train_loss == all.history[e].train_loss);
    CHECK(rest.history[e].train_accuracy == all.history[e].train_accuracy);
    CHECK(rest.history[e].val_loss == all.history[e].val_loss);
    CHECK(rest.history[e].learning_rate == all.history[e].learning_rate);
  }
  const auto p = resumed.parameters(), q = whole.parameters();
  CHECK(std::equal(p.begin(), p.end(), q.begin(), q.end()));
  std::filesystem::remove(first_half.checkpoint);
}

TEST_CASE("fit: early stopping and keep-best follow the validation accuracy") {
  const data::ImageDataset train = images(24, 1), val = images(12, 2);
  Model<Net, backend::Cpu> model(Init::torchvision, 2);
  auto trainer = make(model);
  data::Batches batches(train, 8, 5);
  FitOptions o{.epochs = 10, .progress = ProgressStyle::quiet, .log = temp("ctnn_fit_test.jsonl"),
               .best = temp("ctnn_fit_best.safetensors"), .patience = 2,
               .min_delta = 1.0};  // nothing beats epoch 1 by 100 points: it stays the best
  const FitResult r = fit(trainer, batches, &val, o);
  CHECK(r.stopped_early);
  CHECK(r.history.size() == 3);  // epoch 1, then 2 epochs without improvement
  CHECK(r.best_epoch == 1);
  CHECK(r.best_accuracy == r.history[0].val_accuracy);
  // The log: one line per epoch, in order.
  const std::string log = slurp(o.log);
  CHECK(std::count(log.begin(), log.end(), '\n') == 3);
  CHECK(log.find("{\"epoch\":3,") != std::string::npos);

  // The best file is the model after epoch 1: the same run stopped there saves the same bytes.
  Model<Net, backend::Cpu> again(Init::torchvision, 2);
  auto t2 = make(again);
  data::Batches b2(train, 8, 5);
  fit(t2, b2, &val, {.epochs = 10, .stop_after = 1, .progress = ProgressStyle::quiet});
  again.save(temp("ctnn_fit_epoch1.safetensors"));
  CHECK(slurp(o.best) == slurp(temp("ctnn_fit_epoch1.safetensors")));
  for (const auto& f : {o.log, o.best, temp("ctnn_fit_epoch1.safetensors")}) std::filesystem::remove(f);
}

TEST_CASE("fit: a validation-free run and the epoch record's JSON") {
  const data::ImageDataset train = images(16, 1);
  Model<Net, backend::Cpu> model(Init::torchvision, 2);
  auto trainer = make(model);
  data::Batches batches(train, 8, 5);
  const FitResult r = fit(trainer, batches, nullptr, {.epochs = 1, .progress = ProgressStyle::quiet});
  REQUIRE(r.history.size() == 1);
  CHECK(r.best_epoch == 0);
  CHECK(std::isnan(r.history[0].val_accuracy));
  const std::string line = json_line(r.history[0]);
  CHECK(line.find("\"val_accuracy\":null") != std::string::npos);  // JSON has no NaN
  CHECK(line.rfind("{\"epoch\":1,", 0) == 0);
  CHECK_THROWS_WITH_AS(fit(trainer, batches, nullptr, {.epochs = 2}, Progress{1, 0, {}}),
                       "ctnn: resuming at epoch 1 with a history of 0 epochs", std::invalid_argument);
}

TEST_CASE("fit: head-only training on cached features equals the uncached run, bit for bit") {
  // 20 images in batches of 8 (a short last batch), shuffled per epoch: the
  // first epoch fills the cache, the others train on it in other orders.
  const data::ImageDataset train = images(20, 1), val = images(12, 2);
  auto run = [&](bool cache) {
    Model<Net, backend::Cpu> model(Init::torchvision, 2);
    auto trainer = make_trainer<CrossEntropy>(model, Adam{.lr = 1e-2},
                                              TrainOptions{.scope = Scope::head_only, .seed = 3});
    data::Batches batches(train, 8, 5);
    const FitResult r = fit(trainer, batches, &val,
                            {.epochs = 3, .progress = ProgressStyle::quiet, .cache_features = cache});
    return std::pair(r.history, std::vector<float>(model.parameters().begin(), model.parameters().end()));
  };
  const auto [plain, plain_params] = run(false);
  const auto [cached, cached_params] = run(true);
  REQUIRE(cached.size() == 3);
  for (std::size_t e = 0; e < 3; ++e) {
    CAPTURE(e);
    CHECK(cached[e].train_loss == plain[e].train_loss);
    CHECK(cached[e].train_accuracy == plain[e].train_accuracy);
    CHECK(cached[e].val_loss == plain[e].val_loss);
  }
  CHECK(plain[2].train_loss < plain[0].train_loss);  // the head learns
  CHECK(cached_params == plain_params);

  // Caching features of a backbone that trains would train on stale features.
  Model<Net, backend::Cpu> model(Init::torchvision, 2);
  auto whole = make(model);
  data::Batches batches(train, 8, 5);
  CHECK_THROWS_WITH_AS(fit(whole, batches, nullptr, {.epochs = 1, .progress = ProgressStyle::quiet, .cache_features = true}),
                       doctest::Contains("cache_features needs head-only training"), std::invalid_argument);
}

TEST_CASE("confusion matrix: counts, accuracies, merging, the table") {
  ConfusionMatrix m(3);
  const int pairs[][2] = {{0, 0}, {0, 0}, {0, 1}, {1, 1}, {2, 0}, {2, 2}, {2, 2}, {2, 1}};
  for (const auto& p : pairs) m.add(p[0], p[1]);
  CHECK(m.total() == 8);
  CHECK(m.correct() == 5);
  CHECK(m.accuracy() == doctest::Approx(5.0 / 8));
  CHECK(m.class_accuracy(0) == doctest::Approx(2.0 / 3));
  CHECK(m.class_accuracy(1) == 1.0);
  CHECK(m.class_accuracy(2) == 0.5);
  CHECK(m.count(2, 1) == 1);
  ConfusionMatrix other(3);
  other.add(1, 2);
  m.merge(other);
  CHECK(m.total() == 9);
  CHECK(m.class_accuracy(1) == 0.5);
  const std::vector<std::string> names{"cat", "dog", "hen"};
  const std::string t = m.table(names);
  CHECK(t.find("cat    66.67%   0") != std::string::npos);
  CHECK(t.find("hen    50.00%   2           1   1   2\n") != std::string::npos);
  CHECK_THROWS_AS(m.add(3, 0), std::out_of_range);
  CHECK_THROWS_AS(m.merge(ConfusionMatrix(2)), std::invalid_argument);
  CHECK_THROWS_AS(m.table(std::vector<std::string>{"a"}), std::invalid_argument);
}

// The training architecture: the tape's in-place and fan-in decisions, a
// training step that allocates nothing after the first, BatchNorm momentum
// from the layer, movable models, and inference refreshed for the trained
// ops only.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>

#include "train_support.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "allocation_counter.hpp"

using namespace ctnn;
using namespace ctnn::train;
using ctnn::test::random_tensor;

namespace {
const TapeOp& tape_op(const Tape& t, const Program& p, std::string_view name, OpKind kind) {
  for (const TapeOp& to : t.ops)
    if (p.ops[to.op].name == name && p.ops[to.op].kind == kind) return to;
  FAIL("no op ", name);
  return t.ops.front();
}
}  // namespace

TEST_CASE("the tape runs element-wise ops in place only when nothing needs what they overwrite") {
  using Net = Network<Image<2, 8, 8>, Conv<2, 4, 3, 1, 1>, BatchNorm<4>, ReLU, BasicBlock<4, 6, 2>, GlobalAvgPool,
                      Linear<6, 3>, Sigmoid>;
  Model<Net, backend::Reference> model;
  const Program& p = model.program();
  const Tape t = make_tape(p, 0, p.ops.size());
  REQUIRE(t.ops.size() == p.ops.size());
  // BatchNorm keeps its input (the conv's output) for backward: a new buffer.
  const TapeOp& bn = tape_op(t, p, "1", OpKind::batch_norm);
  CHECK_FALSE(bn.in_place);
  // ReLU after BatchNorm overwrites BN's output, which nothing else needs.
  const TapeOp& relu = tape_op(t, p, "2", OpKind::relu);
  CHECK(relu.in_place);
  CHECK(t.buffer[static_cast<std::size_t>(relu.out)] == t.buffer[static_cast<std::size_t>(relu.in)]);
  CHECK(t.buffer[static_cast<std::size_t>(relu.d_in)] == t.buffer[static_cast<std::size_t>(relu.d_out)]);
  // The block's input is read twice (conv1 and the projection): its gradient
  // is assigned by the later reader's backward and accumulated by the earlier.
  const TapeOp& conv1 = tape_op(t, p, "3.conv1", OpKind::conv);
  const TapeOp& proj = tape_op(t, p, "3.downsample.0", OpKind::conv);
  CHECK(conv1.in == proj.in);
  CHECK(conv1.in == relu.out);
  CHECK(proj.op < conv1.op);  // lowered projection-first
  CHECK_FALSE(conv1.accumulate_in);
  CHECK(proj.accumulate_in);
  // The add rewrites bn2's output in place; the residual's gradient is a copy.
  const TapeOp& add = tape_op(t, p, "3", OpKind::add);
  CHECK(add.in_place);
  CHECK(add.d_res != no_value);
  // Sigmoid keeps its output, so the range output is a live buffer at the loss.
  CHECK(t.output == t.ops.back().out);
  // The first conv reads the caller's input: no gradient for it.
  CHECK(t.ops.front().d_in == no_value);
  // Buffers are shared by liveness: fewer slots than buffers.
  CHECK(t.slots.slots < static_cast<int>(t.slots.slot_of.size()));

  // A range must not read values computed before it.
  CHECK_THROWS_WITH_AS(make_tape(p, conv1.op, p.ops.size()), doctest::Contains("reads a value computed before the range"),
                       std::logic_error);
}

TEST_CASE_TEMPLATE("a whole-network training step allocates nothing after the first", Backend, backend::Reference,
                   backend::Cpu) {
  using Net = ResNet20<Linear<64, 4>, Image<1, 9, 9>>;
  Model<Net, Backend> model(Init::torchvision, 3);
  const Tensor x = random_tensor({4, 1, 9, 9}, 2);
  const std::vector<int> labels{0, 3, 1, 2};
  auto trainer = make_trainer<CrossEntropy>(model, SGD{.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4});
  // The CPU backend's inference view re-packs weights with scratch of its own:
  // refreshing it each step is not part of the training step.
  if constexpr (std::is_same_v<Backend, backend::Cpu>) trainer.sync_every_step(false);
  trainer.step(x, {.classes = labels});
  REQUIRE(ctnn_test::count_allocations([] {
            static std::vector<float>* volatile sink;
            sink = new std::vector<float>(8);
            delete sink;
          }) >= 2);
  const long n = ctnn_test::count_allocations([&] {
    trainer.step(x, {.classes = labels});
    trainer.step(x, {.classes = labels});
  });
  CHECK(n == 0);
}

TEST_CASE("profiling times every op of the tape, forward and backward, and changes no result") {
  using Net = ResNet20<Linear<64, 4>, Image<1, 9, 9>>;
  const Tensor x = random_tensor({4, 1, 9, 9}, 2);
  const std::vector<int> labels{0, 3, 1, 2};
  Model<Net> plain(Init::torchvision, 3), profiled(Init::torchvision, 3);
  auto a = make_trainer<CrossEntropy>(plain, SGD{.lr = 0.05, .momentum = 0.9});
  auto b = make_trainer<CrossEntropy>(profiled, SGD{.lr = 0.05, .momentum = 0.9});
  b.executor().set_profiling(true);
  for (int s = 0; s < 3; ++s) CHECK(a.step(x, {.classes = labels}) == b.step(x, {.classes = labels}));
  const auto& prof = b.executor().op_profile();
  const Tape& tape = b.executor().tape();
  REQUIRE(prof.size() == tape.ops.size());
  for (std::size_t k = 0; k < prof.size(); ++k) {
    INFO(prof[k].name);
    CHECK(prof[k].name == profiled.program().ops[tape.ops[k].op].name);
    CHECK(prof[k].kind == profiled.program().ops[tape.ops[k].op].kind);
    CHECK(prof[k].forward_ms.size() == 3);
    CHECK(prof[k].backward_ms.size() == 3);
    CHECK(std::all_of(prof[k].forward_ms.begin(), prof[k].forward_ms.end(), [](double t) { return t >= 0; }));
  }
  CHECK(b.executor().optimizer_profile().size() == 3);
  CHECK(std::equal(plain.parameters().begin(), plain.parameters().end(), profiled.parameters().begin()));
  b.executor().set_profiling(false);
  b.step(x, {.classes = labels});
  CHECK(b.executor().op_profile().front().forward_ms.empty());
}

TEST_CASE("BatchNorm momentum comes from the layer, cumulative average included") {
  // BatchNorm on the input, so the batch statistics are those of the input.
  const Tensor x = random_tensor({3, 2, 4, 5}, 8);
  std::vector<double> mean(2, 0), unbiased(2, 0);
  const double m = 3 * 4 * 5;
  for (std::size_t c = 0; c < 2; ++c) {
    for (std::size_t n = 0; n < 3; ++n)
      for (std::size_t j = 0; j < 20; ++j) mean[c] += x.data()[(n * 2 + c) * 20 + j] / m;
    for (std::size_t n = 0; n < 3; ++n)
      for (std::size_t j = 0; j < 20; ++j) unbiased[c] += std::pow(x.data()[(n * 2 + c) * 20 + j] - mean[c], 2) / (m - 1);
  }
  const std::vector<int> labels{0, 1, 0};
  const auto after_two_steps = [&](auto model) {
    auto trainer = make_trainer<CrossEntropy>(model, SGD{.lr = 0.0});  // lr 0: the same batch statistics twice
    trainer.step(x, {.classes = labels});
    trainer.step(x, {.classes = labels});
    return std::pair{model.tensor("0.running_mean")[1], model.tensor("0.running_var")[1]};
  };
  using Default = Network<Image<2, 4, 5>, BatchNorm<2>, GlobalAvgPool, Linear<2, 2>>;
  using Half = Network<Image<2, 4, 5>, BatchNorm<2, MomentumRatio<1, 2>>, GlobalAvgPool, Linear<2, 2>>;
  using Cumulative = Network<Image<2, 4, 5>, BatchNorm<2, CumulativeAverage>, GlobalAvgPool, Linear<2, 2>>;
  // From running_mean 0 and running_var 1: r <- (1 - f) r + f s, twice.
  const auto expect = [&](double f1, double f2) {
    const double rm = (1 - f2) * ((1 - f1) * 0 + f1 * mean[1]) + f2 * mean[1];
    const double rv = (1 - f2) * ((1 - f1) * 1 + f1 * unbiased[1]) + f2 * unbiased[1];
    return std::pair{rm, rv};
  };
  const auto [dm, dv] = after_two_steps(Model<Default, backend::Reference>(Init::torchvision, 1));
  CHECK(dm == doctest::Approx(expect(0.1, 0.1).first).epsilon(1e-5));
  CHECK(dv == doctest::Approx(expect(0.1, 0.1).second).epsilon(1e-5));
  const auto [hm, hv] = after_two_steps(Model<Half, backend::Reference>(Init::torchvision, 1));
  CHECK(hm == doctest::Approx(expect(0.5, 0.5).first).epsilon(1e-5));
  CHECK(hv == doctest::Approx(expect(0.5, 0.5).second).epsilon(1e-5));
  const auto [cm, cv] = after_two_steps(Model<Cumulative, backend::Reference>(Init::torchvision, 1));
  CHECK(cm == doctest::Approx(mean[1]).epsilon(1e-5));  // factors 1, then 1/2
  CHECK(cv == doctest::Approx(unbiased[1]).epsilon(1e-5));
  CHECK(BatchNorm<2, CumulativeAverage>::label().find("momentum=None") != std::string::npos);
  CHECK(BatchNorm<2>::label().find("momentum=0.1,") != std::string::npos);
}

TEST_CASE("models are movable and keep working") {
  using Net = ResNet20<Linear<64, 3>, Image<1, 10, 10>>;
  const Tensor x = random_tensor({2, 1, 10, 10}, 4);
  Model<Net> a(Init::torchvision, 9);
  const Tensor want = Tensor::copy_of(a.forward(x));
  Model<Net> b(std::move(a));
  const Tensor got = Tensor::copy_of(b.forward(x));
  CHECK(std::equal(got.data(), got.data() + got.size(), want.data()));
  Model<Net, backend::Reference> r(Init::torchvision, 9);
  Model<Net, backend::Reference> s(Init::zeros);
  s = std::move(r);
  const Tensor ref = Tensor::copy_of(s.forward(x));
  for (std::size_t i = 0; i < ref.size(); ++i) CHECK(ref.data()[i] == doctest::Approx(want.data()[i]).epsilon(1e-4));
}

TEST_CASE("head-only training on the CPU backend refreshes only the head, and inference sees it") {
  using Net = ResNet20<Linear<64, 4>, Image<1, 12, 12>>;
  Model<Net> model(Init::torchvision, 11);
  const Tensor x = random_tensor({8, 1, 12, 12}, 7);
  const std::vector<int> labels{0, 1, 2, 3, 3, 2, 1, 0};
  auto trainer = make_trainer<CrossEntropy>(model, Adam{.lr = 0.05}, Scope::head_only);
  for (int i = 0; i < 5; ++i) trainer.step(x, {.classes = labels});
  // The CPU model predicts what the reference backend predicts with the same parameters.
  Model<Net, backend::Reference> oracle(Init::zeros);
  oracle.update([&](Parameters& p) { std::copy(model.parameters().begin(), model.parameters().end(), p.arena().begin()); });
  const Tensor got = Tensor::copy_of(model.forward(x));
  const Tensor want = Tensor::copy_of(oracle.forward(x));
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got.data()[i] == doctest::Approx(want.data()[i]).epsilon(1e-4));
  // Re-preparing the head's ops re-packs the head's step alone.
  const Program& p = model.program();
  backend::Cpu::Executor ex(p, model.parameters());
  CHECK(ex.refresh(model.parameters(), p.features_end, p.ops.size()) == 1);
  CHECK(ex.refresh(model.parameters(), 0, p.ops.size()) > 20);
}

// The CIFAR family (He et al. 2016, option B projection shortcuts) on a
// fixed-size single-channel input, against a torch model built from
// torchvision's BasicBlock with torchvision's names.
#include "parity_fixture.hpp"

using ctnn::test::check_parity;

TEST_CASE("ResNet20<Linear<64, 10>, Image<1, 28, 28>>, features and logits") {
  check_parity<ctnn::ResNet20<ctnn::Linear<64, 10>, ctnn::Image<1, 28, 28>>>("resnet20_1x28x28", true);
}

TEST_CASE("ResNet20 has torchvision-style CIFAR parameter counts") {
  // 272,474 for 3 input channels and 10 classes (the count of the torch model
  // in make_fixtures.py); one input channel removes 2 * 16 * 9 conv weights.
  static_assert(ctnn::ResNet20<>::parameter_count == 272'474);
  using Net = ctnn::ResNet20<ctnn::Linear<64, 10>, ctnn::Image<1, 28, 28>>;
  static_assert(Net::parameter_count == 272'474 - 288);
  // The run-time arena agrees with the type's count.
  const ctnn::Model<Net, ctnn::backend::Reference> model;
  CHECK(model.parameter_count() == 272'474 - 288);
}

// The comparison must be able to fail: a 10% change of one running variance in
// the last block, or the batch items swapped, is far outside the tolerance.
TEST_CASE("the ResNet20 fixture detects small parameter and batch-order errors") {
  using Net = ctnn::ResNet20<ctnn::Linear<64, 10>, ctnn::Image<1, 28, 28>>;
  const ctnn::test::Fixture fx("resnet20_1x28x28");
  ctnn::Model<Net, ctnn::backend::Reference> model;
  fx.fill(model);
  const ctnn::Tensor x = fx.input();
  const std::vector<float> want = fx.floats("expected.output");
  auto ctx = model.make_context({2, 28, 28});
  REQUIRE(ctnn::test::relative_error(model.forward(x, ctx), want) <= ctnn::test::parity_tolerance);

  SUBCASE("one running variance off by 10%") {
    model.update([](ctnn::Parameters& p) { p.tensor("layer3.2.bn2.running_var")[5] *= 1.1f; });
    const double err = ctnn::test::relative_error(model.forward(x, ctx), want);
    MESSAGE("10% running_var change in one channel: rel err " << err);
    CHECK(err > 3 * ctnn::test::parity_tolerance);
  }
  SUBCASE("batch items swapped") {
    ctnn::Tensor swapped(x.shape());
    const std::size_t item = x.shape().per_item();
    std::copy(x.data() + item, x.data() + 2 * item, swapped.data());
    std::copy(x.data(), x.data() + item, swapped.data() + item);
    const double err = ctnn::test::relative_error(model.forward(swapped, ctx), want);
    MESSAGE("batch items swapped: rel err " << err);
    CHECK(err > 100 * ctnn::test::parity_tolerance);
  }
}

TEST_CASE("ResNet20A (option A zero-padding shortcuts) on 1x28x28, features and logits") {
  check_parity<ctnn::ResNet20A<ctnn::Linear<64, 10>, ctnn::Image<1, 28, 28>>>("resnet20a_1x28x28", true);
}

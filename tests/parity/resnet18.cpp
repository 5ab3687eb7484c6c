// ResNet-18 against torchvision with the default head and the article's three
// head changes. The four fixtures share backbone weights, BatchNorm state and
// input, so the pooled features are checked once (on the default head).
#include "parity_fixture.hpp"

using ctnn::test::check_parity;

TEST_CASE("ResNet18<> (Linear<512, 1000>) at 2x3x224x224, features and logits") {
  check_parity<ctnn::ResNet18<>>("resnet18_fc1000", /*check_features=*/true);
}

TEST_CASE("ResNet18<Linear<512, 10>> (the article's 10-class head)") {
  check_parity<ctnn::ResNet18<ctnn::Linear<512, 10>>>("resnet18_fc10", false);
}

TEST_CASE("ResNet18<Sequential<Linear<512, 1>, Sigmoid>> (binary head)") {
  check_parity<ctnn::ResNet18<ctnn::Sequential<ctnn::Linear<512, 1>, ctnn::Sigmoid>>>("resnet18_sigmoid", false);
}

TEST_CASE("ResNet18<Sequential<Linear<512, 1000>, Dropout<0.5>, Softmax>> (eval mode)") {
  check_parity<ctnn::ResNet18<ctnn::Sequential<ctnn::Linear<512, 1000>, ctnn::Dropout<0.5>, ctnn::Softmax>>>(
      "resnet18_dropout_softmax", false);
}

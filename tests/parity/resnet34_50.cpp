// Deeper ImageNet ResNets: ResNet-50 (Bottleneck v1.5, stride on the 3x3) at
// 224x224 and ResNet-34 at a non-square size whose odd intermediate sizes
// (104 -> 52 -> 26 -> 13 -> 7 in width) exercise the padding arithmetic.
#include "parity_fixture.hpp"

using ctnn::test::check_parity;

TEST_CASE("ResNet50<> at 2x3x224x224, features and logits") {
  check_parity<ctnn::ResNet50<>>("resnet50", true);
}

TEST_CASE("ResNet34<> at 2x3x160x208 (non-square), features and logits") {
  check_parity<ctnn::ResNet34<>>("resnet34_160x208", true);
}

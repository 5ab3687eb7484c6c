// The rest of torchvision's resnet.py: ResNeXt-50 32x4d (grouped 3x3
// convolutions, 32 groups of 4 to 32 channels) and Wide ResNet-50-2 (twice
// the Bottleneck's inner width), at small non-224 sizes.
#include "parity_fixture.hpp"

using ctnn::test::check_parity;

TEST_CASE("ResNeXt50_32x4d<> at 2x3x64x80, features and logits") {
  check_parity<ctnn::ResNeXt50_32x4d<>>("resnext50_32x4d_64x80", true);
}

TEST_CASE("WideResNet50_2<> at 2x3x64x64, logits") {
  check_parity<ctnn::WideResNet50_2<>>("wide_resnet50_2_64x64", false);
}

// torchvision's basic-block ResNets (ImageNet stem: 7x7 stride 2 and a max-pool).
#include "train_network.hpp"

namespace {
struct ResNet18 {
  template <class H, class I>
  using net = ctnn::ResNet18<H, I>;
};
struct ResNet34 {
  template <class H, class I>
  using net = ctnn::ResNet34<H, I>;
};
}  // namespace

void ctnn_train::register_imagenet(Registry& r) {
  add_architecture<ResNet18, 512>(r, "resnet18");
  add_architecture<ResNet34, 512>(r, "resnet34");
}

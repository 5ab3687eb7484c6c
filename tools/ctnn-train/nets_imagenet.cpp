// torchvision's basic-block ResNets (ImageNet stem: 7x7 stride 2 and a max-pool).
#include "train_network.hpp"

namespace {
template <class H, class I> using R18 = ctnn::ResNet18<H, I>;
template <class H, class I> using R34 = ctnn::ResNet34<H, I>;
}  // namespace

void ctnn_train::register_imagenet(Registry& r) {
  add_architecture<R18, 512>(r, "resnet18");
  add_architecture<R34, 512>(r, "resnet34");
}

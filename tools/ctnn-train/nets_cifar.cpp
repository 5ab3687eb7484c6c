// The CIFAR family with option B (1x1 projection) shortcuts.
#include "train_network.hpp"

namespace {
template <class H, class I> using R20 = ctnn::ResNet20<H, I>;
template <class H, class I> using R32 = ctnn::ResNet32<H, I>;
template <class H, class I> using R56 = ctnn::ResNet56<H, I>;
template <class H, class I> using R110 = ctnn::ResNet110<H, I>;
}  // namespace

void ctnn_train::register_cifar(Registry& r) {
  add_architecture<R20, 64>(r, "resnet20");
  add_architecture<R32, 64>(r, "resnet32");
  add_architecture<R56, 64>(r, "resnet56");
  add_architecture<R110, 64>(r, "resnet110");
}

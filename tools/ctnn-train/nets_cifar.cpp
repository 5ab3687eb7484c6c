// The CIFAR family with option B (1x1 projection) shortcuts.
#include "train_network.hpp"

namespace {
struct ResNet20 {
  template <class H, class I>
  using net = ctnn::ResNet20<H, I>;
};
struct ResNet32 {
  template <class H, class I>
  using net = ctnn::ResNet32<H, I>;
};
struct ResNet56 {
  template <class H, class I>
  using net = ctnn::ResNet56<H, I>;
};
struct ResNet110 {
  template <class H, class I>
  using net = ctnn::ResNet110<H, I>;
};
}  // namespace

void ctnn_train::register_cifar(Registry& r) {
  add_architecture<ResNet20, 64>(r, "resnet20");
  add_architecture<ResNet32, 64>(r, "resnet32");
  add_architecture<ResNet56, 64>(r, "resnet56");
  add_architecture<ResNet110, 64>(r, "resnet110");
}

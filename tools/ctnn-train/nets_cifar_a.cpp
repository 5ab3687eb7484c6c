// The CIFAR family with option A shortcuts (stride-2 subsampling and zero
// channel padding, no parameters): the published recipes' networks.
#include "train_network.hpp"

namespace {
struct ResNet20A {
  template <class H, class I>
  using net = ctnn::ResNet20A<H, I>;
};
struct ResNet32A {
  template <class H, class I>
  using net = ctnn::ResNet32A<H, I>;
};
struct ResNet56A {
  template <class H, class I>
  using net = ctnn::ResNet56A<H, I>;
};
struct ResNet110A {
  template <class H, class I>
  using net = ctnn::ResNet110A<H, I>;
};
}  // namespace

void ctnn_train::register_cifar_option_a(Registry& r) {
  add_architecture<ResNet20A, 64>(r, "resnet20a");
  add_architecture<ResNet32A, 64>(r, "resnet32a");
  add_architecture<ResNet56A, 64>(r, "resnet56a");
  add_architecture<ResNet110A, 64>(r, "resnet110a");
}

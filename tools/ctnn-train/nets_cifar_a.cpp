// The CIFAR family with option A shortcuts (stride-2 subsampling and zero
// channel padding, no parameters): the published recipes' networks.
#include "train_network.hpp"

namespace {
template <class H, class I> using R20 = ctnn::ResNet20A<H, I>;
template <class H, class I> using R32 = ctnn::ResNet32A<H, I>;
template <class H, class I> using R56 = ctnn::ResNet56A<H, I>;
template <class H, class I> using R110 = ctnn::ResNet110A<H, I>;
}  // namespace

void ctnn_train::register_cifar_option_a(Registry& r) {
  add_architecture<R20, 64>(r, "resnet20a");
  add_architecture<R32, 64>(r, "resnet32a");
  add_architecture<R56, 64>(r, "resnet56a");
  add_architecture<R110, 64>(r, "resnet110a");
}

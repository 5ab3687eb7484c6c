// Training a Model: the whole network, or only its head (fine-tuning with a
// frozen backbone, the article's workflow).
//
//   auto trainer = ctnn::train::make_trainer<ctnn::train::CrossEntropy>(model, ctnn::train::SGD{.lr = 0.01},
//                                                                       ctnn::train::Scope::head_only);
//   double loss = trainer.step(images, {.classes = labels});
//
// Naming a Trainer checks that the loss suits the head (CTNN_LOSS_HEAD_MISMATCH).
// Head-only training computes the backbone's features with the model's own
// (fast, BN-folded) backend in eval mode and trains the head ops on them;
// step_on_features() takes features cached across epochs instead. Whole-network
// training runs BatchNorm in training mode. After each step the model's
// backend is re-prepared, so inference always sees the latest weights.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "ctnn/core/model.hpp"
#include "ctnn/train/backprop.hpp"
#include "ctnn/train/loss.hpp"
#include "ctnn/train/optim.hpp"

namespace ctnn::train {

enum class Scope {
  whole_network,  // every learnable tensor; BatchNorm uses batch statistics
  head_only,      // only the head's tensors; the backbone is frozen and runs in eval mode
};

template <class Loss, class Net, class Backend, class Optimizer>
class Trainer {
  static_assert(detail::check_loss<Net, Loss>::ok && detail::check_loss<Net, Loss>::width_ok);

 public:
  Trainer(Model<Net, Backend>& model, Optimizer optimizer, Scope scope = Scope::whole_network, std::uint64_t seed = 0)
      : model_(model), optimizer_(std::move(optimizer)), scope_(scope), rng_(seed) {
    const std::string_view head = ctnn::detail::head_prefix<Net>();
    if (scope == Scope::head_only && head.empty())
      throw std::invalid_argument("ctnn: head-only training needs a network with a head (e.g. a ResNet)");
    mask_.assign(model.parameters().size(), 0);
    for (const TensorInfo& t : model.tensors()) {
      const bool in_scope = scope == Scope::whole_network || ctnn::detail::under(t.name, head);
      if (t.trainable() && in_scope) std::fill_n(mask_.begin() + static_cast<long>(t.offset), t.size, 1);
    }
  }

  // One optimisation step on a batch; returns the batch's mean loss (before the step).
  double step(ConstTensorView images, const Targets& targets) {
    if (scope_ == Scope::head_only) {
      if (!ctx_ || capacity_.batch < images.shape.n || capacity_.height < images.shape.h ||
          capacity_.width < images.shape.w) {
        capacity_ = {images.shape.n, images.shape.h, images.shape.w};
        ctx_.emplace(model_.make_context(capacity_));
      }
      return step_on_features(model_.features(images, *ctx_), targets);
    }
    return run(images, targets, 0);
  }

  // Head-only step on pooled backbone features (N x F x 1 x 1), e.g. cached from model.features().
  double step_on_features(ConstTensorView features, const Targets& targets) {
    if (scope_ != Scope::head_only) throw std::logic_error("ctnn: step_on_features needs Scope::head_only");
    return run(features, targets, model_.program().features_end);
  }

  // The loss (and gradients, discarded) without changing anything.
  double loss(ConstTensorView images, const Targets& targets) {
    std::vector<float> params(model_.parameters().begin(), model_.parameters().end());
    Backprop bp(model_.program(), 0, model_.program().ops.size());
    SplitMix64 rng(0);
    const ConstTensorView y = bp.forward(images, params, false, rng);
    Tensor dy(y.shape);
    return Loss::value(y, targets, dy);
  }

  // Gradients of the last step, in the model's arena layout (for inspection and tests).
  std::span<const float> gradients() const { return grads_; }

 private:
  double run(ConstTensorView input, const Targets& targets, std::size_t begin) {
    const Program& program = model_.program();
    std::vector<float> params(model_.parameters().begin(), model_.parameters().end());
    grads_.assign(params.size(), 0.f);
    Backprop bp(program, begin, program.ops.size());
    // Training mode for the ops being trained (Dropout draws masks, BatchNorm uses batch
    // statistics); a frozen backbone already ran in eval mode to produce the features.
    const ConstTensorView y = bp.forward(input, params, true, rng_);
    Tensor dy(y.shape);
    const double value = Loss::value(y, targets, dy);
    bp.backward(dy, params, grads_);
    optimizer_.step(params, grads_, mask_);
    model_.update([&](Parameters& p) { std::copy(params.begin(), params.end(), p.arena().begin()); });
    return value;
  }

  Model<Net, Backend>& model_;
  Optimizer optimizer_;
  Scope scope_;
  SplitMix64 rng_;
  std::vector<unsigned char> mask_;
  std::vector<float> grads_;
  std::optional<typename Model<Net, Backend>::Context> ctx_;
  Capacity capacity_{};
};

// Names the loss explicitly; the model and optimiser are deduced.
template <class Loss, class Net, class Backend, class Optimizer>
Trainer<Loss, Net, Backend, Optimizer> make_trainer(Model<Net, Backend>& model, Optimizer optimizer,
                                                    Scope scope = Scope::whole_network, std::uint64_t seed = 0) {
  return Trainer<Loss, Net, Backend, Optimizer>(model, std::move(optimizer), scope, seed);
}

}  // namespace ctnn::train

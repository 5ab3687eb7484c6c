// Training a Model: the whole network, or only its head (fine-tuning with a
// frozen backbone, the article's workflow).
//
//   auto trainer = ctnn::train::make_trainer<ctnn::train::CrossEntropy>(model, ctnn::train::SGD{.lr = 0.01},
//                                                                       ctnn::train::Scope::head_only);
//   double loss = trainer.step(images, {.classes = labels});
//
// Naming a Trainer checks that the loss suits the head (CTNN_LOSS_HEAD_MISMATCH)
// and that the backend can train every op of the network (CTNN_BACKEND_CANNOT_RUN).
//
// The trainer runs its backend's training executor over the trained ops
// (the whole Program, or the head's ops for Scope::head_only); that executor
// owns parameters, gradients and optimiser state from the moment the trainer
// is made. Head-only training computes the backbone's features with the
// model's own inference backend (BatchNorm folded) in eval mode;
// step_on_features() takes features cached across epochs instead. After each
// step the model is refreshed for the trained ops only (sync_every_step, the
// default on host backends), or when sync_model() is called: head-only
// training never re-prepares the backbone.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ctnn/core/init.hpp"
#include "ctnn/core/model.hpp"
#include "ctnn/train/loss.hpp"
#include "ctnn/train/optim.hpp"
#include "ctnn/train/schedule.hpp"
#include "ctnn/train/tape.hpp"

namespace ctnn::train {

enum class Scope {
  whole_network,  // every learnable tensor; BatchNorm uses batch statistics
  head_only,      // only the head's tensors; the backbone is frozen and runs in eval mode
};

// How a Trainer trains, beyond the optimiser's own hyperparameters.
struct TrainOptions {
  Scope scope = Scope::whole_network;
  std::uint64_t seed = 0;                 // dropout masks
  std::optional<Schedule> schedule{};     // the learning rate per step; none: the optimiser's lr throughout
  bool decay_norm_and_bias = true;        // false: no weight decay on BatchNorm parameters and biases
  // Parameter groups by module path: "layer1" covers every tensor under layer1.
  std::vector<std::pair<std::string, double>> lr_scale{};  // e.g. {{"fc", 10.0}}: the head learns 10x faster
  std::vector<std::string> frozen{};      // e.g. {"conv1", "bn1", "layer1"}: these tensors never move
  double clip_grad_norm = 0;              // > 0: gradients scaled down to this L2 norm (clip_grad_norm_)
  LossOptions loss{};                     // label smoothing (CrossEntropy)
};

namespace detail {
template <class Backend>
struct training_executor_of {
  using type = typename Backend::TrainingExecutor;
};
struct NoTrainingExecutor {};  // stands in after a refused backend, so the refusal is the only error

// Executors whose buffers live on a device copy parameters to the host only when asked.
template <class E>
constexpr bool host_resident() {
  if constexpr (requires { E::host_visible; })
    return E::host_visible;
  else
    return true;
}
}  // namespace detail

template <class Loss, class Net, class Backend, class Opt>
class Trainer {
  static_assert(detail::check_loss<Net, Loss>());
  static constexpr bool trainable =
      ctnn::detail::backend_offers<check::backend_cannot_train, Backend, Net::ops, Backend::training_ops>();
  static_assert(Optimizer<Opt>, "ctnn: the optimiser needs state_size(), begin_step() and update() (train/optim.hpp)");

 public:
  using Executor = typename std::conditional_t<trainable, detail::training_executor_of<Backend>,
                                               std::type_identity<detail::NoTrainingExecutor>>::type;

  Trainer(Model<Net, Backend>& model, Opt optimizer, Scope scope = Scope::whole_network, std::uint64_t seed = 0)
      : Trainer(model, std::move(optimizer), TrainOptions{.scope = scope, .seed = seed}) {}

  Trainer(Model<Net, Backend>& model, Opt optimizer, TrainOptions options)
      : model_(model),
        optimizer_(std::move(optimizer)),
        scope_(options.scope),
        rng_(options.seed),
        executor_(model.program(), model.parameters(), first_trained_op(model, options.scope)),
        options_(std::move(options)) {
    const std::string_view head = ctnn::detail::head_prefix<Net>();
    const auto in_module = ctnn::detail::under;
    for (const auto& [module, scale] : options_.lr_scale)
      if (!(scale >= 0) || !std::isfinite(scale))
        throw std::invalid_argument("ctnn: learning-rate multiplier " + std::to_string(scale) + " for '" + module +
                                    "' must be finite and >= 0");
    std::vector<TrainableRange> ranges;
    for (const TensorInfo& t : model.tensors()) {
      const bool in_scope = scope_ == Scope::whole_network || ctnn::detail::under(t.name, head);
      if (!t.trainable() || !in_scope) continue;
      if (std::any_of(options_.frozen.begin(), options_.frozen.end(), [&](const std::string& m) { return in_module(t.name, m); }))
        continue;
      TrainableRange r{t.offset, t.size};
      for (const auto& [module, scale] : options_.lr_scale)
        if (in_module(t.name, module)) r.lr_scale = scale;  // the last matching group wins
      const bool norm_or_bias = t.role == TensorRole::bn_weight || t.role == TensorRole::bn_bias ||
                                t.role == TensorRole::conv_bias || t.role == TensorRole::linear_bias;
      r.weight_decay = options_.decay_norm_and_bias || !norm_or_bias;
      ranges.push_back(r);
    }
    for (const std::string& m : options_.frozen)
      if (std::none_of(model.tensors().begin(), model.tensors().end(), [&](const TensorInfo& t) { return in_module(t.name, m); }))
        throw std::invalid_argument("ctnn: cannot freeze '" + m + "': the model has no module of that name");
    executor_.set_trainable(std::move(ranges));
  }

  // One optimisation step on a batch; returns the batch's mean loss (before the step).
  double step(ConstTensorView images, const Targets& targets) {
    if (scope_ == Scope::head_only) return step_on_features(features(images), targets);
    return run(images, targets);
  }

  // Head-only step on pooled backbone features (N x F x 1 x 1), e.g. cached from model.features().
  double step_on_features(ConstTensorView features, const Targets& targets) {
    if (scope_ != Scope::head_only) throw std::logic_error("ctnn: step_on_features needs Scope::head_only");
    return run(features, targets);
  }

  // The loss in eval mode (running statistics, no dropout), changing nothing.
  double loss(ConstTensorView images, const Targets& targets) {
    const ConstTensorView input = scope_ == Scope::head_only ? features(images) : images;
    SplitMix64 unused(0);
    const ConstTensorView y = executor_.forward(input, Mode::eval, unused);
    return Loss::value(y, targets, executor_.output_gradient(), options_.loss);
  }

  // The learning rate the next step will use.
  double learning_rate() const { return options_.schedule ? options_.schedule->at(optimizer_.steps) : optimizer_.lr; }
  // Of the last step's images, how many the network (in training mode) classified
  // right before the step: a running training accuracy at no extra cost (binary
  // targets: the decision against the target rounded).
  std::size_t last_correct() const { return last_correct_; }
  // The gradient norm of the last step, before clipping.
  double gradient_norm() const { return last_norm_; }

  // Gradients of the last step, in the model's arena layout (for inspection and tests).
  std::span<const float> gradients() const { return executor_.gradients(); }

  // Writes the trained tensors into the model and re-prepares its backend for
  // the trained ops only.
  void sync_model() { model_.assign(executor_.parameters(), executor_.first_op(), model_.program().ops.size()); }
  // Whether each step ends with sync_model(). Off, whole-network training
  // skips re-preparing the inference backend until it is asked. The default
  // is on, except for a backend that trains on a device (backend::Cuda):
  // there the parameters would cross to the host every step.
  void sync_every_step(bool on) { sync_every_step_ = on; }
  bool syncs_every_step() const { return sync_every_step_; }

  // Data-parallel training: `exchange` (e.g. distributed::DataParallel) makes
  // every process start from rank 0's parameters and averages the gradients
  // of every step; null detaches it.
  void set_exchange(GradientExchange* exchange) {
    executor_.set_exchange(exchange);
    sync_model();
  }

  const Opt& optimizer() const { return optimizer_; }
  Executor& executor() { return executor_; }
  const Executor& executor() const { return executor_; }
  const Model<Net, Backend>& model() const { return model_; }
  Scope scope() const { return scope_; }

  // Everything that decides the next steps besides the data: what
  // train/checkpoint.hpp saves and restores.
  struct Resumable {
    long optimizer_steps = 0;
    std::uint64_t rng_state = 0;
  };
  Resumable resumable() const { return {optimizer_.steps, rng_.state()}; }
  void resume(const Resumable& r, std::span<const float> params, std::span<const float> optimizer_state,
              std::span<const long> batches_seen) {
    executor_.restore(params, optimizer_state, batches_seen);
    optimizer_.steps = r.optimizer_steps;  // begin_step() derives the rest (Adam's bias corrections)
    rng_ = SplitMix64(r.rng_state);
    sync_model();
  }

 private:
  static std::size_t first_trained_op(const Model<Net, Backend>& model, Scope scope) {
    if (scope == Scope::head_only && ctnn::detail::head_prefix<Net>().empty())
      throw std::invalid_argument("ctnn: head-only training needs a network with a head (e.g. a ResNet)");
    return scope == Scope::head_only ? model.program().features_end : 0;
  }

 public:
  // The frozen backbone's features of `images` (N x F x 1 x 1, eval mode), as
  // head-only steps compute them; valid until the next call.
  ConstTensorView features(ConstTensorView images) {
    if (!ctx_ || capacity_.batch < images.shape.n || capacity_.height < images.shape.h ||
        capacity_.width < images.shape.w) {
      capacity_ = {images.shape.n, images.shape.h, images.shape.w};
      ctx_.emplace(model_.make_context(capacity_));
    }
    return model_.features(images, *ctx_);
  }

 private:
  double run(ConstTensorView input, const Targets& targets) {
    // Training mode for the ops being trained (Dropout draws masks, BatchNorm uses batch
    // statistics); a frozen backbone already ran in eval mode to produce the features.
    const ConstTensorView y = executor_.forward(input, Mode::train, rng_);
    const double value = Loss::value(y, targets, executor_.output_gradient(), options_.loss);
    last_correct_ = 0;
    for (std::size_t i = 0; i < targets.classes.size(); ++i)
      last_correct_ += predicted_class(y.item(i)) == targets.classes[i] ? 1 : 0;
    for (std::size_t i = 0; i < targets.binary.size(); ++i)
      last_correct_ += predicted_binary(y.data[i], Loss::expects) == (targets.binary[i] >= 0.5f) ? 1 : 0;
    executor_.backward();
    if (options_.schedule) optimizer_.lr = options_.schedule->at(optimizer_.steps);
    double scale = 1;
    if (options_.clip_grad_norm > 0) {  // PyTorch: max_norm / (norm + 1e-6), never above 1
      last_norm_ = executor_.gradient_norm();
      scale = std::min(1.0, options_.clip_grad_norm / (last_norm_ + 1e-6));
    }
    executor_.apply(optimizer_, scale);
    if (sync_every_step_) sync_model();
    return value;
  }

  Model<Net, Backend>& model_;
  Opt optimizer_;
  Scope scope_;
  SplitMix64 rng_;
  Executor executor_;
  TrainOptions options_;
  double last_norm_ = 0;
  std::size_t last_correct_ = 0;
  bool sync_every_step_ = detail::host_resident<Executor>();
  std::optional<typename Model<Net, Backend>::Context> ctx_;
  Capacity capacity_{};
};

// Names the loss explicitly; the model and optimiser are deduced.
template <class Loss, class Net, class Backend, class Opt>
Trainer<Loss, Net, Backend, Opt> make_trainer(Model<Net, Backend>& model, Opt optimizer,
                                              Scope scope = Scope::whole_network, std::uint64_t seed = 0) {
  return Trainer<Loss, Net, Backend, Opt>(model, std::move(optimizer), scope, seed);
}
template <class Loss, class Net, class Backend, class Opt>
Trainer<Loss, Net, Backend, Opt> make_trainer(Model<Net, Backend>& model, Opt optimizer, TrainOptions options) {
  return Trainer<Loss, Net, Backend, Opt>(model, std::move(optimizer), std::move(options));
}

}  // namespace ctnn::train

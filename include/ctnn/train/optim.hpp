// Optimisers with PyTorch's update rules (torch.optim.SGD, Adam and AdamW):
// hyperparameters, the step count, and the rule for one parameter. The loop
// over parameters is the training executor's (it owns parameters, gradients
// and optimiser state in its own layout, and runs the rule there: serially in
// the reference backend, in parallel and vectorised in a fast one).
//
//   executor.apply(optimizer)   // begin_step(), then update() per trainable parameter
//
// `lr` and `weight_decay` are the base values; update() receives the ones in
// force for the parameter (the schedule's rate times its group's multiplier,
// no decay where a group turns it off).
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>

// The rules also run on the GPU (backend/cuda/training_kernels.cuh), one
// thread per parameter: they are the single definition of each update.
#if defined(__CUDACC__)
#define CTNN_OPTIMIZER_RULE __host__ __device__
#else
#define CTNN_OPTIMIZER_RULE
#endif

namespace ctnn::train {

struct SGD {
  double lr = 0.01, momentum = 0.0, weight_decay = 0.0;
  bool nesterov = false;
  long steps = 0;  // steps taken

  // Floats of optimiser state per parameter (the momentum buffer).
  int state_size() const { return momentum != 0 ? 1 : 0; }
  void begin_step() { ++steps; }
  // PyTorch: the first step initialises the momentum buffer with the gradient.
  CTNN_OPTIMIZER_RULE void update(float& p, float grad, float* state, double lr, double weight_decay) const {
    double g = grad + weight_decay * p;
    if (momentum != 0) {
      state[0] = static_cast<float>(steps == 1 ? g : momentum * state[0] + g);
      g = nesterov ? g + momentum * state[0] : state[0];
    }
    p = static_cast<float>(p - lr * g);
  }
};

// Adam with L2 weight decay added to the gradient (torch.optim.Adam), or, with
// `decoupled`, AdamW's decay of the weights themselves by lr * weight_decay.
struct Adam {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = false;
  long steps = 0;
  double bias1 = 1, bias2 = 1;  // 1 - beta^t of the current step

  int state_size() const { return 2; }  // first and second moments
  void begin_step() {
    ++steps;
    bias1 = 1 - std::pow(beta1, static_cast<double>(steps));
    bias2 = 1 - std::pow(beta2, static_cast<double>(steps));
  }
  CTNN_OPTIMIZER_RULE void update(float& p, float grad, float* state, double lr, double weight_decay) const {
    double w = p, g = grad;
    if (decoupled)
      w *= 1 - lr * weight_decay;
    else
      g += weight_decay * w;
    state[0] = static_cast<float>(beta1 * state[0] + (1 - beta1) * g);
    state[1] = static_cast<float>(beta2 * state[1] + (1 - beta2) * g * g);
    p = static_cast<float>(w - lr * (state[0] / bias1) / (std::sqrt(state[1] / bias2) + eps));
  }
};

// torch.optim.AdamW (its default weight decay is 0.01).
struct AdamW : Adam {
  AdamW(double lr = 1e-3, double weight_decay = 0.01) : Adam{lr, 0.9, 0.999, 1e-8, weight_decay, true} {}
};

template <class O>
concept Optimizer = requires(O o, const O c, float p, float* s) {
  { c.state_size() } -> std::convertible_to<int>;
  o.begin_step();
  c.update(p, 0.f, s, 0.0, 0.0);
  o.lr;
  o.weight_decay;
};

// A run of the arena the optimiser moves, with its group's settings.
struct TrainableRange {
  std::size_t offset = 0, size = 0;
  double lr_scale = 1;        // multiplies the optimiser's learning rate
  bool weight_decay = true;   // false: no weight decay (BatchNorm parameters, biases, if asked)
};

// The rule over parameters [first, last) of range `r`, at the rate and decay in
// force for its group, gradients scaled by `gradient_scale` (clipping). Every
// backend's apply() runs this, whole or split over threads.
template <Optimizer O>
void update_range(const O& optimizer, const TrainableRange& r, std::size_t first, std::size_t last, float* params,
                  const float* grads, float* state, double gradient_scale) {
  const auto k = static_cast<std::size_t>(optimizer.state_size());
  const double lr = optimizer.lr * r.lr_scale, decay = r.weight_decay ? optimizer.weight_decay : 0.0;
  for (std::size_t i = first; i < last; ++i) {
    const float g = gradient_scale == 1 ? grads[i] : static_cast<float>(grads[i] * gradient_scale);
    optimizer.update(params[i], g, state + k * i, lr, decay);
  }
}

}  // namespace ctnn::train

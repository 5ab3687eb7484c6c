// Optimisers with PyTorch's update rules (torch.optim.SGD and Adam), applied
// to the parameter arena with one gradient arena of the same layout. Only the
// tensors marked trainable in `mask` move (frozen layers and BN statistics
// keep their values).
#pragma once

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

namespace ctnn::train {

struct SGD {
  double lr = 0.01, momentum = 0.0, weight_decay = 0.0;
  bool nesterov = false;

  void step(std::span<float> params, std::span<const float> grads, std::span<const unsigned char> mask) {
    if (momentum != 0 && buf_.size() != params.size()) buf_.assign(params.size(), 0.f);
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (!mask[i]) continue;
      double g = grads[i] + weight_decay * params[i];
      if (momentum != 0) {
        // PyTorch: the first step initialises the buffer with the gradient.
        buf_[i] = static_cast<float>(steps_ == 0 ? g : momentum * buf_[i] + g);
        g = nesterov ? g + momentum * buf_[i] : buf_[i];
      }
      params[i] = static_cast<float>(params[i] - lr * g);
    }
    ++steps_;
  }

  // State (public so that the options above can be designated-initialised).
  std::vector<float> buf_{};
  long steps_ = 0;
};

struct Adam {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;

  void step(std::span<float> params, std::span<const float> grads, std::span<const unsigned char> mask) {
    if (m_.size() != params.size()) m_.assign(params.size(), 0.f), v_.assign(params.size(), 0.f);
    ++t_;
    const double c1 = 1 - std::pow(beta1, t_), c2 = 1 - std::pow(beta2, t_);
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (!mask[i]) continue;
      const double g = grads[i] + weight_decay * params[i];
      m_[i] = static_cast<float>(beta1 * m_[i] + (1 - beta1) * g);
      v_[i] = static_cast<float>(beta2 * v_[i] + (1 - beta2) * g * g);
      params[i] = static_cast<float>(params[i] - lr * (m_[i] / c1) / (std::sqrt(v_[i] / c2) + eps));
    }
  }

  std::vector<float> m_{}, v_{};
  long t_ = 0;
};

}  // namespace ctnn::train

// Losses, and the rule that a loss matches what the head outputs:
//   CrossEntropy                 logits head, integer class targets (applies log-softmax itself)
//   BCEWithLogits                1-wide logits head, targets in [0, 1] (applies the sigmoid itself)
//   BCE                          head ending in Sigmoid (probabilities)
//   CrossEntropyOnProbabilities  head ending in Softmax (probabilities), integer class targets
// Pairing CrossEntropy with a Softmax head applies softmax twice: in PyTorch
// it trains silently worse; here it does not compile (CTNN_LOSS_HEAD_MISMATCH,
// naming the head's ctnn::Output and the one the loss expects).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "ctnn/core/checks.hpp"
#include "ctnn/core/network.hpp"
#include "ctnn/core/tensor.hpp"

namespace ctnn::train {

// Targets for one batch: class indices or binary targets, one per image.
struct Targets {
  std::span<const int> classes{};   // CrossEntropy, CrossEntropyOnProbabilities
  std::span<const float> binary{};  // BCE, BCEWithLogits
};

// Options a loss may take; a loss refuses the ones it does not implement.
struct LossOptions {
  double label_smoothing = 0;  // CrossEntropy: targets (1 - e) one-hot + e / classes (PyTorch's label_smoothing)
};

// The predicted class of one output row: its largest entry (the first of equals, as torch.argmax).
inline int predicted_class(std::span<const float> row) {
  return static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
}
// A binary head's decision (1: positive): probability >= 0.5, or logit >= 0.
inline int predicted_binary(float y, Output out) { return y >= (out == Output::sigmoid_probabilities ? 0.5f : 0.f) ? 1 : 0; }

namespace detail {
inline void no_smoothing(const LossOptions& o, const char* loss) {
  if (o.label_smoothing != 0)
    throw std::invalid_argument(std::string("ctnn: ") + loss + " has no label smoothing (CrossEntropy has)");
}
inline void require_size(std::size_t got, std::size_t want, const char* what) {
  if (got != want)
    throw std::invalid_argument(std::string("ctnn: ") + what + ": " + std::to_string(got) + " targets for a batch of " +
                                std::to_string(want));
}
inline int checked_class(int c, std::size_t classes) {
  if (c < 0 || static_cast<std::size_t>(c) >= classes)
    throw std::invalid_argument("ctnn: class target " + std::to_string(c) + " outside [0, " +
                                std::to_string(classes) + ")");
  return c;
}
}  // namespace detail

// Each loss: value(y, targets, dy) returns the batch-mean loss and writes dLoss/dy.
struct CrossEntropy {
  static constexpr Output expects = Output::logits;
  static constexpr bool binary = false;
  static double value(ConstTensorView y, const Targets& t, TensorView dy, const LossOptions& o = {}) {
    detail::require_size(t.classes.size(), y.shape.n, "CrossEntropy");
    const double e = o.label_smoothing;
    if (!(e >= 0 && e <= 1)) throw std::invalid_argument("ctnn: label smoothing must lie in [0, 1], got " + std::to_string(e));
    const std::size_t c = y.shape.per_item();
    double total = 0;
    for (std::size_t n = 0; n < y.shape.n; ++n) {
      const auto row = y.item(n);
      const double m = *std::max_element(row.begin(), row.end());
      double sum = 0, logits = 0;
      for (float v : row) sum += std::exp(v - m), logits += v - m;
      const double log_sum = std::log(sum);
      const int label = detail::checked_class(t.classes[n], c);
      // -sum_k q_k log p_k with q = (1 - e) one_hot + e / c.
      total += -(1 - e) * (row[static_cast<std::size_t>(label)] - m - log_sum) -
               e / static_cast<double>(c) * (logits - static_cast<double>(c) * log_sum);
      for (std::size_t k = 0; k < c; ++k) {
        const double q = (1 - e) * (static_cast<int>(k) == label) + e / static_cast<double>(c);
        dy.data[n * c + k] = static_cast<float>((std::exp(row[k] - m) / sum - q) / static_cast<double>(y.shape.n));
      }
    }
    return total / static_cast<double>(y.shape.n);
  }
};

struct CrossEntropyOnProbabilities {
  static constexpr Output expects = Output::softmax_probabilities;
  static constexpr bool binary = false;
  static double value(ConstTensorView p, const Targets& t, TensorView dy, const LossOptions& o = {}) {
    detail::no_smoothing(o, "CrossEntropyOnProbabilities");
    detail::require_size(t.classes.size(), p.shape.n, "CrossEntropyOnProbabilities");
    const std::size_t c = p.shape.per_item();
    double total = 0;
    std::fill(dy.data, dy.data + dy.size(), 0.f);
    for (std::size_t n = 0; n < p.shape.n; ++n) {
      const std::size_t k = static_cast<std::size_t>(detail::checked_class(t.classes[n], c));
      const double prob = std::max<double>(p.data[n * c + k], 1e-12);  // PyTorch's NLL of log(p) would give -inf
      total += -std::log(prob);
      dy.data[n * c + k] = static_cast<float>(-1.0 / prob / static_cast<double>(p.shape.n));
    }
    return total / static_cast<double>(p.shape.n);
  }
};

struct BCEWithLogits {
  static constexpr Output expects = Output::logits;
  static constexpr bool binary = true;
  static double value(ConstTensorView y, const Targets& t, TensorView dy, const LossOptions& o = {}) {
    detail::no_smoothing(o, "BCEWithLogits");
    detail::require_size(t.binary.size(), y.shape.n, "BCEWithLogits");
    double total = 0;
    for (std::size_t n = 0; n < y.shape.n; ++n) {
      const double x = y.data[n], z = t.binary[n];
      total += std::max(x, 0.0) - x * z + std::log1p(std::exp(-std::abs(x)));
      dy.data[n] = static_cast<float>((1.0 / (1.0 + std::exp(-x)) - z) / static_cast<double>(y.shape.n));
    }
    return total / static_cast<double>(y.shape.n);
  }
};

struct BCE {
  static constexpr Output expects = Output::sigmoid_probabilities;
  static constexpr bool binary = true;
  static double value(ConstTensorView p, const Targets& t, TensorView dy, const LossOptions& o = {}) {
    detail::no_smoothing(o, "BCE");
    detail::require_size(t.binary.size(), p.shape.n, "BCE");
    double total = 0;
    for (std::size_t n = 0; n < p.shape.n; ++n) {
      // PyTorch clamps log at -100; clamping p keeps the gradient finite too.
      const double q = std::clamp<double>(p.data[n], 1e-12, 1 - 1e-12), z = t.binary[n];
      total += -(z * std::log(q) + (1 - z) * std::log1p(-q));
      dy.data[n] = static_cast<float>((q - z) / (q * (1 - q)) / static_cast<double>(p.shape.n));
    }
    return total / static_cast<double>(p.shape.n);
  }
};

namespace detail {
// Instantiated where a Trainer<Loss, Net, ...> is named: one error naming
// both kinds when they disagree, one when a binary loss meets a wide head.
template <class Net, class Loss>
constexpr bool check_loss() {
  constexpr Output head = network_output<Net>();
  if constexpr (head != Loss::expects)
    return check::loss_does_not_match_head<head, Loss::expects>::value;
  else if constexpr (Loss::binary)
    return check::binary_loss_needs_one_output<Net::output_shape().c>::value;
  else
    return true;
}
}  // namespace detail

}  // namespace ctnn::train

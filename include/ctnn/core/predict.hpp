// What Model::predict returns, chosen by what the network's output means
// (network_output<Net>(), declared by the layers):
//   ... Softmax            -> one ClassPrediction per image (argmax and its probability)
//   ... Linear<F, 1>, Sigmoid -> one BinaryPrediction per image (probability, decision at 0.5)
//   anything else          -> the raw outputs (logits), copied into a Tensor
#pragma once

#include <cstddef>
#include <vector>

#include "ctnn/core/network.hpp"
#include "ctnn/core/tensor.hpp"

namespace ctnn {

struct ClassPrediction {
  int label = 0;
  float probability = 0.f;
};

struct BinaryPrediction {
  float probability = 0.f;
  bool positive = false;  // probability >= 0.5
};

namespace detail {
template <class Net>
constexpr bool head_is_softmax() {
  return network_output<Net>() == Output::softmax_probabilities;
}
template <class Net>
constexpr bool head_is_binary_sigmoid() {
  return network_output<Net>() == Output::sigmoid_probabilities && Net::out(Net::input::shape).c == 1;
}

template <class Net>
auto interpret_output(ConstTensorView y) {
  if constexpr (head_is_softmax<Net>()) {
    std::vector<ClassPrediction> out(y.shape.n);
    for (std::size_t n = 0; n < y.shape.n; ++n) {
      const auto row = y.item(n);
      std::size_t best = 0;
      for (std::size_t c = 1; c < row.size(); ++c)
        if (row[c] > row[best]) best = c;
      out[n] = {static_cast<int>(best), row[best]};
    }
    return out;
  } else if constexpr (head_is_binary_sigmoid<Net>()) {
    std::vector<BinaryPrediction> out(y.shape.n);
    for (std::size_t n = 0; n < y.shape.n; ++n) out[n] = {y.data[n], y.data[n] >= 0.5f};
    return out;
  } else {
    return Tensor::copy_of(y);
  }
}
}  // namespace detail

}  // namespace ctnn

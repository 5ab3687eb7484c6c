// Parameter-free element-wise heads and activations: ReLU, Sigmoid, Softmax
// (over channels, PyTorch's dim=1), and Identity.
#pragma once

#include <string>

#include "ctnn/core/layer.hpp"

namespace ctnn {

struct ReLU : LeafLayer<OpKind::relu> {
  static std::string label() { return "ReLU(inplace=True)"; }
};

struct Sigmoid : LeafLayer<OpKind::sigmoid> {
  static constexpr Output output = Output::sigmoid_probabilities;
  static std::string label() { return "Sigmoid()"; }
};

struct Softmax : LeafLayer<OpKind::softmax> {
  static constexpr Output output = Output::softmax_probabilities;
  template <Shape In>
  static constexpr bool check() {
    if constexpr (In.c != dynamic && In.c < 2)
      return check::softmax_needs_two_outputs<In.c>::value;
    else
      return true;
  }
  static std::string label() { return "Softmax(dim=1)"; }
};

// Passes its input through; lowers to nothing.
struct Identity {
  static constexpr bool is_leaf = true;
  static constexpr int in_channels = dynamic;
  static constexpr std::uint32_t ops = 0;
  static constexpr Shape out(Shape in) { return in; }
  template <Shape In>
  static constexpr bool check() { return true; }
  template <class V>
  static constexpr void visit(V&, Shape) {}
  static constexpr std::size_t macs(Shape) { return 0; }
  static void lower(Lowering&) {}
  static std::string label() { return "Identity()"; }
};

}  // namespace ctnn

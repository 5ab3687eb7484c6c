// A network is a layer tree plus its input: what Model<Net> owns parameters
// for. ResNet<...> is one; Network<Input, L...> turns any chain of layers
// into one (its tensors are named "0.weight", "1.running_mean", ... as in a
// PyTorch nn.Sequential). Compile-time facts about a network:
//   Net::parameter_count   learnable parameters, as PyTorch counts them
//   Net::buffer_count      BatchNorm running statistics
//   Net::output_shape      for its Input (heights/widths may be dynamic)
//   ctnn::macs<Net>(h, w)  multiply-accumulates of convs and linears at h x w
#pragma once

#include <cstddef>
#include <string_view>
#include <type_traits>

#include "ctnn/core/layer.hpp"
#include "ctnn/core/sequential.hpp"

namespace ctnn {

// What a failed alias check yields: naming it is the one error already
// reported, and using it is refused by the Network concept.
struct InvalidNetwork {};

namespace detail {
template <class Net>
constexpr Totals static_totals() {
  constexpr Totals t = totals<Net>(Net::input::shape);
  static_assert(!t.dynamic_extent,
                "CTNN_DYNAMIC_HEAD: a Linear<In, dynamic> head has no compile-time parameter count; ask the Model "
                "(model.parameter_count()) once its class count is known");
  return t;
}

// Compile-time facts shared by every network type. The counts are static data
// members initialised on first use, when Net is complete.
template <class Net, class Input>
struct NetworkBase {
  static constexpr Shape input_shape = Input::shape;
  static constexpr std::size_t parameter_count = static_totals<Net>().trainable;
  static constexpr std::size_t buffer_count = static_totals<Net>().buffers;
  static constexpr bool has_dynamic_classes() { return totals<Net>(Input::shape).dynamic_extent; }
  static constexpr Shape output_shape() { return Net::out(Input::shape); }
};
}  // namespace detail

template <class Net>
concept NetworkType = Layer<Net> && requires {
  typename Net::input;
  { Net::input_shape } -> std::convertible_to<Shape>;
};

// What a network's output means: its head's (or its last layers') Output.
template <class Net>
constexpr Output network_output() {
  if constexpr (requires { typename Net::head; })
    return output_rule<typename Net::head>::apply(Output::logits);
  else
    return output_rule<Net>::apply(Output::logits);
}

template <NetworkType Net>
constexpr std::size_t macs(int height, int width) {
  return detail::totals<Net>(Shape{Net::input::shape.c, height, width}).macs;
}

// A plain chain of layers as a network: Network<Image<1, 28, 28>, Conv<1, 8, 3>, ReLU, ...>.
template <class Input, class Body>
struct Chain : detail::NetworkBase<Chain<Input, Body>, Input> {
  using input = Input;
  static constexpr bool is_leaf = false;
  static constexpr int in_channels = Input::shape.c;
  static constexpr std::uint32_t ops = Body::ops;
  static constexpr Shape out(Shape in) { return Body::out(in); }
  template <Shape In>
  static constexpr bool check() { return Body::template check<In>(); }
  template <class V>
  static constexpr void visit(V& v, Shape in) { Body::visit(v, in); }
  static void lower(Lowering& lw) { Body::lower(lw); }
  static std::string label() { return "Network"; }
  static constexpr Output output = output_rule<Body>::apply(Output::logits);
};

namespace detail {
template <class Input, class... L>
struct make_network {
  static_assert(chain<Input::shape, L...>::ok || true);  // reports each failed rule once
  using type = Chain<Input, Seq<L...>>;
};
}  // namespace detail

template <class Input, class... L>
using Network = typename detail::make_network<Input, L...>::type;

}  // namespace ctnn

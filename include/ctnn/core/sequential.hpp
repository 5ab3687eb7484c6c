// Sequential<L...>: layers applied in order, named "0", "1", ... as PyTorch's
// nn.Sequential names them (so a Sequential head's tensors are fc.0.weight,
// fc.2.bias, ...). Sequential is an alias that checks every link where the
// type is *named*; the checked type itself is Seq<L...>.
#pragma once

#include <algorithm>
#include <string>
#include <utility>

#include "ctnn/core/layer.hpp"

namespace ctnn {

namespace detail {
// Applies each layer's contract rules along a chain, starting from `In`.
// Each rule that fails reports once; the chain carries on with the layer's
// declared output, so one bad link does not cascade.
template <Shape In, class... L>
struct chain;
template <Shape In>
struct chain<In> {
  static constexpr Shape out = In;
  static constexpr bool ok = true;
};
template <Shape In, class First, class... Rest>
struct chain<In, First, Rest...> {
  static constexpr bool first_ok = First::template check<In>();
  static constexpr Shape mid = [] {
    Shape s = First::out(In);
    // Keep shapes meaningful after a spatial error (at least 1x1).
    if (s.h == 0) s.h = 1;
    if (s.w == 0) s.w = 1;
    return s;
  }();
  static constexpr bool ok = first_ok && chain<mid, Rest...>::ok;
  static constexpr Shape out = chain<mid, Rest...>::out;
};

template <class... L>
constexpr int first_required_channels() {
  int result = dynamic;
  ((result == dynamic ? (result = L::in_channels) : 0), ...);
  return result;
}
}  // namespace detail

template <class... L>
struct Seq {
  static_assert(sizeof...(L) > 0, "CTNN_EMPTY_SEQUENTIAL: a Sequential needs at least one layer");

  static constexpr bool is_leaf = false;
  static constexpr int in_channels = detail::first_required_channels<L...>();
  static constexpr std::uint32_t ops = (0u | ... | L::ops);

  static constexpr Shape out(Shape in) {
    ((in = L::out(in)), ...);
    return in;
  }

  template <Shape In>
  static constexpr bool check() { return detail::chain<In, L...>::ok; }

  template <class V>
  static constexpr void visit(V& v, Shape in) {
    visit_each(v, in, std::index_sequence_for<L...>{});
  }

  static constexpr std::size_t macs(Shape) { return 0; }

  static void lower(Lowering& lw) { lower_each(lw, std::index_sequence_for<L...>{}); }

  static std::string label() { return "Sequential"; }

 private:
  template <class V, std::size_t... I>
  static constexpr void visit_each(V& v, Shape in, std::index_sequence<I...>) {
    ((v.template child<L>(detail::index_name(I), in), in = L::out(in)), ...);
  }
  template <std::size_t... I>
  static void lower_each(Lowering& lw, std::index_sequence<I...>) {
    (lw.child<L>(detail::index_name(I)), ...);
  }
};

template <class... L>
struct output_rule<Seq<L...>> {
  static constexpr Output apply(Output in) {
    ((in = output_rule<L>::apply(in)), ...);
    return in;
  }
};

namespace detail {
template <class... L>
struct make_sequential {
  static_assert(chain<Shape{}, L...>::ok || true);  // instantiating the chain fires each failed rule once
  using type = Seq<L...>;
};
}  // namespace detail

template <class... L>
using Sequential = typename detail::make_sequential<L...>::type;

}  // namespace ctnn

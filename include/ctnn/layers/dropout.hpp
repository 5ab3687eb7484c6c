// Dropout<P> (P a floating-point value: Dropout<0.5>, Dropout<0.5f>) and its
// integer spelling DropoutRatio<1, 2> for compilers without floating-point
// template arguments (clang before 18). Identity at inference; the training
// backends use the probability.
#pragma once

#include <cstdio>
#include <string>

#include "ctnn/core/layer.hpp"

namespace ctnn {

namespace detail {
template <class Probability>
struct DropoutLayer : LeafLayer<OpKind::dropout> {
  static constexpr double p = Probability::value;
  static void lower(Lowering& lw) { lw.emit(OpKind::dropout, dynamic, dynamic).dropout_p = p; }
  static std::string label() {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", p);
    return std::string("Dropout(p=") + buf + ", inplace=False)";
  }
};

template <auto P>
struct float_probability {
  static constexpr bool checked = check::dropout_probability_out_of_range<P>::value;
  static constexpr double value = static_cast<double>(P);
};
template <long Num, long Den>
struct ratio_probability {
  static constexpr bool checked = check::dropout_ratio_out_of_range<Num, Den>::value;
  static constexpr double value = static_cast<double>(Num) / static_cast<double>(Den);
};
}  // namespace detail

template <auto P>
struct Dropout : detail::DropoutLayer<detail::float_probability<P>> {
  static_assert(detail::float_probability<P>::checked);
};

template <long Numerator, long Denominator>
struct DropoutRatio : detail::DropoutLayer<detail::ratio_probability<Numerator, Denominator>> {
  static_assert(detail::ratio_probability<Numerator, Denominator>::checked);
};

}  // namespace ctnn

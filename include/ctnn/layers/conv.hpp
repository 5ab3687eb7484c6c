// Conv<InChannels, OutChannels, Kernel, Stride, Padding, Bias, Groups>: a
// square 2-D convolution with zero padding, PyTorch's Conv2d (dilation 1).
// With Groups > 1 (ResNeXt's 3x3 convolutions) each output channel sees the
// InChannels / Groups input channels of its group; both channel counts must
// be divisible by Groups (CTNN_CONV_GROUPS).
#pragma once

#include <string>

#include "ctnn/core/layer.hpp"

namespace ctnn {

namespace detail {
template <int In, int Out, int Groups>
constexpr bool conv_groups_ok() {
  if constexpr (Groups < 1 || In % Groups != 0 || Out % Groups != 0)
    return check::conv_groups_do_not_divide<In, Out, Groups>::value;
  else
    return true;
}
}  // namespace detail

template <int InChannels, int OutChannels, int Kernel, int Stride = 1, int Padding = 0, bool Bias = false,
          int Groups = 1>
struct Conv {
  static_assert(InChannels > 0 && OutChannels > 0 && Kernel > 0 && Stride > 0 && Padding >= 0,
                "CTNN_BAD_LAYER_PARAMETERS: Conv needs positive channels, kernel and stride, and padding >= 0");
  static_assert(detail::conv_groups_ok<InChannels, OutChannels, Groups>());
  static constexpr int groups = Groups > 0 ? Groups : 1;
  static constexpr OpKind kind = groups > 1 ? OpKind::grouped_conv : OpKind::conv;

  static constexpr bool is_leaf = true;
  static constexpr int in_channels = InChannels;
  static constexpr int out_channels = OutChannels;
  static constexpr std::uint32_t ops = op_bit(kind);
  static constexpr Output output = Output::logits;

  static constexpr Shape out(Shape in) {
    return {OutChannels, detail::window_out(in.h, Kernel, Stride, Padding),
            detail::window_out(in.w, Kernel, Stride, Padding)};
  }

  template <Shape In>
  static constexpr bool check() {
    if constexpr (In.c != dynamic && In.c != InChannels)
      return check::conv_in_channels_mismatch<In.c, InChannels>::value;
    else if constexpr (In.has_fixed_spatial() && (In.h + 2 * Padding < Kernel || In.w + 2 * Padding < Kernel))
      return check::spatial_size_too_small<In.h, In.w, Kernel, Padding>::value;
    else
      return true;
  }

  template <class V>
  static constexpr void visit(V& v, Shape) {
    // PyTorch's fans: the weight's dims 1.. and dim 0 times the kernel area.
    constexpr int area = Kernel * Kernel, fan_in = InChannels / groups * area, fan_out = OutChannels / groups * area;
    v.tensor({"weight", {OutChannels, InChannels / groups, Kernel, Kernel}, 4, TensorRole::conv_weight, fan_in,
              fan_out});
    if constexpr (Bias) v.tensor({"bias", {OutChannels, 0, 0, 0}, 1, TensorRole::conv_bias, fan_in, fan_out});
  }

  static constexpr std::size_t macs(Shape in) {
    const Shape o = out(in);
    return std::size_t(o.h) * std::size_t(o.w) * OutChannels * (InChannels / groups) * Kernel * Kernel;
  }

  static void lower(Lowering& lw) {
    Op& op = lw.emit(kind, InChannels, OutChannels);
    op.groups = groups;
    op.kernel = Kernel;
    op.stride = Stride;
    op.padding = Padding;
    op.weight = lw.param("weight");
    if constexpr (Bias) op.bias = lw.param("bias");
  }

  static std::string label() {
    const auto pair = [](int v) { return "(" + std::to_string(v) + ", " + std::to_string(v) + ")"; };
    return "Conv2d(" + std::to_string(InChannels) + ", " + std::to_string(OutChannels) +
           ", kernel_size=" + pair(Kernel) + ", stride=" + pair(Stride) +
           (Padding ? ", padding=" + pair(Padding) : std::string()) +
           (groups > 1 ? ", groups=" + std::to_string(groups) : std::string()) + (Bias ? "" : ", bias=False") + ")";
  }
};

}  // namespace ctnn

// Conv<InChannels, OutChannels, Kernel, Stride, Padding, Bias>: a square 2-D
// convolution with zero padding, PyTorch's Conv2d (dilation 1, groups 1).
#pragma once

#include <string>

#include "ctnn/core/layer.hpp"

namespace ctnn {

template <int InChannels, int OutChannels, int Kernel, int Stride = 1, int Padding = 0, bool Bias = false>
struct Conv {
  static_assert(InChannels > 0 && OutChannels > 0 && Kernel > 0 && Stride > 0 && Padding >= 0,
                "CTNN_BAD_LAYER_PARAMETERS: Conv needs positive channels, kernel and stride, and padding >= 0");

  static constexpr bool is_leaf = true;
  static constexpr int in_channels = InChannels;
  static constexpr int out_channels = OutChannels;
  static constexpr std::uint32_t ops = op_bit(OpKind::conv);
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
    constexpr int area = Kernel * Kernel;
    v.tensor({"weight", {OutChannels, InChannels, Kernel, Kernel}, 4, TensorRole::conv_weight,
              InChannels * area, OutChannels * area});
    if constexpr (Bias)
      v.tensor({"bias", {OutChannels, 0, 0, 0}, 1, TensorRole::conv_bias, InChannels * area, OutChannels * area});
  }

  static constexpr std::size_t macs(Shape in) {
    const Shape o = out(in);
    return std::size_t(o.h) * std::size_t(o.w) * OutChannels * InChannels * Kernel * Kernel;
  }

  static void lower(Lowering& lw) {
    Op& op = lw.emit(OpKind::conv, InChannels, OutChannels);
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
           (Padding ? ", padding=" + pair(Padding) : std::string()) + (Bias ? "" : ", bias=False") + ")";
  }
};

}  // namespace ctnn

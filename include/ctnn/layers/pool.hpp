// MaxPool<Kernel, Stride, Padding> (padding acts as -infinity, as in PyTorch)
// and GlobalAvgPool (AdaptiveAvgPool2d(1): N x C x H x W -> N x C x 1 x 1).
#pragma once

#include <string>

#include "ctnn/core/layer.hpp"

namespace ctnn {

template <int Kernel, int Stride = Kernel, int Padding = 0>
struct MaxPool : LeafLayer<OpKind::max_pool> {
  static_assert(Kernel > 0 && Stride > 0 && Padding >= 0 && 2 * Padding <= Kernel,
                "CTNN_BAD_LAYER_PARAMETERS: MaxPool needs positive kernel and stride, and padding at most half "
                "the kernel (PyTorch's rule)");

  static constexpr Shape out(Shape in) {
    return {in.c, detail::window_out(in.h, Kernel, Stride, Padding), detail::window_out(in.w, Kernel, Stride, Padding)};
  }
  template <Shape In>
  static constexpr bool check() {
    if constexpr (In.has_fixed_spatial() && (In.h + 2 * Padding < Kernel || In.w + 2 * Padding < Kernel))
      return check::spatial_size_too_small<In.h, In.w, Kernel, Padding>::value;
    else
      return true;
  }
  static void lower(Lowering& lw) {
    Op& op = lw.emit(OpKind::max_pool, dynamic, dynamic);
    op.kernel = Kernel;
    op.stride = Stride;
    op.padding = Padding;
  }
  static std::string label() {
    return "MaxPool2d(kernel_size=" + std::to_string(Kernel) + ", stride=" + std::to_string(Stride) +
           ", padding=" + std::to_string(Padding) + ", dilation=1, ceil_mode=False)";
  }
};

struct GlobalAvgPool : LeafLayer<OpKind::global_avg_pool> {
  static constexpr Shape out(Shape in) { return {in.c, 1, 1}; }
  static std::string label() { return "AdaptiveAvgPool2d(output_size=(1, 1))"; }
};

}  // namespace ctnn

// PadShortcut<In, Out, Stride>: the parameter-free shortcut of He et al.'s
// CIFAR ResNets ("option A"): the input subsampled by Stride
// (x[:, :, ::Stride, ::Stride]) with (Out - In) / 2 zero channels on each side,
// as the common PyTorch CIFAR code writes it
// (F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))).
#pragma once

#include <string>

#include "ctnn/core/layer.hpp"

namespace ctnn {

template <int In, int Out, int Stride>
struct PadShortcut {
  static_assert(In > 0 && Out >= In && (Out - In) % 2 == 0 && Stride > 0,
                "CTNN_BAD_LAYER_PARAMETERS: a zero-padding shortcut widens In channels to Out >= In by an even "
                "number, with a positive stride");

  static constexpr bool is_leaf = true;
  static constexpr int in_channels = In;
  static constexpr std::uint32_t ops = op_bit(OpKind::pad_shortcut);

  static constexpr Shape out(Shape in) {
    return {Out, detail::window_out(in.h, 1, Stride, 0), detail::window_out(in.w, 1, Stride, 0)};
  }
  template <Shape Input>
  static constexpr bool check() {
    if constexpr (Input.c != dynamic && Input.c != In)
      return check::conv_in_channels_mismatch<Input.c, In>::value;
    else
      return true;
  }
  template <class V>
  static constexpr void visit(V&, Shape) {}
  static constexpr std::size_t macs(Shape) { return 0; }
  static void lower(Lowering& lw) {
    Op& op = lw.emit(OpKind::pad_shortcut, In, Out);
    op.stride = Stride;
  }
  static std::string label() {
    return "PadShortcut(" + std::to_string(In) + " -> " + std::to_string(Out) + " channels, stride=" +
           std::to_string(Stride) + ")";
  }
};

}  // namespace ctnn

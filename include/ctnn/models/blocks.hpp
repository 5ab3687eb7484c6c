// The residual blocks exactly as torchvision builds them:
//   BasicBlock<In, Planes, Stride>   conv3x3(stride)-bn-relu-conv3x3-bn, + identity, relu
//   Bottleneck<In, Planes, Stride, Groups, BaseWidth>
//                                    conv1x1-bn-relu-conv3x3(stride, groups)-bn-relu-conv1x1-bn, + identity,
//                                    relu (ResNet v1.5: the stride sits on the 3x3), 4x expansion; the inner
//                                    width is Planes * BaseWidth / 64 * Groups (ResNeXt: Groups 32, BaseWidth
//                                    4 or 8; Wide ResNet: BaseWidth 128)
// The identity is projected by downsample = Sequential(conv1x1(stride), BN)
// whenever the stride or the channel count changes. ReLU follows the add.
#pragma once

#include <string>
#include <string_view>

#include "ctnn/core/sequential.hpp"
#include "ctnn/layers/activation.hpp"
#include "ctnn/layers/batchnorm.hpp"
#include "ctnn/layers/conv.hpp"
#include "ctnn/layers/shortcut.hpp"

namespace ctnn {

// How a block reshapes its identity when the stride or the width changes.
struct ProjectionShortcut {  // torchvision, and "option B" of the CIFAR ResNets: 1x1 conv + BatchNorm
  template <int In, int Out, int Stride>
  using type = Seq<Conv<In, Out, 1, Stride, 0>, BatchNorm<Out>>;
  static constexpr std::string_view name = "downsample";
};
struct ZeroPadShortcut {  // "option A": subsample and pad with zero channels, no parameters
  template <int In, int Out, int Stride>
  using type = PadShortcut<In, Out, Stride>;
  static constexpr std::string_view name = "shortcut";
};

namespace detail {
// Shared by both blocks: the residual path `Main` (a list of named layers
// applied in order), an optional projection, the add, and the final ReLU.
template <class Derived, int In, int Out, int Stride, class Shortcut = ProjectionShortcut>
struct ResidualBlock {
  static constexpr bool is_leaf = false;
  static constexpr int in_channels = In;
  static constexpr int out_channels = Out;
  static constexpr bool has_downsample = Stride != 1 || In != Out;
  using Downsample = typename Shortcut::template type<In, Out, Stride>;

  static constexpr std::uint32_t ops = op_bit(OpKind::conv) | op_bit(OpKind::batch_norm) | op_bit(OpKind::relu) |
                                       op_bit(OpKind::add) | (has_downsample ? Downsample::ops : 0u);

  static constexpr Shape out(Shape in) {
    return {Out, window_out(in.h, 3, Stride, 1), window_out(in.w, 3, Stride, 1)};
  }
  template <Shape Input>
  static constexpr bool check() {
    if constexpr (Input.c != dynamic && Input.c != In)
      return check::conv_in_channels_mismatch<Input.c, In>::value;
    else
      return true;
  }
  static constexpr std::size_t macs(Shape) { return 0; }

  template <class V>
  static constexpr void visit(V& v, Shape in) {
    Derived::visit_main(v, in);
    if constexpr (has_downsample) v.template child<Downsample>(Shortcut::name, in);
  }

  // The projection is lowered before the main path (torchvision computes it
  // after), so that the add directly follows the main path's last BatchNorm
  // and every backend fuses it into that conv's epilogue (ir/fusion.hpp).
  // The two branches are independent: the order changes no result.
  static void lower(Lowering& lw) {
    const int input = lw.value();
    int identity = input;
    if constexpr (has_downsample) {
      lw.child<Downsample>(Shortcut::name);
      identity = lw.value();
      lw.set_value(input);
    }
    Derived::lower_main(lw);
    lw.emit(OpKind::add, Out, Out).residual = identity;
    lw.child<ReLU>("relu");
  }
};
}  // namespace detail

template <int In, int Planes, int Stride = 1, class Shortcut = ProjectionShortcut>
struct BasicBlock : detail::ResidualBlock<BasicBlock<In, Planes, Stride, Shortcut>, In, Planes, Stride, Shortcut> {
  static constexpr int expansion = 1;
  using Conv1 = Conv<In, Planes, 3, Stride, 1>;
  using Conv2 = Conv<Planes, Planes, 3, 1, 1>;

  template <class V>
  static constexpr void visit_main(V& v, Shape in) {
    v.template child<Conv1>("conv1", in);
    const Shape a = Conv1::out(in);
    v.template child<BatchNorm<Planes>>("bn1", a);
    v.template child<ReLU>("relu", a);
    v.template child<Conv2>("conv2", a);
    v.template child<BatchNorm<Planes>>("bn2", a);
  }
  static void lower_main(Lowering& lw) {
    lw.child<Conv1>("conv1");
    lw.child<BatchNorm<Planes>>("bn1");
    lw.child<ReLU>("relu");
    lw.child<Conv2>("conv2");
    lw.child<BatchNorm<Planes>>("bn2");
  }
  static std::string label() { return "BasicBlock"; }
};

template <int In, int Planes, int Stride = 1, int Groups = 1, int BaseWidth = 64>
struct Bottleneck
    : detail::ResidualBlock<Bottleneck<In, Planes, Stride, Groups, BaseWidth>, In, Planes * 4, Stride> {
  using Base = detail::ResidualBlock<Bottleneck, In, Planes * 4, Stride>;
  static constexpr int expansion = 4;
  static constexpr int width = Planes * BaseWidth / 64 * Groups;  // torchvision: int(planes * (base_width / 64.)) * groups
  using Conv1 = Conv<In, width, 1, 1, 0>;
  using Conv2 = Conv<width, width, 3, Stride, 1, false, Groups>;
  using Conv3 = Conv<width, Planes * 4, 1, 1, 0>;
  static constexpr std::uint32_t ops = Base::ops | Conv2::ops;

  template <class V>
  static constexpr void visit_main(V& v, Shape in) {
    v.template child<Conv1>("conv1", in);
    const Shape a = Conv1::out(in);
    v.template child<BatchNorm<width>>("bn1", a);
    v.template child<Conv2>("conv2", a);
    const Shape b = Conv2::out(a);
    v.template child<BatchNorm<width>>("bn2", b);
    v.template child<Conv3>("conv3", b);
    v.template child<BatchNorm<Planes * 4>>("bn3", Conv3::out(b));
    v.template child<ReLU>("relu", Conv3::out(b));
  }
  static void lower_main(Lowering& lw) {
    lw.child<Conv1>("conv1");
    lw.child<BatchNorm<width>>("bn1");
    lw.child<ReLU>("relu");
    lw.child<Conv2>("conv2");
    lw.child<BatchNorm<width>>("bn2");
    lw.child<ReLU>("relu");
    lw.child<Conv3>("conv3");
    lw.child<BatchNorm<Planes * 4>>("bn3");
  }
  static std::string label() { return "Bottleneck"; }
};

// Bottleneck with a fixed group count and base width, as a three-argument
// block for ResNet<...> (ResNet-50: <1, 64>; ResNeXt; Wide ResNet). Naming
// Bottleneck itself there would need P0522's relaxed template-template
// matching, which clang 14 does not do by default.
template <int Groups, int BaseWidth>
struct GroupedBottleneck {
  template <int In, int Planes, int Stride>
  using block = Bottleneck<In, Planes, Stride, Groups, BaseWidth>;
};

}  // namespace ctnn

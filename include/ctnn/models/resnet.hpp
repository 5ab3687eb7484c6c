// The ResNet family with the head as a template parameter.
//
//   ResNet18/34/50/101/152<Head = Linear<F, 1000>, Input = Image<3, dynamic, dynamic>>
//       torchvision's ImageNet networks (F = 512, or 2048 for the Bottleneck ones)
//   ResNet20/32/44/56/110<Head = Linear<64, 10>, Input = Image<3, dynamic, dynamic>>
//       He et al.'s small-input CIFAR family: 3x3 stem with 16 channels and no
//       max-pool, three stages of 16/32/64 channels, and option B shortcuts
//       (1x1 conv + BN projections where the shape changes), so that the
//       block code and torchvision-style names are shared with the ImageNet nets.
//
//   ResNeXt50_32x4d, ResNeXt101_32x8d, ResNeXt101_64x4d, WideResNet50_2, WideResNet101_2
//       the rest of torchvision's resnet.py: Bottleneck networks with grouped
//       3x3 convolutions (ResNeXt) or twice the inner width (Wide ResNet)
//
// Each alias checks the head where the type is named: ResNet18<Linear<2048, 10>>
// fails on its own with CTNN_HEAD_IN_FEATURES_MISMATCH naming 512 and 2048.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "ctnn/core/network.hpp"
#include "ctnn/layers/linear.hpp"
#include "ctnn/layers/pool.hpp"
#include "ctnn/models/blocks.hpp"

namespace ctnn {

namespace detail {
template <template <int, int, int> class Block, bool ImageNetStem, int StemWidth, int... Blocks>
struct ResNetArch {
  template <int In, int Planes, int Stride>
  using block = Block<In, Planes, Stride>;
  static constexpr bool imagenet_stem = ImageNetStem;
  static constexpr int stem_width = StemWidth;
  static constexpr int stages = sizeof...(Blocks);
  static constexpr std::array<int, sizeof...(Blocks)> blocks{Blocks...};
  static constexpr int expansion = Block<StemWidth, StemWidth, 1>::expansion;
  static constexpr int planes(int stage) { return StemWidth << stage; }
  static constexpr int stage_in(int stage) { return stage == 0 ? StemWidth : planes(stage - 1) * expansion; }
  static constexpr int stride(int stage) { return stage == 0 ? 1 : 2; }
  static constexpr int features = planes(stages - 1) * expansion;
};

// layer{I+1}: the first block adapts channels and stride, the rest repeat.
template <class Arch, int I, class = std::make_index_sequence<static_cast<std::size_t>(Arch::blocks[I] - 1)>>
struct make_stage;
template <class Arch, int I, std::size_t... J>
struct make_stage<Arch, I, std::index_sequence<J...>> {
  static constexpr int planes = Arch::planes(I);
  static constexpr int width = planes * Arch::expansion;
  template <std::size_t>
  using repeat = typename Arch::template block<width, planes, 1>;
  using type = Seq<typename Arch::template block<Arch::stage_in(I), planes, Arch::stride(I)>, repeat<J>...>;
};

constexpr std::string_view stage_name(std::size_t i) {
  constexpr std::string_view names[] = {"layer1", "layer2", "layer3", "layer4", "layer5", "layer6"};
  return names[i];
}
}  // namespace detail

template <class Arch, class Head, class Input>
struct ResNet : detail::NetworkBase<ResNet<Arch, Head, Input>, Input> {
  using input = Input;
  using head = Head;
  static constexpr int features = Arch::features;
  static constexpr std::string_view head_name = "fc";

  static constexpr bool is_leaf = false;
  static constexpr int in_channels = Input::shape.c;
  using Stem = std::conditional_t<Arch::imagenet_stem, Conv<Input::shape.c, Arch::stem_width, 7, 2, 3>,
                                  Conv<Input::shape.c, Arch::stem_width, 3, 1, 1>>;
  using StemBN = BatchNorm<Arch::stem_width>;
  using Pool = MaxPool<3, 2, 1>;
  template <std::size_t I>
  using Stage = typename detail::make_stage<Arch, static_cast<int>(I)>::type;
  using Stages = std::make_index_sequence<static_cast<std::size_t>(Arch::stages)>;

  template <std::size_t... I>
  static constexpr std::uint32_t stage_ops(std::index_sequence<I...>) {
    return (0u | ... | Stage<I>::ops);
  }
  static constexpr std::uint32_t ops = [] {
    std::uint32_t m = Stem::ops | StemBN::ops | ReLU::ops | GlobalAvgPool::ops | Head::ops | stage_ops(Stages{});
    if (Arch::imagenet_stem) m |= Pool::ops;
    return m;
  }();

  static constexpr Shape backbone_out(Shape in) {
    Shape s = StemBN::out(Stem::out(in));
    if constexpr (Arch::imagenet_stem) s = Pool::out(s);
    return stages_out(s, Stages{});
  }
  static constexpr Shape out(Shape in) { return Head::out(GlobalAvgPool::out(backbone_out(in))); }

  template <Shape In>
  static constexpr bool check() {
    return Stem::template check<In>() && Head::template check<Shape{features, 1, 1}>();
  }

  template <class V>
  static constexpr void visit(V& v, Shape in) {
    v.template child<Stem>("conv1", in);
    Shape s = Stem::out(in);
    v.template child<StemBN>("bn1", s);
    v.template child<ReLU>("relu", s);
    if constexpr (Arch::imagenet_stem) {
      v.template child<Pool>("maxpool", s);
      s = Pool::out(s);
    }
    s = visit_stages(v, s, Stages{});
    v.template child<GlobalAvgPool>("avgpool", s);
    v.template child<Head>(head_name, Shape{features, 1, 1});
  }

  static void lower(Lowering& lw) {
    lw.child<Stem>("conv1");
    lw.child<StemBN>("bn1");
    lw.child<ReLU>("relu");
    if constexpr (Arch::imagenet_stem) lw.child<Pool>("maxpool");
    lower_stages(lw, Stages{});
    lw.child<GlobalAvgPool>("avgpool");
    Program& p = lw.program();
    p.features = lw.value();
    p.features_end = p.ops.size();
    lw.child<Head>(head_name);
  }

  static std::string label() { return "ResNet"; }

 private:
  template <std::size_t... I>
  static constexpr Shape stages_out(Shape s, std::index_sequence<I...>) {
    ((s = Stage<I>::out(s)), ...);
    return s;
  }
  template <class V, std::size_t... I>
  static constexpr Shape visit_stages(V& v, Shape s, std::index_sequence<I...>) {
    ((v.template child<Stage<I>>(detail::stage_name(I), s), s = Stage<I>::out(s)), ...);
    return s;
  }
  template <std::size_t... I>
  static void lower_stages(Lowering& lw, std::index_sequence<I...>) {
    (lw.child<Stage<I>>(detail::stage_name(I)), ...);
  }
};

namespace detail {
// Checks the head against the backbone where the alias is named; on a
// mismatch it reports once and yields InvalidNetwork instead of cascading.
template <class Arch, class Head, class Input>
struct make_resnet {
  static constexpr int head_in = Head::in_channels;
  static constexpr bool head_ok = head_in == dynamic || head_in == Arch::features;
  static_assert(check::head_in_features_mismatch<Arch::features, head_ok ? Arch::features : head_in>::value);
  static constexpr bool head_rules_ok() {
    if constexpr (head_ok)
      return Head::template check<Shape{Arch::features, 1, 1}>();
    else
      return true;
  }
  static_assert(head_rules_ok() || true);
  using type = std::conditional_t<head_ok, ResNet<Arch, Head, Input>, InvalidNetwork>;
};
}  // namespace detail

// Three-argument blocks for ResNetArch (clang 14 matches template template
// arguments exactly, so the defaulted parameters are fixed here).
template <int In, int Planes, int Stride>
using BasicBlockB = BasicBlock<In, Planes, Stride, ProjectionShortcut>;

template <class Head = Linear<512, 1000>, class Input = Image<3, dynamic, dynamic>>
using ResNet18 = typename detail::make_resnet<detail::ResNetArch<BasicBlockB, true, 64, 2, 2, 2, 2>, Head, Input>::type;
template <class Head = Linear<512, 1000>, class Input = Image<3, dynamic, dynamic>>
using ResNet34 = typename detail::make_resnet<detail::ResNetArch<BasicBlockB, true, 64, 3, 4, 6, 3>, Head, Input>::type;
template <class Head = Linear<2048, 1000>, class Input = Image<3, dynamic, dynamic>>
using ResNet50 = typename detail::make_resnet<
    detail::ResNetArch<GroupedBottleneck<1, 64>::block, true, 64, 3, 4, 6, 3>, Head, Input>::type;
template <class Head = Linear<2048, 1000>, class Input = Image<3, dynamic, dynamic>>
using ResNet101 =
    typename detail::make_resnet<detail::ResNetArch<GroupedBottleneck<1, 64>::block, true, 64, 3, 4, 23, 3>, Head,
                                 Input>::type;
template <class Head = Linear<2048, 1000>, class Input = Image<3, dynamic, dynamic>>
using ResNet152 =
    typename detail::make_resnet<detail::ResNetArch<GroupedBottleneck<1, 64>::block, true, 64, 3, 8, 36, 3>, Head,
                                 Input>::type;

template <class Head = Linear<2048, 1000>, class Input = Image<3, dynamic, dynamic>>
using ResNeXt50_32x4d = typename detail::make_resnet<
    detail::ResNetArch<GroupedBottleneck<32, 4>::block, true, 64, 3, 4, 6, 3>, Head, Input>::type;
template <class Head = Linear<2048, 1000>, class Input = Image<3, dynamic, dynamic>>
using ResNeXt101_32x8d = typename detail::make_resnet<
    detail::ResNetArch<GroupedBottleneck<32, 8>::block, true, 64, 3, 4, 23, 3>, Head, Input>::type;
template <class Head = Linear<2048, 1000>, class Input = Image<3, dynamic, dynamic>>
using ResNeXt101_64x4d = typename detail::make_resnet<
    detail::ResNetArch<GroupedBottleneck<64, 4>::block, true, 64, 3, 4, 23, 3>, Head, Input>::type;
template <class Head = Linear<2048, 1000>, class Input = Image<3, dynamic, dynamic>>
using WideResNet50_2 = typename detail::make_resnet<
    detail::ResNetArch<GroupedBottleneck<1, 128>::block, true, 64, 3, 4, 6, 3>, Head, Input>::type;
template <class Head = Linear<2048, 1000>, class Input = Image<3, dynamic, dynamic>>
using WideResNet101_2 = typename detail::make_resnet<
    detail::ResNetArch<GroupedBottleneck<1, 128>::block, true, 64, 3, 4, 23, 3>, Head, Input>::type;

// CIFAR family: depth 6n + 2, with option B (projection) shortcuts, or
// option A (ResNet20A...: zero-padding shortcuts, no parameters; the network
// of the published CIFAR recipes, 269,722 parameters for 3-channel ResNet-20).
template <int In, int Planes, int Stride>
using BasicBlockA = BasicBlock<In, Planes, Stride, ZeroPadShortcut>;
template <int N, class Head, class Input>
using CifarResNet = typename detail::make_resnet<detail::ResNetArch<BasicBlockB, false, 16, N, N, N>, Head, Input>::type;
template <int N, class Head, class Input>
using CifarResNetA =
    typename detail::make_resnet<detail::ResNetArch<BasicBlockA, false, 16, N, N, N>, Head, Input>::type;
template <class Head = Linear<64, 10>, class Input = Image<3, dynamic, dynamic>>
using ResNet20A = CifarResNetA<3, Head, Input>;
template <class Head = Linear<64, 10>, class Input = Image<3, dynamic, dynamic>>
using ResNet32A = CifarResNetA<5, Head, Input>;
template <class Head = Linear<64, 10>, class Input = Image<3, dynamic, dynamic>>
using ResNet44A = CifarResNetA<7, Head, Input>;
template <class Head = Linear<64, 10>, class Input = Image<3, dynamic, dynamic>>
using ResNet56A = CifarResNetA<9, Head, Input>;
template <class Head = Linear<64, 10>, class Input = Image<3, dynamic, dynamic>>
using ResNet110A = CifarResNetA<18, Head, Input>;
template <class Head = Linear<64, 10>, class Input = Image<3, dynamic, dynamic>>
using ResNet20 = CifarResNet<3, Head, Input>;
template <class Head = Linear<64, 10>, class Input = Image<3, dynamic, dynamic>>
using ResNet32 = CifarResNet<5, Head, Input>;
template <class Head = Linear<64, 10>, class Input = Image<3, dynamic, dynamic>>
using ResNet44 = CifarResNet<7, Head, Input>;
template <class Head = Linear<64, 10>, class Input = Image<3, dynamic, dynamic>>
using ResNet56 = CifarResNet<9, Head, Input>;
template <class Head = Linear<64, 10>, class Input = Image<3, dynamic, dynamic>>
using ResNet110 = CifarResNet<18, Head, Input>;

}  // namespace ctnn

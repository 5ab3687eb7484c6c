// BatchNorm<Channels>: PyTorch's BatchNorm2d (eps 1e-5, momentum 0.1, affine,
// tracking running statistics). Inference uses the running statistics; the
// fast backends fold it into the preceding convolution at load time.
#pragma once

#include <string>

#include "ctnn/core/layer.hpp"

namespace ctnn {

template <int Channels>
struct BatchNorm {
  static_assert(Channels > 0, "CTNN_BAD_LAYER_PARAMETERS: BatchNorm needs a positive channel count");

  static constexpr bool is_leaf = true;
  static constexpr int in_channels = Channels;
  static constexpr std::uint32_t ops = op_bit(OpKind::batch_norm);
  static constexpr float eps = 1e-5f;
  static constexpr float momentum = 0.1f;

  static constexpr Shape out(Shape in) { return {Channels, in.h, in.w}; }

  template <Shape In>
  static constexpr bool check() {
    if constexpr (In.c != dynamic && In.c != Channels)
      return check::batchnorm_channels_mismatch<In.c, Channels>::value;
    else
      return true;
  }

  template <class V>
  static constexpr void visit(V& v, Shape) {
    v.tensor({"weight", {Channels, 0, 0, 0}, 1, TensorRole::bn_weight, Channels, Channels});
    v.tensor({"bias", {Channels, 0, 0, 0}, 1, TensorRole::bn_bias, Channels, Channels});
    v.tensor({"running_mean", {Channels, 0, 0, 0}, 1, TensorRole::bn_running_mean, Channels, Channels});
    v.tensor({"running_var", {Channels, 0, 0, 0}, 1, TensorRole::bn_running_var, Channels, Channels});
  }

  static constexpr std::size_t macs(Shape) { return 0; }

  static void lower(Lowering& lw) {
    Op& op = lw.emit(OpKind::batch_norm, Channels, Channels);
    op.eps = eps;
    op.weight = lw.param("weight");
    op.bias = lw.param("bias");
    op.running_mean = lw.param("running_mean");
    op.running_var = lw.param("running_var");
  }

  static std::string label() {
    return "BatchNorm2d(" + std::to_string(Channels) +
           ", eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)";
  }
};

}  // namespace ctnn

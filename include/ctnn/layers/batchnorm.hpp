// BatchNorm<Channels, Momentum>: PyTorch's BatchNorm2d (eps 1e-5, affine,
// tracking running statistics). Inference uses the running statistics; the
// fast backends fold it into the preceding convolution at load time.
// Training moves the running statistics by the momentum, a ratio
// (MomentumRatio<1, 10>, PyTorch's default 0.1) or CumulativeAverage
// (PyTorch's momentum=None: the mean over every batch seen).
#pragma once

#include <cstdio>
#include <string>

#include "ctnn/core/layer.hpp"

namespace ctnn {

template <long Numerator, long Denominator>
struct MomentumRatio {
  static_assert(Denominator > 0 && Numerator >= 0 && Numerator <= Denominator,
                "CTNN_BAD_LAYER_PARAMETERS: a BatchNorm momentum Numerator/Denominator must lie in [0, 1]");
  static constexpr double value = static_cast<double>(Numerator) / static_cast<double>(Denominator);
};
struct CumulativeAverage {
  static constexpr double value = -1;  // Op::momentum < 0: cumulative average
};

template <int Channels, class Momentum = MomentumRatio<1, 10>>
struct BatchNorm {
  static_assert(Channels > 0, "CTNN_BAD_LAYER_PARAMETERS: BatchNorm needs a positive channel count");

  static constexpr bool is_leaf = true;
  static constexpr int in_channels = Channels;
  static constexpr std::uint32_t ops = op_bit(OpKind::batch_norm);
  static constexpr float eps = 1e-5f;
  static constexpr double momentum = Momentum::value;

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
    op.momentum = momentum;
    op.weight = lw.param("weight");
    op.bias = lw.param("bias");
    op.running_mean = lw.param("running_mean");
    op.running_var = lw.param("running_var");
  }

  static std::string label() {
    char m[32] = "None";
    if (momentum >= 0) std::snprintf(m, sizeof m, "%g", momentum);
    return "BatchNorm2d(" + std::to_string(Channels) + ", eps=1e-05, momentum=" + m +
           ", affine=True, track_running_stats=True)";
  }
};

}  // namespace ctnn

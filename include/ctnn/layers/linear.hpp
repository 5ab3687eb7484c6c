// Linear<In, Out>: y = W x + b on C x 1 x 1 feature vectors (PyTorch's
// Linear after flatten). Out may be `dynamic`: the class count is then read
// from the checkpoint (or given to the Model) at run time, the one deliberate
// escape hatch; everything upstream stays checked.
#pragma once

#include <string>

#include "ctnn/core/layer.hpp"

namespace ctnn {

template <int In, int Out>
struct Linear {
  static_assert(In > 0 && (Out > 0 || Out == dynamic),
                "CTNN_BAD_LAYER_PARAMETERS: Linear needs positive widths (Out may be ctnn::dynamic)");

  static constexpr bool is_leaf = true;
  static constexpr int in_channels = In;
  static constexpr int out_channels = Out;
  static constexpr std::uint32_t ops = op_bit(OpKind::linear);
  static constexpr Output output = Output::logits;

  static constexpr Shape out(Shape) { return {Out, 1, 1}; }

  template <Shape Input>
  static constexpr bool check() {
    if constexpr (Input.c != dynamic && Input.c != In)
      return check::linear_in_features_mismatch<Input.c, In>::value;
    else if constexpr (Input.has_fixed_spatial() && (Input.h != 1 || Input.w != 1))
      return check::linear_needs_feature_vector<Input.h, Input.w>::value;
    else
      return true;
  }

  template <class V>
  static constexpr void visit(V& v, Shape) {
    v.tensor({"weight", {Out, In, 0, 0}, 2, TensorRole::linear_weight, In, Out});
    v.tensor({"bias", {Out, 0, 0, 0}, 1, TensorRole::linear_bias, In, Out});
  }

  static constexpr std::size_t macs(Shape) { return Out == dynamic ? 0 : std::size_t(In) * std::size_t(Out); }

  static void lower(Lowering& lw) {
    const int out = Out == dynamic ? static_cast<int>(lw.extent("weight", 0)) : Out;
    Op& op = lw.emit(OpKind::linear, In, out);
    op.weight = lw.param("weight");
    op.bias = lw.param("bias");
  }

  static std::string label() {
    return "Linear(in_features=" + std::to_string(In) +
           ", out_features=" + (Out == dynamic ? std::string("dynamic") : std::to_string(Out)) + ", bias=True)";
  }
};

}  // namespace ctnn

// The op table: everything the IR, the backends and training need to know
// about an OpKind that is not specific to one backend. Adding an op kind is
// one row here (plus its kernels in each backend that implements it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "ctnn/ir/program.hpp"

namespace ctnn {

// What a training forward pass keeps for the op's backward pass (bit set).
enum Saves : std::uint8_t {
  saves_nothing = 0,
  saves_input = 1,       // the op's input value (conv, linear: weight gradients; batch_norm: x-hat)
  saves_output = 2,      // the op's output value (relu, sigmoid, softmax: their derivative)
  saves_indices = 4,     // one integer per output element (max_pool: where the maximum came from)
  saves_mask = 8,        // one scale per element (dropout)
  saves_statistics = 16, // per channel mean and 1/std (batch_norm)
};

struct OpTraits {
  std::string_view name;
  bool in_place = false;        // writes over its input (element-wise); otherwise produces a new value
  bool reads_residual = false;  // a second input, Op::residual
  bool has_weight = false;      // Op::weight
  bool has_bias = false;        // Op::bias (optional for conv)
  bool has_statistics = false;  // Op::running_mean, Op::running_var (batch_norm)
  bool learnable = false;       // has parameters that training updates
  std::uint8_t saves = saves_nothing;
};

constexpr OpTraits op_traits(OpKind k) {
  switch (k) {
    case OpKind::conv:
      return {"conv", false, false, true, true, false, true, saves_input};
    case OpKind::batch_norm:
      return {"batch_norm", true, false, true, true, true, true, saves_input | saves_statistics};
    case OpKind::relu: return {"relu", true, false, false, false, false, false, saves_output};
    case OpKind::max_pool: return {"max_pool", false, false, false, false, false, false, saves_indices};
    case OpKind::global_avg_pool: return {"global_avg_pool", false, false, false, false, false, false, saves_nothing};
    case OpKind::linear:
      return {"linear", false, false, true, true, false, true, saves_input};
    case OpKind::sigmoid: return {"sigmoid", true, false, false, false, false, false, saves_output};
    case OpKind::softmax: return {"softmax", true, false, false, false, false, false, saves_output};
    case OpKind::dropout: return {"dropout", true, false, false, false, false, false, saves_mask};
    case OpKind::add: return {"add", true, true, false, false, false, false, saves_nothing};
    case OpKind::grouped_conv:
      return {"grouped_conv", false, false, true, true, false, true, saves_input};
    case OpKind::pad_shortcut: return {"pad_shortcut", false, false, false, false, false, false, saves_nothing};
  }
  return {"unknown"};
}

constexpr std::string_view op_name(OpKind k) { return op_traits(k).name; }

// A set of op kinds, as a bit mask: what a network lowers to, what a backend runs.
constexpr std::uint32_t op_bit(OpKind k) { return 1u << static_cast<unsigned>(k); }
constexpr std::uint32_t op_set(std::initializer_list<OpKind> kinds) {
  std::uint32_t bits = 0;
  for (OpKind k : kinds) bits |= op_bit(k);
  return bits;
}
inline constexpr std::uint32_t all_ops = (1u << op_kind_count) - 1;

// The first op kind in `needed` that `offered` lacks, or -1.
constexpr int first_missing_op(std::uint32_t needed, std::uint32_t offered) {
  for (int i = 0; i < op_kind_count; ++i)
    if ((needed >> i & 1u) && !(offered >> i & 1u)) return i;
  return -1;
}

// Floats of a parameter tensor of `op`, by role (0 when the op has none).
constexpr std::size_t weight_floats(const Op& op) {
  const auto in = static_cast<std::size_t>(op.in_channels), out = static_cast<std::size_t>(op.out_channels);
  switch (op.kind) {
    case OpKind::conv:
    case OpKind::grouped_conv:
      return out * (in / static_cast<std::size_t>(op.groups > 0 ? op.groups : 1)) *
             static_cast<std::size_t>(op.kernel) * static_cast<std::size_t>(op.kernel);
    case OpKind::linear: return out * in;
    case OpKind::batch_norm: return in;
    default: return 0;
  }
}
constexpr std::size_t bias_floats(const Op& op) {
  return op.kind == OpKind::batch_norm ? static_cast<std::size_t>(op.in_channels)
                                       : static_cast<std::size_t>(op.out_channels);
}

// Calls f(offset, floats) for every arena tensor `op` reads or updates.
template <class F>
constexpr void for_each_tensor(const Op& op, F&& f) {
  const OpTraits t = op_traits(op.kind);
  if (t.has_weight && op.weight != no_param) f(op.weight, weight_floats(op));
  if (t.has_bias && op.bias != no_param) f(op.bias, bias_floats(op));
  if (t.has_statistics) {
    if (op.running_mean != no_param) f(op.running_mean, static_cast<std::size_t>(op.in_channels));
    if (op.running_var != no_param) f(op.running_var, static_cast<std::size_t>(op.in_channels));
  }
}

}  // namespace ctnn

// Compiles a Program into the CPU backend's inference plan, once, when an
// executor is built:
//  * BatchNorm directly after a convolution is folded into its weights and
//    bias (scale computed in double, rounded once);
//  * conv -> [bn] -> [add residual] -> [relu] becomes one step whose epilogue
//    adds the residual and applies ReLU while the tile is in registers;
//  * weights are repacked into the kernels' layouts (conv.hpp, linear.hpp);
//  * every value gets a layout (lanes, zero border) and a workspace slot
//    (ir/liveness.hpp).
// Validation, epilogue grouping and slot planning are the IR's (ir/); this
// file decides only what is CPU-specific: layouts, kernels, packing.
// Dropout is the identity at inference and produces no step.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctnn/backend/cpu/conv.hpp"
#include "ctnn/backend/cpu/layout.hpp"
#include "ctnn/backend/cpu/linear.hpp"
#include "ctnn/backend/cpu/winograd.hpp"
#include "ctnn/ir/extents.hpp"
#include "ctnn/ir/fusion.hpp"
#include "ctnn/ir/liveness.hpp"
#include "ctnn/ir/op_traits.hpp"
#include "ctnn/ir/program.hpp"
#include "ctnn/ir/validate.hpp"
#include "ctnn/core/tensor.hpp"

namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

enum class StepKind : std::uint8_t {
  input, copy, conv, max_pool, avg_pool, linear, scale_shift, relu, add, sigmoid, softmax, pad_shortcut
};

struct Step {
  StepKind kind{};
  int in = 0, out = 0, res = -1;  // value ids; res: fused or standalone residual
  int mid = -1;                   // conv + fused max pooling: the (never stored) conv output
  std::size_t op = 0, end_op = 0; // program ops [op, end_op) this step implements
  ConvSpec conv;                  // conv (for a grouped one: each slice's)
  int slices = 1;                 // grouped conv: independent dense convs over channel slices
  std::size_t slice_weights = 0, slice_bias = 0;  // arena floats between consecutive slices
  int kernel = 1, stride = 1, padding = 0;  // max_pool
  int in_features = 0, out_features = 0;    // linear
  std::size_t weights = 0, bias = 0;        // linear: packed weights, bias; scale_shift: scale, shift
  bool relu = false;                        // add followed by relu
  std::size_t channel_offset = 0;           // pad_shortcut: zero channels before the input's
};

struct ValueInfo {
  std::size_t channels = 0;
  int lanes = 1;
  int border = 0;
  int slot = -1;
  std::size_t slack = 0;  // floats a consumer may read past the end
};

// Choices a caller may make when building an executor.
struct Options {
  // Winograd for the 3x3 stride-1 convolutions it suits (winograd.hpp);
  // off means direct convolution everywhere.
  bool winograd = true;
};

template <class Arch>
class Plan {
 public:
  static constexpr int B = block_width<Arch>;

  Plan() = default;
  Plan(const Program& program, std::span<const float> params, Options options = {})
      : program_(program), options_(options) {
    channels_ = validate(program, params.size(), "ctnn cpu backend");
    params_floats_ = params.size();
    values_.resize(static_cast<std::size_t>(program.values));
    build_steps();
    plan_slots();
    pack(params);
  }

  const Program& program() const { return program_; }
  const std::vector<Step>& steps() const { return steps_; }
  std::size_t feature_steps() const { return feature_steps_; }
  const std::vector<ValueInfo>& values() const { return values_; }
  int slots() const { return slots_; }
  const float* arena() const { return arena_.data(); }
  const float* zeros() const { return arena_.data() + zeros_; }
  // Per-thread scratch the Winograd steps need (0 without any).
  std::size_t winograd_scratch() const { return winograd_scratch_; }

  Layout layout(int v, const Extents& e, float* data) const {
    const ValueInfo& info = values_[static_cast<std::size_t>(v)];
    return Layout{data, e.n, e.c, e.h, e.w, info.lanes, info.border};
  }
  std::size_t value_floats(int v, const Extents& e) const {
    return aligned_floats(layout(v, e, nullptr).floats() + values_[static_cast<std::size_t>(v)].slack);
  }

 private:
  [[noreturn]] void fail(const Op& op, const std::string& what) const {
    throw std::invalid_argument("ctnn cpu backend: op '" + op.name + "': " + what);
  }

  ValueInfo& info(int v) { return values_[static_cast<std::size_t>(v)]; }

  std::size_t reserve(std::size_t floats) {
    const std::size_t at = arena_size_;
    arena_size_ += aligned_floats(floats);
    return at;
  }

  void build_steps() {
    const auto& ops = program_.ops;
    info(0).channels = static_cast<std::size_t>(program_.input_channels);
    info(0).lanes = program_.input_channels < B ? program_.input_channels : B;
    Step input{};
    input.kind = StepKind::input;
    steps_.push_back(input);
    feature_steps_ = 0;

    for (std::size_t i = 0; i < ops.size();) {
      const Op& op = ops[i];
      const std::size_t boundary = i < program_.features_end ? program_.features_end : ops.size();
      Step s{};
      s.in = op.input;
      s.out = op.output;
      s.op = i;
      const std::size_t in_channels = info(op.input).channels;
      if (op_traits(op.kind).in_place && op.output != op.input) {
        // An element-wise op on a value it must not modify (the caller's
        // input): copy first, then run in place on the copy.
        Step copy{};
        copy.kind = StepKind::copy;
        copy.in = op.input;
        copy.out = op.output;
        copy.op = i;
        copy.end_op = i;
        info(op.output).channels = in_channels;
        info(op.output).lanes = info(op.input).lanes;
        steps_.push_back(copy);
        s.in = op.output;
      }
      std::size_t next = i + 1;
      bool emit = true;
      switch (op.kind) {
        case OpKind::conv:
        case OpKind::grouped_conv: {
          s.kind = StepKind::conv;
          s.conv.in_channels = op.in_channels;
          s.conv.out_channels = op.out_channels;
          s.conv.kernel = op.kernel;
          s.conv.stride = op.stride;
          s.conv.padding = op.padding;
          s.conv.in_lanes = info(op.input).lanes;
          if (op.groups > 1) slice_groups(op, s);
          s.conv.winograd = options_.winograd && op.groups == 1
                                ? winograd_tile<Arch>(op.in_channels, op.out_channels, op.kernel,
                                                                     op.stride, op.padding, s.conv.in_lanes)
                                              : 0;
          info(op.output).channels = static_cast<std::size_t>(op.out_channels);
          info(op.output).lanes = B;
          // Epilogue fusion (ir/fusion.hpp): conv -> [bn] -> [add] -> [relu].
          // The epilogue reads a residual in the conv output's own layout.
          const Epilogue tail = absorb_epilogue(program_, i, boundary, FusionRules{}, [&](int r) {
            return info(r).lanes == B && info(r).channels == info(op.output).channels;
          });
          if (tail.batch_norm) bn_of_.push_back({steps_.size(), static_cast<std::size_t>(tail.batch_norm - ops.data())});
          s.res = tail.residual;
          s.conv.relu = tail.activation == Activation::relu;
          next = tail.end;
          // conv -> ... -> max_pool (the stem): pool straight from registers'
          // rows when nothing else reads the convolution's output.
          if (next < boundary && ops[next].kind == OpKind::max_pool && ops[next].input == op.output &&
              !s.conv.winograd && s.slices == 1 && ops[next].kernel >= 1 && ops[next].stride >= 1 && ops[next].padding >= 0 &&
              !read_after(op.output, next + 1)) {
            const Op& pool = ops[next];
            s.conv.pool_kernel = pool.kernel;
            s.conv.pool_stride = pool.stride;
            s.conv.pool_padding = pool.padding;
            s.mid = op.output;
            s.out = pool.output;
            info(pool.output).channels = static_cast<std::size_t>(op.out_channels);
            info(pool.output).lanes = B;
            ++next;
          }
          break;
        }
        case OpKind::batch_norm:
          s.kind = StepKind::scale_shift;
          bn_of_.push_back({steps_.size(), i});
          break;
        case OpKind::relu: s.kind = StepKind::relu; break;
        case OpKind::sigmoid: s.kind = StepKind::sigmoid; break;
        case OpKind::softmax: s.kind = StepKind::softmax; break;
        case OpKind::dropout: emit = false; break;
        case OpKind::pad_shortcut:
          s.kind = StepKind::pad_shortcut;
          s.stride = op.stride;
          s.channel_offset = static_cast<std::size_t>(op.out_channels - op.in_channels) / 2;
          info(op.output).channels = static_cast<std::size_t>(op.out_channels);
          info(op.output).lanes = B;  // like a conv's output: the residual of a fused epilogue
          break;
        case OpKind::add:
          s.kind = StepKind::add;
          s.res = op.residual;
          if (next < boundary && ops[next].kind == OpKind::relu && ops[next].input == op.output &&
              ops[next].output == op.output) {
            s.relu = true;
            ++next;
          }
          break;
        case OpKind::max_pool:
          s.kind = StepKind::max_pool;
          s.kernel = op.kernel;
          s.stride = op.stride;
          s.padding = op.padding;
          info(op.output).channels = in_channels;
          info(op.output).lanes = info(op.input).lanes;
          break;
        case OpKind::global_avg_pool:
          s.kind = StepKind::avg_pool;
          info(op.output).channels = in_channels;
          info(op.output).lanes = 1;
          break;
        case OpKind::linear:
          s.kind = StepKind::linear;
          s.in_features = op.in_channels;
          s.out_features = op.out_channels;
          info(op.output).channels = static_cast<std::size_t>(op.out_channels);
          info(op.output).lanes = 1;
          break;
      }
      s.end_op = next;
      if (emit) steps_.push_back(s);
      for (std::size_t k = i; k < next; ++k)
        if (k + 1 == program_.features_end) feature_steps_ = steps_.size();
      i = next;
    }
    if (program_.features_end == 0) feature_steps_ = 1;

    // A value's border is the widest padding of the convolutions that read
    // it (Winograd's input tiles overhang sizes that are not a multiple of
    // the tile by up to M).
    for (const Step& s : steps_)
      if (s.kind == StepKind::conv) {
        const ConvSpec& c = s.conv;
        ValueInfo& v = info(s.in);
        v.border = std::max(v.border, c.winograd ? c.winograd : c.padding);
        v.slack = std::max(v.slack, conv_read_slack<Arch>(c.stride, v.lanes, c.kernel));
        if (c.winograd == 2)
          winograd_scratch_ =
              std::max(winograd_scratch_, winograd_scratch_floats<Arch, 2>(c.in_channels, c.out_channels));
        if (c.winograd == 4)
          winograd_scratch_ =
              std::max(winograd_scratch_, winograd_scratch_floats<Arch, 4>(c.in_channels, c.out_channels));
      }
  }

  // A grouped convolution runs as `slices` dense convolutions, each over a
  // run of whole groups whose input and output channels start on block
  // boundaries (outputs on block pairs, the micro-kernels' unit), with zero
  // weights between the groups inside a slice. The slice is the smallest
  // such run: 4-channel groups with 16-lane blocks cost 8x the grouped
  // arithmetic, groups of 32 channels or more cost nothing extra.
  void slice_groups(const Op& op, Step& s) const {
    const int cin_g = op.in_channels / op.groups, cout_g = op.out_channels / op.groups;
    int k = op.groups;
    for (int d = 1; d < op.groups; ++d)
      if (op.groups % d == 0 && (d * cout_g) % (2 * B) == 0 && (d * cin_g) % s.conv.in_lanes == 0) {
        k = d;
        break;
      }
    s.slices = op.groups / k;
    s.conv.in_channels = k * cin_g;
    s.conv.out_channels = k * cout_g;
  }

  // Whether value v is read by ops [from, end) or is a result of the program.
  bool read_after(int v, std::size_t from) const {
    if (v == program_.features || v == program_.output) return true;
    for (std::size_t k = from; k < program_.ops.size(); ++k)
      if (program_.ops[k].input == v || program_.ops[k].residual == v) return true;
    return false;
  }

  // Workspace slots by liveness over the steps; the features and the output
  // stay alive to the end of their stage.
  void plan_slots() {
    std::vector<Lifetime> lives(values_.size());
    for (std::size_t k = 0; k < steps_.size(); ++k)
      for (int v : {steps_[k].in, steps_[k].res, steps_[k].out})
        if (v >= 0) lives[static_cast<std::size_t>(v)].touch(k);
    lives[static_cast<std::size_t>(program_.features)].keep_until(feature_steps_ ? feature_steps_ - 1 : 0);
    lives[static_cast<std::size_t>(program_.output)].keep_until(steps_.size() - 1);
    const SlotPlan plan = assign_slots(lives);
    for (std::size_t v = 0; v < values_.size(); ++v) values_[v].slot = plan.slot_of[v];
    slots_ = plan.slots;
  }

  // Second pass: fold, repack and write every step's parameters.
  void pack(std::span<const float> params) {
    std::vector<std::size_t> bn_op(steps_.size(), no_param);
    for (auto [step, op] : bn_of_) bn_op[step] = op;

    for (Step& s : steps_) {
      if (s.kind == StepKind::conv) {
        ConvSpec& c = s.conv;
        const std::size_t out_blocks = (static_cast<std::size_t>(c.out_channels) + B - 1) / B;
        c.groups = static_cast<int>((out_blocks + 1) / 2);
        c.group_floats = packed_conv_floats<Arch>(c.in_channels, c.out_channels, c.kernel, c.in_lanes) /
                         static_cast<std::size_t>(c.groups);
        s.slice_weights = aligned_floats(c.winograd ? winograd_weight_floats<Arch>(c.winograd, c.in_channels, c.out_channels)
                                                    : c.group_floats * static_cast<std::size_t>(c.groups));
        s.slice_bias = static_cast<std::size_t>(c.groups) * 2 * B;
        c.weights = reserve(s.slice_weights * static_cast<std::size_t>(s.slices));
        c.bias = reserve(s.slice_bias * static_cast<std::size_t>(s.slices));
      } else if (s.kind == StepKind::linear) {
        s.weights = reserve(packed_linear_floats<Arch>(s.in_features, s.out_features));
        s.bias = reserve(packed_linear_floats<Arch>(1, s.out_features));
      } else if (s.kind == StepKind::scale_shift) {
        const std::size_t padded = (info(s.in).channels + B - 1) / B * B;
        s.weights = reserve(padded);
        s.bias = reserve(padded);
      }
    }
    zeros_ = reserve(2 * B);
    arena_.resize(arena_size_);
    bn_op_ = std::move(bn_op);
    for (std::size_t k = 0; k < steps_.size(); ++k) pack_step(k, params);
  }

 public:
  // Re-packs the steps that implement any of ops [first_op, end_op) from
  // `params` (after training changed them); the rest of the plan is kept.
  // Returns how many steps it re-packed.
  std::size_t refresh(std::span<const float> params, std::size_t first_op, std::size_t end_op) {
    if (params.size() < params_floats_)
      throw std::invalid_argument("ctnn cpu backend: refresh with a parameter arena of another model");
    std::size_t packed = 0;
    for (std::size_t k = 0; k < steps_.size(); ++k)
      if (steps_[k].op < end_op && first_op < steps_[k].end_op) pack_step(k, params), ++packed;
    return packed;
  }

 private:
  void pack_step(std::size_t k, std::span<const float> params) {
    const auto& ops = program_.ops;
    float* a = arena_.data();
    {
      Step& s = steps_[k];
      const Op& op = ops[s.op];
      const std::vector<std::size_t>& bn_op = bn_op_;
      if (s.kind == StepKind::conv) {
        const std::size_t cout = static_cast<std::size_t>(op.out_channels);  // all slices
        std::vector<double> scale(cout, 1.0), shift(cout, 0.0);
        if (bn_op[k] != no_param) bn_coefficients(ops[bn_op[k]], params, scale, shift);
        for (std::size_t o = 0; o < cout; ++o)
          if (op.bias != no_param) shift[o] += scale[o] * static_cast<double>(params[op.bias + o]);
        if (s.conv.winograd == 2)
          pack_winograd_weights<Arch, 2>(params.data() + op.weight, scale, s.conv.in_channels, s.conv.out_channels,
                                         a + s.conv.weights);
        else if (s.conv.winograd == 4)
          pack_winograd_weights<Arch, 4>(params.data() + op.weight, scale, s.conv.in_channels, s.conv.out_channels,
                                         a + s.conv.weights);
        else if (s.slices == 1 && op.groups == 1)
          pack_conv_weights<Arch>(params.data() + op.weight, scale, s.conv.in_channels, s.conv.out_channels,
                                  s.conv.kernel, s.conv.in_lanes, a + s.conv.weights);
        else
          pack_grouped_weights(op, s, params, scale, a);
        const std::size_t per_slice = static_cast<std::size_t>(s.conv.out_channels);
        for (std::size_t o = 0; o < cout; ++o)
          a[s.conv.bias + o / per_slice * s.slice_bias + o % per_slice] = static_cast<float>(shift[o]);
      } else if (s.kind == StepKind::linear) {
        pack_linear_weights<Arch>(params.data() + op.weight, s.in_features, s.out_features, a + s.weights);
        if (op.bias != no_param)
          std::copy_n(params.data() + op.bias, static_cast<std::size_t>(s.out_features), a + s.bias);
      } else if (s.kind == StepKind::scale_shift) {
        const std::size_t ch = info(s.in).channels;
        std::vector<double> scale(ch, 1.0), shift(ch, 0.0);
        bn_coefficients(op, params, scale, shift);
        for (std::size_t c = 0; c < ch; ++c) {
          a[s.weights + c] = static_cast<float>(scale[c]);
          a[s.bias + c] = static_cast<float>(shift[c]);
        }
      }
    }
  }

  // Each slice of a grouped convolution as a dense [out][in][k][k] block
  // (zero between its groups), packed like any convolution.
  void pack_grouped_weights(const Op& op, const Step& s, std::span<const float> params, std::span<const double> scale,
                            float* a) const {
    const std::size_t kk = static_cast<std::size_t>(op.kernel * op.kernel);
    const std::size_t cin_g = static_cast<std::size_t>(op.in_channels / op.groups);
    const std::size_t cout_g = static_cast<std::size_t>(op.out_channels / op.groups);
    const std::size_t in_s = static_cast<std::size_t>(s.conv.in_channels), out_s = static_cast<std::size_t>(s.conv.out_channels);
    std::vector<float> dense(out_s * in_s * kk);
    for (std::size_t slice = 0; slice < static_cast<std::size_t>(s.slices); ++slice) {
      std::fill(dense.begin(), dense.end(), 0.f);
      for (std::size_t o = 0; o < out_s; ++o) {
        const std::size_t oc = slice * out_s + o, first_in = o / cout_g * cin_g;  // the group's inputs, slice-relative
        const float* w = params.data() + op.weight + oc * cin_g * kk;
        std::copy_n(w, cin_g * kk, dense.data() + (o * in_s + first_in) * kk);
      }
      pack_conv_weights<Arch>(dense.data(), scale.subspan(slice * out_s, out_s), s.conv.in_channels,
                              s.conv.out_channels, s.conv.kernel, s.conv.in_lanes,
                              a + s.conv.weights + slice * s.slice_weights);
    }
  }

  // Eval-mode BatchNorm as y = x * scale + shift, in double. Absent
  // parameters take PyTorch's defaults (weight 1, bias 0, mean 0, var 1).
  static void bn_coefficients(const Op& bn, std::span<const float> params, std::vector<double>& scale,
                              std::vector<double>& shift) {
    const auto get = [&](std::size_t off, std::size_t c, double dflt) {
      return off == no_param ? dflt : static_cast<double>(params[off + c]);
    };
    for (std::size_t c = 0; c < scale.size(); ++c) {
      const double s = get(bn.weight, c, 1.0) / std::sqrt(get(bn.running_var, c, 1.0) + static_cast<double>(bn.eps));
      scale[c] = s;
      shift[c] = get(bn.bias, c, 0.0) - get(bn.running_mean, c, 0.0) * s;
    }
  }

  Program program_;
  Options options_;
  std::vector<Step> steps_;
  std::size_t feature_steps_ = 0;
  std::vector<ValueInfo> values_;
  std::vector<int> channels_;
  std::vector<std::pair<std::size_t, std::size_t>> bn_of_;  // (step, batch-norm op) to fold or apply
  std::vector<std::size_t> bn_op_;  // per step: the batch-norm op it folds or applies, or no_param
  std::size_t params_floats_ = 0;
  int slots_ = 0;
  std::size_t zeros_ = 0;
  std::size_t winograd_scratch_ = 0;
  std::size_t arena_size_ = 0;
  AlignedBuffer arena_;
};

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu

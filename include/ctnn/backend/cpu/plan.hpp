// Compiles a Program into the CPU backend's inference plan, once, when an
// executor is built:
//  * BatchNorm directly after a convolution is folded into its weights and
//    bias (scale computed in double, rounded once);
//  * conv -> [bn] -> [add residual] -> [relu] becomes one step whose epilogue
//    adds the residual and applies ReLU while the tile is in registers;
//  * weights are repacked into the kernels' layouts (conv.hpp, linear.hpp);
//  * every value gets a layout (lanes, zero border) and a workspace slot;
//    slots are reused once a value is dead, so ResNet-50 needs a handful of
//    activation buffers rather than one per layer.
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
#include "ctnn/core/program.hpp"
#include "ctnn/core/tensor.hpp"

namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

enum class StepKind : std::uint8_t {
  input, copy, conv, max_pool, avg_pool, linear, scale_shift, relu, add, sigmoid, softmax
};

struct Step {
  StepKind kind{};
  int in = 0, out = 0, res = -1;  // value ids; res: fused or standalone residual
  int mid = -1;                   // conv + fused max pooling: the (never stored) conv output
  std::size_t op = 0;             // first program op this step implements
  ConvSpec conv;                  // conv
  int kernel = 1, stride = 1, padding = 0;  // max_pool
  int in_features = 0, out_features = 0;    // linear
  std::size_t weights = 0, bias = 0;        // linear: packed weights, bias; scale_shift: scale, shift
  bool relu = false;                        // add followed by relu
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
    if (program.values < 1 || program.features < 0 || program.features >= program.values || program.output < 0 ||
        program.output >= program.values || program.features_end > program.ops.size())
      throw std::invalid_argument("ctnn cpu backend: malformed program (value ids or features_end out of range)");
    values_.resize(static_cast<std::size_t>(program.values));
    build_steps(params);
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

  void check_value(const Op& op, int v, bool defined, const char* role) {
    if (v < 0 || v >= program_.values) fail(op, std::string(role) + " value " + std::to_string(v) + " out of range");
    if (defined_[static_cast<std::size_t>(v)] != defined)
      fail(op, std::string(role) + " value " + std::to_string(v) + (defined ? " is used before it is computed"
                                                                            : " is computed twice"));
  }

  void check_params(const Op& op, std::size_t offset, std::size_t count, const char* what,
                    std::span<const float> params) const {
    if (offset == no_param || offset > params.size() || count > params.size() - offset)
      fail(op, std::string(what) + " (" + std::to_string(count) + " floats at offset " +
                   (offset == no_param ? std::string("none") : std::to_string(offset)) +
                   ") is outside the parameter arena of " + std::to_string(params.size()) + " floats");
  }

  std::size_t reserve(std::size_t floats) {
    const std::size_t at = arena_size_;
    arena_size_ += aligned_floats(floats);
    return at;
  }

  void build_steps(std::span<const float> params) {
    const auto& ops = program_.ops;
    if (program_.input_channels < 1)
      throw std::invalid_argument("ctnn cpu backend: malformed program (input_channels must be positive)");
    defined_.assign(values_.size(), false);
    info(0).channels = static_cast<std::size_t>(program_.input_channels);
    info(0).lanes = program_.input_channels < B ? program_.input_channels : B;
    defined_[0] = true;
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
      check_value(op, op.input, true, "input");
      const std::size_t in_channels = info(op.input).channels;
      const bool produces = op.kind == OpKind::conv || op.kind == OpKind::max_pool ||
                            op.kind == OpKind::global_avg_pool || op.kind == OpKind::linear;
      if (produces) {
        check_value(op, op.output, false, "output");
      } else if (op.output != op.input) {
        // An element-wise op on a value it must not modify (the caller's
        // input): copy first, then run in place on the copy.
        check_value(op, op.output, false, "output");
        Step copy{};
        copy.kind = StepKind::copy;
        copy.in = op.input;
        copy.out = op.output;
        copy.op = i;
        info(op.output).channels = in_channels;
        info(op.output).lanes = info(op.input).lanes;
        defined_[static_cast<std::size_t>(op.output)] = true;
        steps_.push_back(copy);
        s.in = op.output;
      }
      std::size_t next = i + 1;
      bool emit = true;
      switch (op.kind) {
        case OpKind::conv: {
          if (op.in_channels != static_cast<int>(in_channels) || op.out_channels < 1 || op.kernel < 1 ||
              op.stride < 1 || op.padding < 0)
            fail(op, "convolution expects " + std::to_string(op.in_channels) + " input channels, kernel " +
                         std::to_string(op.kernel) + ", stride " + std::to_string(op.stride) + "; its input has " +
                         std::to_string(in_channels) + " channels");
          check_params(op, op.weight,
                       static_cast<std::size_t>(op.out_channels) * static_cast<std::size_t>(op.in_channels) *
                           static_cast<std::size_t>(op.kernel * op.kernel),
                       "weight", params);
          if (op.bias != no_param) check_params(op, op.bias, static_cast<std::size_t>(op.out_channels), "bias", params);
          s.kind = StepKind::conv;
          s.conv.in_channels = op.in_channels;
          s.conv.out_channels = op.out_channels;
          s.conv.kernel = op.kernel;
          s.conv.stride = op.stride;
          s.conv.padding = op.padding;
          s.conv.in_lanes = info(op.input).lanes;
          s.conv.winograd = options_.winograd ? winograd_tile<Arch>(op.in_channels, op.out_channels, op.kernel,
                                                                     op.stride, op.padding, s.conv.in_lanes)
                                              : 0;
          info(op.output).channels = static_cast<std::size_t>(op.out_channels);
          info(op.output).lanes = B;
          // Epilogue fusion: conv -> [bn] -> [add] -> [relu], all in place on
          // the conv's output and on the same side of features_end.
          if (next < boundary && ops[next].kind == OpKind::batch_norm && ops[next].input == op.output &&
              ops[next].output == op.output) {
            check_bn(ops[next], static_cast<std::size_t>(op.out_channels), params);
            bn_of_.push_back({steps_.size(), next});
            ++next;
          }
          if (next < boundary && ops[next].kind == OpKind::add && ops[next].input == op.output &&
              ops[next].output == op.output && ops[next].residual != op.output) {
            check_value(ops[next], ops[next].residual, true, "residual");
            if (info(ops[next].residual).lanes == B && info(ops[next].residual).channels == info(op.output).channels) {
              s.res = ops[next].residual;
              ++next;
            }
          }
          if (next < boundary && ops[next].kind == OpKind::relu && ops[next].input == op.output &&
              ops[next].output == op.output) {
            s.conv.relu = true;
            ++next;
          }
          // conv -> ... -> max_pool (the stem): pool straight from registers'
          // rows when nothing else reads the convolution's output.
          if (next < boundary && ops[next].kind == OpKind::max_pool && ops[next].input == op.output &&
              !s.conv.winograd && ops[next].kernel >= 1 && ops[next].stride >= 1 && ops[next].padding >= 0 &&
              !read_after(op.output, next + 1)) {
            const Op& pool = ops[next];
            check_value(pool, pool.output, false, "output");
            s.conv.pool_kernel = pool.kernel;
            s.conv.pool_stride = pool.stride;
            s.conv.pool_padding = pool.padding;
            s.mid = op.output;
            s.out = pool.output;
            info(pool.output).channels = static_cast<std::size_t>(op.out_channels);
            info(pool.output).lanes = B;
            defined_[static_cast<std::size_t>(op.output)] = true;
            defined_[static_cast<std::size_t>(pool.output)] = true;
            ++next;
          }
          break;
        }
        case OpKind::batch_norm:
          check_bn(op, in_channels, params);
          s.kind = StepKind::scale_shift;
          bn_of_.push_back({steps_.size(), i});
          break;
        case OpKind::relu: s.kind = StepKind::relu; break;
        case OpKind::sigmoid: s.kind = StepKind::sigmoid; break;
        case OpKind::softmax: s.kind = StepKind::softmax; break;
        case OpKind::dropout: emit = false; break;
        case OpKind::add:
          check_value(op, op.residual, true, "residual");
          if (info(op.residual).channels != in_channels)
            fail(op, "residual has " + std::to_string(info(op.residual).channels) + " channels, input has " +
                         std::to_string(in_channels));
          s.kind = StepKind::add;
          s.res = op.residual;
          if (next < boundary && ops[next].kind == OpKind::relu && ops[next].input == op.output &&
              ops[next].output == op.output) {
            s.relu = true;
            ++next;
          }
          break;
        case OpKind::max_pool:
          if (op.kernel < 1 || op.stride < 1 || op.padding < 0)
            fail(op, "max pooling needs kernel and stride >= 1 and padding >= 0");
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
          if (op.in_channels != static_cast<int>(in_channels) || op.out_channels < 1)
            fail(op, "linear layer expects " + std::to_string(op.in_channels) + " input features; its input has " +
                         std::to_string(in_channels) + " channels");
          check_params(op, op.weight,
                       static_cast<std::size_t>(op.out_channels) * static_cast<std::size_t>(op.in_channels), "weight",
                       params);
          if (op.bias != no_param) check_params(op, op.bias, static_cast<std::size_t>(op.out_channels), "bias", params);
          s.kind = StepKind::linear;
          s.in_features = op.in_channels;
          s.out_features = op.out_channels;
          info(op.output).channels = static_cast<std::size_t>(op.out_channels);
          info(op.output).lanes = 1;
          break;
      }
      if (produces) defined_[static_cast<std::size_t>(s.out)] = true;
      if (emit) steps_.push_back(s);
      for (std::size_t k = i; k < next; ++k)
        if (k + 1 == program_.features_end) feature_steps_ = steps_.size();
      i = next;
    }
    if (program_.features_end == 0) feature_steps_ = 1;
    if (!defined_[static_cast<std::size_t>(program_.features)] || !defined_[static_cast<std::size_t>(program_.output)])
      throw std::invalid_argument("ctnn cpu backend: malformed program (features or output value is never computed)");

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

  // Whether value v is read by ops [from, end) or is a result of the program.
  bool read_after(int v, std::size_t from) const {
    if (v == program_.features || v == program_.output) return true;
    for (std::size_t k = from; k < program_.ops.size(); ++k)
      if (program_.ops[k].input == v || program_.ops[k].residual == v) return true;
    return false;
  }

  void check_bn(const Op& op, std::size_t channels, std::span<const float> params) const {
    for (std::size_t off : {op.weight, op.bias, op.running_mean, op.running_var})
      if (off != no_param) check_params(op, off, channels, "batch-norm parameter", params);
  }

  // Assigns workspace slots: a value takes a free slot when it is computed
  // and releases it after its last reader. A step's output never shares a
  // slot with its inputs, as its inputs are still alive while it runs.
  void plan_slots() {
    const std::size_t nsteps = steps_.size();
    std::vector<std::size_t> last(values_.size(), 0), birth(values_.size(), nsteps);
    for (std::size_t s = 0; s < nsteps; ++s) {
      const Step& st = steps_[s];
      for (int v : {st.in, st.res, st.out})
        if (v >= 0) last[static_cast<std::size_t>(v)] = std::max(last[static_cast<std::size_t>(v)], s);
      if (birth[static_cast<std::size_t>(st.out)] == nsteps) birth[static_cast<std::size_t>(st.out)] = s;
    }
    const auto keep = [&](int v, std::size_t until) {
      last[static_cast<std::size_t>(v)] = std::max(last[static_cast<std::size_t>(v)], until);
    };
    keep(program_.features, feature_steps_ ? feature_steps_ - 1 : 0);
    keep(program_.output, nsteps - 1);

    std::vector<int> free_slots;
    for (std::size_t s = 0; s < nsteps; ++s) {
      const int out = steps_[s].out;
      if (birth[static_cast<std::size_t>(out)] == s) {
        if (free_slots.empty()) {
          info(out).slot = slots_++;
        } else {
          info(out).slot = free_slots.back();
          free_slots.pop_back();
        }
      }
      for (std::size_t v = 0; v < values_.size(); ++v)
        if (birth[v] <= s && last[v] == s && values_[v].slot >= 0) free_slots.push_back(values_[v].slot);
    }
  }

  // Second pass: fold, repack and write every step's parameters.
  void pack(std::span<const float> params) {
    const auto& ops = program_.ops;
    std::vector<std::size_t> bn_op(steps_.size(), no_param);
    for (auto [step, op] : bn_of_) bn_op[step] = op;

    for (Step& s : steps_) {
      if (s.kind == StepKind::conv) {
        ConvSpec& c = s.conv;
        const std::size_t out_blocks = (static_cast<std::size_t>(c.out_channels) + B - 1) / B;
        c.groups = static_cast<int>((out_blocks + 1) / 2);
        c.group_floats = packed_conv_floats<Arch>(c.in_channels, c.out_channels, c.kernel, c.in_lanes) /
                         static_cast<std::size_t>(c.groups);
        c.weights = reserve(c.winograd ? winograd_weight_floats<Arch>(c.winograd, c.in_channels, c.out_channels)
                                       : c.group_floats * static_cast<std::size_t>(c.groups));
        c.bias = reserve(static_cast<std::size_t>(c.groups) * 2 * B);
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
    float* a = arena_.data();

    for (std::size_t k = 0; k < steps_.size(); ++k) {
      Step& s = steps_[k];
      const Op& op = ops[s.op];
      if (s.kind == StepKind::conv) {
        const std::size_t cout = static_cast<std::size_t>(s.conv.out_channels);
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
        else
          pack_conv_weights<Arch>(params.data() + op.weight, scale, s.conv.in_channels, s.conv.out_channels,
                                  s.conv.kernel, s.conv.in_lanes, a + s.conv.weights);
        for (std::size_t o = 0; o < cout; ++o) a[s.conv.bias + o] = static_cast<float>(shift[o]);
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
  std::vector<bool> defined_;
  std::vector<std::pair<std::size_t, std::size_t>> bn_of_;  // (step, batch-norm op) to fold or apply
  int slots_ = 0;
  std::size_t zeros_ = 0;
  std::size_t winograd_scratch_ = 0;
  std::size_t arena_size_ = 0;
  AlignedBuffer arena_;
};

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu

// The training executor's skeleton, shared by every backend: it walks the
// tape (tape.hpp) forward and backward, owns parameters, BatchNorm
// statistics, gradients and optimiser state in the model's arena layout, and
// keeps what each op's backward needs (batch statistics, integer max-pool
// indices, dropout masks). It holds no kernel: `Kernels` (one set per
// backend) computes every op on NCHW values and runs the optimiser's rule.
// Buffers are sized on the first step of a shape; later steps allocate
// nothing (as long as the kernels do not).
//
// Where the buffers live is the kernels' `Memory` (HostMemory below, or a
// device's): with host-visible memory the trainer reads outputs, gradients and
// parameters in place; otherwise the executor copies the input in, the
// output and the loss gradient across, and mirrors gradients, parameters and
// optimiser state on the host when they are asked for.
//
// Kernels provide, for NCHW views (dx may be empty: no gradient wanted):
//   reserve(program, tape, extents)                 scratch for these extents
//   conv_forward(op, x, y, params)                  conv and grouped_conv
//   conv_backward(op, x, dy, dx, accumulate, params, grads)
//   linear_forward / linear_backward                the same for Linear
//   batch_norm_forward(op, x, y, params, batch_statistics, factor, saved, sync)
//   batch_norm_backward(op, x, dy, dx, accumulate, params, grads, batch_statistics, saved, sync)
//                                                   saved: 4 x channels doubles (means, 1/std, scratch);
//                                                   sync: null, or synchronised BatchNorm's reduction
//   relu/sigmoid/softmax _forward(x, y), _backward(y, dy, dx, accumulate)
//   max_pool_forward(op, x, y, argmax), max_pool_backward(op, dy, dx, accumulate, argmax)
//   global_avg_pool_forward(x, y), global_avg_pool_backward(dy, dx, accumulate)
//   dropout_forward(op, x, y, rng, mask), dropout_backward(dy, dx, accumulate, mask or null)
//   add_forward(x, residual, y), pass_gradient(dy, dx, accumulate)
//   pad_shortcut_forward(op, x, y), pad_shortcut_backward(op, dy, dx, accumulate)
//   apply(optimizer, ranges, params, grads, state, gradient_scale)
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ctnn/core/init.hpp"
#include "ctnn/core/tensor.hpp"
#include "ctnn/ir/extents.hpp"
#include "ctnn/ir/validate.hpp"
#include "ctnn/ir/op_traits.hpp"
#include "ctnn/train/exchange.hpp"
#include "ctnn/train/optim.hpp"
#include "ctnn/train/tape.hpp"

namespace ctnn::train {

// Buffers in host memory: what the reference and CPU kernels use.
struct HostMemory {
  static constexpr bool host_visible = true;
  template <class T>
  using Array = std::vector<T>;  // resize() keeps the contents and zero-fills what it adds
  using Floats = AlignedBuffer;  // reserve() grows only
  template <class T>
  static void to_device(T* dst, const T* src, std::size_t n) { std::copy(src, src + n, dst); }
  template <class T>
  static void to_host(T* dst, const T* src, std::size_t n) { std::copy(src, src + n, dst); }
  template <class T>
  static void copy(T* dst, const T* src, std::size_t n) { std::copy(src, src + n, dst); }
  template <class T>
  static void zero(T* p, std::size_t n) { std::fill(p, p + n, T{}); }
};

template <class Kernels>
class TapeExecutor {
  using Memory = typename Kernels::Memory;
  template <class T>
  using Array = typename Memory::template Array<T>;

 public:
  // Whether the trainer may read outputs, gradients and parameters in place.
  static constexpr bool host_visible = Memory::host_visible;

  TapeExecutor(const Program& program, std::span<const float> params, std::size_t begin, const char* backend)
      : program_(program), tape_(make_tape(program_, begin, program_.ops.size())) {
    validate(program_, params.size(), backend);
    params_.resize(params.size());
    grads_.resize(params.size());
    Memory::to_device(params_.data(), params.data(), params.size());
    extents_.resize(tape_.values());
    saved_.resize(tape_.ops.size());
    batches_.assign(tape_.ops.size(), 0);
  }

  const Tape& tape() const { return tape_; }
  std::size_t first_op() const { return tape_.begin; }
  std::span<const float> parameters() const { return on_host(params_, host_params_); }
  std::span<const float> gradients() const { return on_host(grads_, host_grads_); }
  // Copies parameters and BatchNorm statistics back into a model's arena.
  void write_parameters(std::span<float> arena) const { Memory::to_host(arena.data(), params_.data(), params_.size()); }
  // The parameters the optimiser moves, with their groups' settings.
  void set_trainable(std::vector<TrainableRange> ranges) { trainable_ = std::move(ranges); }

  // Data-parallel training (train/exchange.hpp): the exchange sees gradients as
  // backward finishes them and averages them before the optimiser runs.
  void set_exchange(GradientExchange* exchange) {
    if constexpr (!host_visible)
      if (exchange)
        throw std::invalid_argument(
            "ctnn: data-parallel gradient exchange needs a backend whose training buffers are host memory "
            "(backend::Cpu or backend::Reference); this backend keeps them on its device");
    exchange_ = exchange;
    if constexpr (host_visible)
      if (exchange_) exchange_->start(params_);
  }

  // The L2 norm of the trainable parameters' gradients (for clipping), in double.
  double gradient_norm() const {
    const std::span<const float> grads = gradients();
    double sum = 0;
    for (const TrainableRange& r : trainable_)
      for (std::size_t i = r.offset; i < r.offset + r.size; ++i) sum += double(grads[i]) * grads[i];
    return std::sqrt(sum);
  }

  // Training mode: BatchNorm normalises with batch statistics and moves its
  // running ones, Dropout draws masks from `rng`. Eval mode: running
  // statistics, no dropout (what the loss of a validation batch needs).
  ConstTensorView forward(ConstTensorView input, Mode mode, SplitMix64& rng) {
    reserve(input.shape);
    if constexpr (host_visible) {
      input_ = input;
    } else {
      input_device_.reserve(input.size());
      Memory::to_device(input_device_.data(), input.data, input.size());
      input_ = {input_device_.data(), input.shape};
    }
    mode_ = mode;
    float* params = params_.data();
    for (std::size_t k = 0; k < tape_.ops.size(); ++k) {
      const Stopwatch clock(profiling_ ? &profile_[k].forward_ms : nullptr);
      const TapeOp& to = tape_.ops[k];
      const Op& op = program_.ops[to.op];
      const ConstTensorView x = value(to.in);
      const TensorView y = value(to.out);
      Saved& s = saved_[k];
      Kernels& r = kernels_;
      switch (op.kind) {
        case OpKind::conv:
        case OpKind::grouped_conv: r.conv_forward(op, x, y, params); break;
        case OpKind::batch_norm: {
          const bool batch = mode == Mode::train;
          double factor = op.momentum;
          if (batch && op.momentum < 0) factor = 1.0 / static_cast<double>(++batches_[k]);  // cumulative average
          r.batch_norm_forward(op, x, y, params, batch, factor, s.statistics.data(), batch_norm_sync());
          break;
        }
        case OpKind::relu: r.relu_forward(x, y); break;
        case OpKind::max_pool: r.max_pool_forward(op, x, y, s.argmax.data()); break;
        case OpKind::global_avg_pool: r.global_avg_pool_forward(x, y); break;
        case OpKind::linear: r.linear_forward(op, x, y, params); break;
        case OpKind::sigmoid: r.sigmoid_forward(x, y); break;
        case OpKind::softmax: r.softmax_forward(x, y); break;
        case OpKind::dropout:
          s.masked = mode == Mode::train && op.dropout_p > 0;
          if (s.masked)
            r.dropout_forward(op, x, y, rng, s.mask.data());
          else if (x.data != y.data)
            Memory::copy(y.data, x.data, x.size());
          break;
        case OpKind::add: r.add_forward(x, value(to.res), y); break;
        case OpKind::pad_shortcut: r.pad_shortcut_forward(op, x, y); break;
      }
    }
    const ConstTensorView y = value(tape_.output);
    if constexpr (host_visible) {
      return y;
    } else {
      host_output_.resize(y.size());
      Memory::to_host(host_output_.data(), y.data, y.size());
      return {host_output_.data(), y.shape};
    }
  }

  // Where the loss writes dLoss/d(output) (host memory), before backward().
  TensorView output_gradient() {
    const TensorView d = value(tape_.d_output);
    if constexpr (host_visible) {
      return d;
    } else {
      host_output_gradient_.resize(d.size());
      return {host_output_gradient_.data(), d.shape};
    }
  }

  // Parameter gradients of the last forward pass (cleared first).
  void backward() {
    if constexpr (!host_visible) {
      const TensorView d = value(tape_.d_output);
      Memory::to_device(d.data, host_output_gradient_.data(), d.size());
    }
    Memory::zero(grads_.data(), grads_.size());
    const float* params = params_.data();
    float* grads = grads_.data();
    for (std::size_t k = tape_.ops.size(); k-- > 0;) {
      const Stopwatch clock(profiling_ ? &profile_[k].backward_ms : nullptr);
      const TapeOp& to = tape_.ops[k];
      const Op& op = program_.ops[to.op];
      Saved& s = saved_[k];
      const ConstTensorView dy = value(to.d_out);
      const TensorView dx = to.d_in == no_value ? TensorView{} : value(to.d_in);
      const bool acc = to.accumulate_in;
      Kernels& r = kernels_;
      switch (op.kind) {
        case OpKind::conv:
        case OpKind::grouped_conv: r.conv_backward(op, value(to.in), dy, dx, acc, params, grads); break;
        case OpKind::batch_norm:
          r.batch_norm_backward(op, value(to.in), dy, dx, acc, params, grads, mode_ == Mode::train,
                                s.statistics.data(), batch_norm_sync());
          break;
        case OpKind::linear: r.linear_backward(op, value(to.in), dy, dx, acc, params, grads); break;
        default:
          if (!dx.data) break;  // nothing upstream to receive it
          switch (op.kind) {
            case OpKind::relu: r.relu_backward(value(to.out), dy, dx, acc); break;
            case OpKind::sigmoid: r.sigmoid_backward(value(to.out), dy, dx, acc); break;
            case OpKind::softmax: r.softmax_backward(value(to.out), dy, dx, acc); break;
            case OpKind::max_pool: r.max_pool_backward(op, dy, dx, acc, s.argmax.data()); break;
            case OpKind::global_avg_pool: r.global_avg_pool_backward(dy, dx, acc); break;
            case OpKind::dropout: r.dropout_backward(dy, dx, acc, s.masked ? s.mask.data() : nullptr); break;
            case OpKind::add: r.pass_gradient(dy, dx, acc); break;
            case OpKind::pad_shortcut: r.pad_shortcut_backward(op, dy, dx, acc); break;
            default: break;
          }
      }
      if constexpr (host_visible)
        if (exchange_) {  // this op's parameter gradients are final
          if (op.weight != no_param) exchange_->gradient_ready(grads_, op.weight, weight_floats(op));
          if (op.bias != no_param) exchange_->gradient_ready(grads_, op.bias, bias_floats(op));
        }
      if (to.d_res != no_value) r.pass_gradient(dy, value(to.d_res), to.accumulate_res);
    }
    if constexpr (host_visible)
      if (exchange_) exchange_->gradients_done(grads_);
  }

  // One optimiser step over the trainable parameters, with the gradients
  // multiplied by `gradient_scale` (clipping); the backend's kernels run the rule.
  template <Optimizer O>
  void apply(O& optimizer, double gradient_scale = 1) {
    optimizer.begin_step();
    const auto k = static_cast<std::size_t>(optimizer.state_size());
    if (state_.size() < k * params_.size()) state_.resize(k * params_.size());  // once, on the first step (zeros)
    const Stopwatch clock(profiling_ ? &optimizer_ms_ : nullptr);
    kernels_.apply(optimizer, trainable_, params_.data(), grads_.data(), state_.data(), gradient_scale);
    if constexpr (host_visible)
      if (exchange_) exchange_->parameters_updated(params_);
  }

  Kernels& kernels() { return kernels_; }

  // Per-op wall time of every step while profiling is on (milliseconds per
  // call, in tape order; on a device backend this times the enqueueing only).
  struct OpProfile {
    std::string name;
    OpKind kind{};
    std::vector<double> forward_ms, backward_ms;
  };
  void set_profiling(bool on) {
    profiling_ = on;
    profile_.assign(tape_.ops.size(), {});
    for (std::size_t k = 0; k < tape_.ops.size(); ++k) {
      profile_[k].name = program_.ops[tape_.ops[k].op].name;
      profile_[k].kind = program_.ops[tape_.ops[k].op].kind;
    }
    optimizer_ms_.clear();
  }
  const std::vector<OpProfile>& op_profile() const { return profile_; }
  const std::vector<double>& optimizer_profile() const { return optimizer_ms_; }

  // What a checkpoint keeps besides the parameters: the optimiser's state
  // (state_size() floats per parameter, interleaved) and, per op, the batches
  // a cumulative-average BatchNorm has seen.
  std::span<const float> optimizer_state() const { return on_host(state_, host_state_); }
  std::span<const long> batches_seen() const { return batches_; }
  void restore(std::span<const float> params, std::span<const float> state, std::span<const long> batches) {
    if (params.size() != params_.size() || batches.size() != batches_.size())
      throw std::invalid_argument("ctnn: a training state for another network (" + std::to_string(params.size()) +
                                  " parameters, " + std::to_string(batches.size()) + " ops; this one has " +
                                  std::to_string(params_.size()) + " and " + std::to_string(batches_.size()) + ")");
    Memory::to_device(params_.data(), params.data(), params.size());
    state_ = Array<float>();
    state_.resize(state.size());
    Memory::to_device(state_.data(), state.data(), state.size());
    std::copy(batches.begin(), batches.end(), batches_.begin());
  }

 private:
  // Appends the milliseconds of its scope to `to`, when given.
  class Stopwatch {
   public:
    explicit Stopwatch(std::vector<double>* to) : to_(to) {
      if (to_) start_ = std::chrono::steady_clock::now();
    }
    ~Stopwatch() {
      if (to_) to_->push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count());
    }
    Stopwatch(const Stopwatch&) = delete;
    Stopwatch& operator=(const Stopwatch&) = delete;

   private:
    std::vector<double>* to_;
    std::chrono::steady_clock::time_point start_{};
  };

  struct Saved {
    Array<double> statistics;        // batch_norm: per channel mean, 1/std, and the kernels' scratch
    Array<std::uint32_t> argmax;     // max_pool: index in the input plane
    Array<float> mask;               // dropout: 0 or 1/(1-p) per element
    bool masked = false;
  };

  // A buffer as the host sees it: itself, or a fresh copy in `mirror`.
  template <class T>
  static std::span<const T> on_host(const Array<T>& a, std::vector<T>& mirror) {
    if constexpr (host_visible) {
      return {a.data(), a.size()};
    } else {
      mirror.resize(a.size());
      Memory::to_host(mirror.data(), a.data(), a.size());
      return mirror;
    }
  }

  train::StatisticsReduction* batch_norm_sync() const { return exchange_ ? exchange_->batch_norm_reduction() : nullptr; }

  TensorView value(int v) {
    const Extents& e = extents_[static_cast<std::size_t>(v)];
    if (v == tape_.input) return {const_cast<float*>(input_.data), e};
    const int slot = tape_.slots.slot_of[static_cast<std::size_t>(tape_.buffer[static_cast<std::size_t>(v)])];
    return {slots_[static_cast<std::size_t>(slot)].data(), e};
  }

  // Sizes every buffer for `input`; allocates only when a shape outgrows them.
  void reserve(Extents input) {
    if (input == reserved_) return;
    extents_[0] = input;
    for (const TapeOp& to : tape_.ops) {
      const Op& op = program_.ops[to.op];
      extents_[static_cast<std::size_t>(to.out)] = out_extents(op, extents_[static_cast<std::size_t>(to.in)], input);
    }
    // Gradients have their activation's extents.
    for (const TapeOp& to : tape_.ops)
      for (auto [a, d] : {std::pair{to.in, to.d_in}, std::pair{to.out, to.d_out}, std::pair{to.res, to.d_res}})
        if (d != no_value) extents_[static_cast<std::size_t>(d)] = extents_[static_cast<std::size_t>(a)];
    slots_.resize(static_cast<std::size_t>(tape_.slots.slots));
    for (std::size_t v = 1; v < tape_.values(); ++v) {
      const int b = tape_.buffer[v];
      if (b < 0) continue;
      slots_[static_cast<std::size_t>(tape_.slots.slot_of[static_cast<std::size_t>(b)])].reserve(extents_[v].count());
    }
    for (std::size_t k = 0; k < tape_.ops.size(); ++k) {
      const TapeOp& to = tape_.ops[k];
      const Op& op = program_.ops[to.op];
      const Extents& in = extents_[static_cast<std::size_t>(to.in)];
      const Extents& out = extents_[static_cast<std::size_t>(to.out)];
      Saved& s = saved_[k];
      switch (op.kind) {
        case OpKind::batch_norm: s.statistics.resize(4 * in.c); break;
        case OpKind::max_pool: s.argmax.resize(std::max(s.argmax.size(), out.count())); break;
        case OpKind::dropout: s.mask.resize(std::max(s.mask.size(), out.count())); break;
        default: break;
      }
    }
    kernels_.reserve(program_, tape_, extents_);
    reserved_ = input;
  }

  Program program_;
  Tape tape_;
  Array<float> params_, grads_, state_;
  std::vector<TrainableRange> trainable_;
  std::vector<Extents> extents_;
  std::vector<typename Memory::Floats> slots_;
  typename Memory::Floats input_device_;  // the input, when the host cannot hand it over in place
  std::vector<float> host_output_, host_output_gradient_;
  mutable std::vector<float> host_params_, host_grads_, host_state_;  // mirrors of device buffers
  std::vector<Saved> saved_;
  std::vector<long> batches_;  // per op: batches seen, for a cumulative-average BatchNorm
  Kernels kernels_;
  GradientExchange* exchange_ = nullptr;
  ConstTensorView input_{};
  Extents reserved_{};
  Mode mode_ = Mode::train;
  bool profiling_ = false;
  std::vector<OpProfile> profile_;
  std::vector<double> optimizer_ms_;
};

}  // namespace ctnn::train

// The reference backend: plain loops over NCHW, BatchNorm applied as written
// (never folded), one op at a time, accumulation in double (the kernels are
// in ops.hpp). Slow by design and obviously correct: it is the oracle every
// faster backend is tested against, so it shares no kernel, layout or
// folding with them. It runs inference (Executor, here) and training
// (TrainingExecutor, training.hpp) of every op kind.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ctnn/backend/reference/ops.hpp"
#include "ctnn/core/tensor.hpp"
#include "ctnn/ir/extents.hpp"
#include "ctnn/ir/liveness.hpp"
#include "ctnn/ir/op_traits.hpp"
#include "ctnn/ir/program.hpp"
#include "ctnn/ir/validate.hpp"

namespace ctnn::backend {

struct Reference {
  static constexpr const char* name = "reference";
  // The op kinds this backend runs (Model refuses others: CTNN_BACKEND_CANNOT_RUN).
  static constexpr std::uint32_t inference_ops = all_ops;
  static constexpr std::uint32_t training_ops = all_ops;

  class Executor {
   public:
    // Buffers are assigned to values by liveness, planned once per executor
    // and sized once per context, so a forward pass within capacity
    // allocates nothing.
    struct Context {
      std::vector<Extents> extents;
      std::vector<AlignedBuffer> slots;
      std::vector<double> plane;  // conv accumulation scratch
      Capacity capacity{};
    };

    Executor() = default;
    // Keeps its own copy of the Program and a view of the parameters (the
    // model's arena, which outlives it and does not move when the model does).
    Executor(const Program& program, std::span<const float> params) : program_(program), params_(params) {
      validate(program_, params.size(), "ctnn reference backend");
      std::vector<Lifetime> lives(static_cast<std::size_t>(program_.values));
      for (std::size_t i = 0; i < program_.ops.size(); ++i) {
        const Op& op = program_.ops[i];
        for (int v : {op.input, op.residual, op.output})
          if (v > 0) lives[static_cast<std::size_t>(v)].touch(i);
      }
      lives[static_cast<std::size_t>(program_.features)].keep_until(program_.features_end);
      lives[static_cast<std::size_t>(program_.output)].keep_until(program_.ops.size());
      slots_ = assign_slots(lives);
    }

    // The parameters are read in place: nothing to re-prepare after an edit.
    void refresh(std::span<const float> params, std::size_t /*first_op*/, std::size_t /*end_op*/) { params_ = params; }

    Context make_context(Capacity cap) const {
      Context ctx;
      ctx.capacity = cap;
      ctx.extents.resize(static_cast<std::size_t>(program_.values));
      ctx.slots.resize(static_cast<std::size_t>(slots_.slots));
      reserve(ctx, {cap.batch, static_cast<std::size_t>(program_.input_channels), cap.height, cap.width});
      return ctx;
    }

    ConstTensorView run(ConstTensorView input, Context& ctx, Stage stage) const {
      if (ctx.extents.size() != static_cast<std::size_t>(program_.values))
        throw std::logic_error("ctnn: this context was made for another model");
      reserve(ctx, input.shape);  // no-op within the context's capacity
      const float* params = params_.data();
      auto view = [&](int value) {
        const int slot = slots_.slot_of[static_cast<std::size_t>(value)];
        return TensorView{ctx.slots[static_cast<std::size_t>(slot)].data(), ctx.extents[static_cast<std::size_t>(value)]};
      };
      auto source = [&](int value) -> ConstTensorView { return value == 0 ? input : ConstTensorView(view(value)); };

      const std::size_t end = stage == Stage::features ? program_.features_end : program_.ops.size();
      for (std::size_t i = 0; i < end; ++i) {
        const Op& op = program_.ops[i];
        const ConstTensorView x = source(op.input);
        const TensorView y = view(op.output);
        namespace k = reference_ops;
        switch (op.kind) {
          case OpKind::conv:
          case OpKind::grouped_conv: k::conv_forward(op, x, y, params, ctx.plane); break;
          case OpKind::batch_norm:
            if (x.data != y.data) std::copy(x.data, x.data + x.size(), y.data);
            k::batch_norm_forward(op, y, params);
            break;
          case OpKind::relu: k::relu_forward(x, y); break;
          case OpKind::max_pool: k::max_pool_forward(op, x, y); break;
          case OpKind::global_avg_pool: k::global_avg_pool_forward(x, y); break;
          case OpKind::linear: k::linear_forward(op, x, y, params); break;
          case OpKind::sigmoid: k::sigmoid_forward(x, y); break;
          case OpKind::softmax: k::softmax_forward(x, y); break;
          case OpKind::dropout:  // identity at inference
            if (x.data != y.data) std::copy(x.data, x.data + x.size(), y.data);
            break;
          case OpKind::add: k::add_forward(x, source(op.residual), y); break;
          case OpKind::pad_shortcut: k::pad_shortcut_forward(op, x, y); break;
        }
      }
      return source(stage == Stage::features ? program_.features : program_.output);
    }

    std::string describe() const { return "reference (plain loops, BatchNorm unfolded, double accumulation)"; }

   private:
    void reserve(Context& ctx, Extents input) const {
      infer_extents(program_, input, ctx.extents);
      for (int v = 1; v < program_.values; ++v) {
        const int slot = slots_.slot_of[static_cast<std::size_t>(v)];
        if (slot >= 0) ctx.slots[static_cast<std::size_t>(slot)].reserve(ctx.extents[static_cast<std::size_t>(v)].count());
      }
      std::size_t plane = 0;
      for (const Op& op : program_.ops)
        if (op.kind == OpKind::conv || op.kind == OpKind::grouped_conv) {
          const Extents& o = ctx.extents[static_cast<std::size_t>(op.output)];
          plane = std::max(plane, o.h * o.w);
        }
      if (ctx.plane.size() < plane) ctx.plane.resize(plane);
    }

    Program program_;
    std::span<const float> params_;
    SlotPlan slots_;
  };

  // Defined in backend/reference/training.hpp (included by <ctnn/ctnn.hpp>),
  // so that inference-only translation units do not compile training.
  class TrainingExecutor;
};

}  // namespace ctnn::backend

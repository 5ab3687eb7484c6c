// ctnn::backend::Cpu: the fast CPU executor (xsimd micro-kernels, threads).
//
// Construction compiles the Program into a plan (plan.hpp: BatchNorm folded,
// epilogues fused, weights repacked). A Context owns the workspace for one
// caller: activation slots sized for its capacity, shapes, layouts, and its
// worker threads (thread_pool.hpp; as many as OpenMP's thread count, so
// OMP_NUM_THREADS and omp_set_num_threads() choose it). run() only computes
// pointers and calls kernels, so within the capacity it does not allocate,
// and one const executor serves any number of threads, each with its own
// context.
//
// `Cpu` is an alias of Backend<Arch> for the instruction set this translation
// unit is compiled for, so translation units built with different -m flags
// use different types and never share an inline definition.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ctnn/backend/cpu/conv.hpp"
#include "ctnn/backend/cpu/eltwise.hpp"
#include "ctnn/backend/cpu/layout.hpp"
#include "ctnn/backend/cpu/linear.hpp"
#include "ctnn/backend/cpu/plan.hpp"
#include "ctnn/backend/cpu/pool.hpp"
#include "ctnn/backend/cpu/simd.hpp"
#include "ctnn/backend/cpu/thread_pool.hpp"
#include "ctnn/backend/cpu/winograd.hpp"
#include "ctnn/backend/reference/reference.hpp"
#include "ctnn/ir/program.hpp"
#include "ctnn/core/tensor.hpp"

namespace ctnn::backend {
namespace cpu {
inline namespace CTNN_CPU_ISA {

template <class Arch>
struct Backend {
  static constexpr const char* name = "cpu";
  // The op kinds this backend runs (Model refuses others: CTNN_BACKEND_CANNOT_RUN).
  static constexpr std::uint32_t inference_ops = all_ops;  // grouped_conv included (by channel slices)
  static constexpr std::uint32_t training_ops = all_ops;
  // Training: im2col + GEMM kernels on NCHW values (backend/cpu/training.hpp,
  // included by <ctnn/ctnn.hpp>); after each step only the trained ops are
  // re-packed for inference (Executor::refresh).
  class TrainingExecutor;  // backend/cpu/training.hpp

  class Executor {
   public:
    class Context {
     public:
      Context() = default;
      Context(Context&&) noexcept = default;
      Context& operator=(Context&&) noexcept = default;

      const Capacity& capacity() const { return cap_; }

     private:
      friend class Executor;
      Capacity cap_{0, 0, 0};
      std::vector<Extents> extents_;
      std::vector<Layout> layouts_;
      std::vector<std::size_t> slot_offset_;  // slots + 1 entries
      std::size_t result_offset_ = 0, scratch_offset_ = 0, thread_offset_ = 0;
      std::size_t thread_floats_ = 0;  // per-thread scratch (Winograd chunks, pooling rings)
      int threads_ = 1;                // threads of the pool and of the per-thread scratch
      AlignedBuffer memory_;
      std::unique_ptr<ThreadPool> pool_;
    };

    Executor() = default;  // runs nothing until assigned a prepared executor
    Executor(const Program& program, std::span<const float> params, Options options = {})
        : plan_(program, params, options) {}

    // Re-packs the steps of ops [first_op, end_op) after their parameters
    // changed; returns how many steps that was.
    std::size_t refresh(std::span<const float> params, std::size_t first_op, std::size_t end_op) {
      return plan_.refresh(params, first_op, end_op);
    }

    // Reserves everything a forward pass up to `cap` needs.
    Context make_context(Capacity cap) const {
      Context ctx;
      reserve(ctx, cap);
      return ctx;
    }

    ConstTensorView run(ConstTensorView input, Context& ctx, Stage stage) const {
      return run_steps(input, ctx, stage, nullptr);
    }

    // One plan step's wall time: which program ops it covers and what it is.
    struct StepTime {
      std::string name;  // e.g. "conv layer1.0.conv2 (winograd F(4x4,3x3)) + add + relu"
      double ms = 0;
    };
    // Runs like run() and times every step (for benchmarks; allocates the result).
    std::vector<StepTime> profile(ConstTensorView input, Context& ctx, Stage stage) const {
      std::vector<StepTime> times;
      times.reserve(plan_.steps().size());
      run_steps(input, ctx, stage, &times);
      return times;
    }

    std::string describe() const {
      const int threads = max_threads();
      return std::string("cpu: ") + Arch::name() + ", " + std::to_string(threads) + " thread" +
             (threads == 1 ? "" : "s");
    }

   private:
    ConstTensorView run_steps(ConstTensorView input, Context& ctx, Stage stage, std::vector<StepTime>* times) const {
      const Program& p = plan_.program();
      if (!input.data) throw std::invalid_argument("ctnn cpu backend: the input tensor has no data");
      if (ctx.extents_.size() != static_cast<std::size_t>(p.values) ||
          ctx.slot_offset_.size() != static_cast<std::size_t>(plan_.slots()) + 1) {
        // A default-constructed context, or one made by another executor.
        reserve(ctx, {input.shape.n, input.shape.h, input.shape.w});
      }
      infer_extents(p, input.shape, ctx.extents_);
      if (!fits(ctx) || max_threads() > ctx.threads_) {
        reserve(ctx, {std::max(ctx.cap_.batch, input.shape.n), std::max(ctx.cap_.height, input.shape.h),
                      std::max(ctx.cap_.width, input.shape.w)});
        infer_extents(p, input.shape, ctx.extents_);
      }
      for (std::size_t v = 0; v < ctx.layouts_.size(); ++v) {
        const int slot = plan_.values()[v].slot;
        float* data = slot >= 0 ? ctx.memory_.data() + ctx.slot_offset_[static_cast<std::size_t>(slot)] : nullptr;
        ctx.layouts_[v] = plan_.layout(static_cast<int>(v), ctx.extents_[v], data);
      }

      const std::size_t end = stage == Stage::features ? plan_.feature_steps() : plan_.steps().size();
      for (std::size_t k = 0; k < end; ++k) {
        if (!times) {
          execute(plan_.steps()[k], input, ctx);
          continue;
        }
        const auto t0 = std::chrono::steady_clock::now();
        execute(plan_.steps()[k], input, ctx);
        const auto t1 = std::chrono::steady_clock::now();
        times->push_back({step_name(plan_.steps()[k]), std::chrono::duration<double, std::milli>(t1 - t0).count()});
      }

      const int result = stage == Stage::features ? p.features : p.output;
      const Layout& r = ctx.layouts_[static_cast<std::size_t>(result)];
      const Extents shape{r.n, r.c, r.h, r.w};
      if (r.is_nchw()) return {r.data, shape};
      float* dst = ctx.memory_.data() + ctx.result_offset_;
      for (std::size_t i = 0; i < r.n; ++i) layout_to_nchw<Arch>(r, i, dst);
      return {dst, shape};
    }

    std::string step_name(const Step& s) const {
      static constexpr const char* kinds[] = {"input", "copy",   "conv",    "max_pool", "avg_pool",    "linear",
                                              "batch_norm", "relu", "add", "sigmoid", "softmax", "pad_shortcut"};
      std::string name = kinds[static_cast<int>(s.kind)];
      if (s.kind != StepKind::input) name += " " + plan_.program().ops[s.op].name;
      if (s.kind == StepKind::conv) {
        if (s.conv.winograd) name += " (winograd F(" + std::to_string(s.conv.winograd) + "x" +
                                     std::to_string(s.conv.winograd) + ",3x3))";
        if (s.res >= 0) name += " + add";
        if (s.conv.relu) name += " + relu";
        if (s.conv.pool_kernel) name += " + max_pool";
      }
      return name;
    }

    void reserve(Context& ctx, Capacity cap) const {
      const Program& p = plan_.program();
      if (plan_.steps().empty())
        throw std::logic_error("ctnn cpu backend: this executor was default-constructed and has no program");
      if (cap.batch == 0 || cap.height == 0 || cap.width == 0)
        throw std::invalid_argument("ctnn cpu backend: context capacity must be positive in batch, height and width");
      const std::size_t values = static_cast<std::size_t>(p.values);
      ctx.extents_.assign(values, Extents{});
      ctx.layouts_.assign(values, Layout{});
      infer_extents(p, {cap.batch, static_cast<std::size_t>(p.input_channels), cap.height, cap.width}, ctx.extents_);

      std::vector<std::size_t> slot_size(static_cast<std::size_t>(plan_.slots()), 0);
      for (std::size_t v = 0; v < values; ++v) {
        const int slot = plan_.values()[v].slot;
        if (slot >= 0)
          slot_size[static_cast<std::size_t>(slot)] = std::max(slot_size[static_cast<std::size_t>(slot)],
                                                               plan_.value_floats(static_cast<int>(v), ctx.extents_[v]));
      }
      ctx.slot_offset_.assign(slot_size.size() + 1, 0);
      for (std::size_t s = 0; s < slot_size.size(); ++s) ctx.slot_offset_[s + 1] = ctx.slot_offset_[s] + slot_size[s];
      std::size_t total = ctx.slot_offset_.back();

      // A dense copy of the result when its layout is not NCHW, and room to
      // flatten linear inputs / outputs that are not dense.
      ctx.result_offset_ = total;
      total += aligned_floats(std::max(ctx.extents_[static_cast<std::size_t>(p.features)].count(),
                                       ctx.extents_[static_cast<std::size_t>(p.output)].count()));
      ctx.scratch_offset_ = total;
      std::size_t scratch = 0;
      for (const Step& s : plan_.steps())
        if (s.kind == StepKind::linear)
          scratch = std::max(scratch, aligned_floats(ctx.extents_[static_cast<std::size_t>(s.in)].count()) +
                                          ctx.extents_[static_cast<std::size_t>(s.out)].count());
      total += aligned_floats(scratch);
      // Winograd chunks and pooling rings: one scratch block per thread.
      if (!ctx.pool_ || ctx.pool_->size() < max_threads()) {
        ctx.pool_.reset();  // its workers end before new ones start
        ctx.pool_ = std::make_unique<ThreadPool>(max_threads());
      }
      ctx.threads_ = ctx.pool_->size();
      ctx.thread_offset_ = total;
      ctx.thread_floats_ = aligned_floats(std::max(plan_.winograd_scratch(), pool_scratch(ctx)));
      total += static_cast<std::size_t>(ctx.threads_) * ctx.thread_floats_;
      if (ctx.memory_.size() < total) ctx.memory_.resize(total);
      ctx.cap_ = cap;
    }

    static int max_threads() { return thread_count(); }

    bool fits(const Context& ctx) const {
      for (std::size_t v = 0; v < ctx.extents_.size(); ++v) {
        const int slot = plan_.values()[v].slot;
        if (slot < 0) continue;
        const std::size_t room =
            ctx.slot_offset_[static_cast<std::size_t>(slot) + 1] - ctx.slot_offset_[static_cast<std::size_t>(slot)];
        if (plan_.value_floats(static_cast<int>(v), ctx.extents_[v]) > room) return false;
      }
      const Program& p = plan_.program();
      return ctx.extents_[static_cast<std::size_t>(p.features)].count() <= ctx.scratch_offset_ - ctx.result_offset_ &&
             ctx.extents_[static_cast<std::size_t>(p.output)].count() <= ctx.scratch_offset_ - ctx.result_offset_ &&
             linear_scratch(ctx) <= ctx.thread_offset_ - ctx.scratch_offset_ &&
             std::max(plan_.winograd_scratch(), pool_scratch(ctx)) <= ctx.thread_floats_;
    }

    std::size_t pool_scratch(const Context& ctx) const {
      std::size_t floats = 0;
      for (const Step& s : plan_.steps())
        if (s.kind == StepKind::conv && s.conv.pool_kernel)
          floats = std::max(floats, conv_pool_scratch_floats<Arch>(s.conv, ctx.extents_[static_cast<std::size_t>(s.mid)].w));
      return floats;
    }

    std::size_t linear_scratch(const Context& ctx) const {
      std::size_t scratch = 0;
      for (const Step& s : plan_.steps())
        if (s.kind == StepKind::linear)
          scratch = std::max(scratch, aligned_floats(ctx.extents_[static_cast<std::size_t>(s.in)].count()) +
                                          ctx.extents_[static_cast<std::size_t>(s.out)].count());
      return scratch;
    }

    void execute(const Step& s, ConstTensorView input, Context& ctx) const {
      const auto& L = [&](int v) -> const Layout& { return ctx.layouts_[static_cast<std::size_t>(v)]; };
      const float* arena = plan_.arena();
      float* threads_scratch = ctx.memory_.data() + ctx.thread_offset_;
      const Parallel par{ctx.pool_.get(), std::min(max_threads(), ctx.threads_)};
      switch (s.kind) {
        case StepKind::input: {
          const Layout& d = L(0);
          const long items = static_cast<long>(d.n), rows = static_cast<long>(d.n * d.h);
          par.at_least(d.floats(), 16384).small_tasks(items + rows, [&](long t, int) {
            if (t < items) {
              for (std::size_t cb = 0; cb < d.blocks(); ++cb) clear_border<Arch>(d, static_cast<std::size_t>(t), cb);
              clear_unused_lanes<Arch>(d, static_cast<std::size_t>(t));
            } else {
              const auto r = static_cast<std::size_t>(t - items);
              nchw_row_to_layout<Arch>(input, r / d.h, r % d.h, d);
            }
          });
          break;
        }
        case StepKind::copy: {
          const Layout& src = L(s.in);
          const Layout& dst = L(s.out);
          const std::size_t len = src.w * static_cast<std::size_t>(src.lanes);
          for (std::size_t i = 0; i < src.n; ++i)
            for (std::size_t cb = 0; cb < src.blocks(); ++cb) {
              clear_border<Arch>(dst, i, cb);
              for (std::size_t y = 0; y < src.h; ++y)
                std::copy_n(src.at(i, cb, static_cast<std::ptrdiff_t>(y), 0), len,
                            dst.at(i, cb, static_cast<std::ptrdiff_t>(y), 0));
            }
          break;
        }
        case StepKind::conv:
          if (s.conv.pool_kernel) {
            const Extents& e = ctx.extents_[static_cast<std::size_t>(s.mid)];
            run_conv_pool<Arch>(s.conv, arena, L(s.in), static_cast<int>(e.h), static_cast<int>(e.w), L(s.out),
                                s.res >= 0 ? &L(s.res) : nullptr, threads_scratch, ctx.thread_floats_, par);
          } else if (s.conv.winograd == 2)
            run_winograd<Arch, 2>(s.conv, arena, plan_.zeros(), L(s.in), L(s.out), s.res >= 0 ? &L(s.res) : nullptr,
                                  threads_scratch, ctx.thread_floats_, par);
          else if (s.conv.winograd == 4)
            run_winograd<Arch, 4>(s.conv, arena, plan_.zeros(), L(s.in), L(s.out), s.res >= 0 ? &L(s.res) : nullptr,
                                  threads_scratch, ctx.thread_floats_, par);
          else if (s.slices == 1)
            run_conv<Arch>(s.conv, arena, L(s.in), L(s.out), s.res >= 0 ? &L(s.res) : nullptr, par);
          else
            run_grouped_conv(s, arena, L(s.in), L(s.out), s.res >= 0 ? &L(s.res) : nullptr, par);
          break;
        case StepKind::max_pool: run_max_pool<Arch>(L(s.in), L(s.out), s.kernel, s.stride, s.padding, par); break;
        case StepKind::avg_pool: run_global_avg_pool<Arch>(L(s.in), L(s.out), par); break;
        case StepKind::linear: {
          const Layout& x = L(s.in);
          const Layout& y = L(s.out);
          if (x.c * x.h * x.w != static_cast<std::size_t>(s.in_features) || x.h != 1 || x.w != 1)
            throw std::invalid_argument("ctnn cpu backend: op '" + plan_.program().ops[s.op].name + "' expects N x " +
                                        std::to_string(s.in_features) + " x 1 x 1 input, got " +
                                        to_string(Extents{x.n, x.c, x.h, x.w}));
          float* scratch = ctx.memory_.data() + ctx.scratch_offset_;
          const float* xd = x.data;
          if (!x.is_nchw()) {
            for (std::size_t i = 0; i < x.n; ++i) layout_to_nchw<Arch>(x, i, scratch);
            xd = scratch;
          }
          float* yd = y.is_nchw() ? y.data : scratch + aligned_floats(x.n * x.c);
          run_linear<Arch>(xd, yd, x.n, s.in_features, s.out_features, arena + s.weights, arena + s.bias, par);
          if (!y.is_nchw()) {
            for (std::size_t i = 0; i < y.n; ++i) {
              for (std::size_t cb = 0; cb < y.blocks(); ++cb) clear_border<Arch>(y, i, cb);
              for (std::size_t c = 0; c < y.c; ++c) y(i, c, 0, 0) = yd[i * y.c + c];
            }
          }
          break;
        }
        case StepKind::scale_shift: run_scale_shift<Arch>(L(s.in), arena + s.weights, arena + s.bias, par); break;
        case StepKind::relu: run_relu<Arch>(L(s.in), par); break;
        case StepKind::add: run_add<Arch>(L(s.in), L(s.res), s.relu, par); break;
        case StepKind::sigmoid: run_sigmoid<Arch>(L(s.in), par); break;
        case StepKind::softmax: run_softmax<Arch>(L(s.in)); break;
        case StepKind::pad_shortcut: run_pad_shortcut<Arch>(L(s.in), L(s.out), s.stride, s.channel_offset, par); break;
      }
    }

    // A grouped convolution slice by slice (plan.hpp: slice_groups).
    static void run_grouped_conv(const Step& s, const float* arena, const Layout& in, const Layout& out,
                                 const Layout* res, const Parallel& par) {
      const auto in_span = static_cast<std::size_t>(s.conv.in_channels);
      const auto out_span = static_cast<std::size_t>(s.conv.out_channels);
      for (std::size_t slice = 0; slice < static_cast<std::size_t>(s.slices); ++slice) {
        ConvSpec c = s.conv;
        c.weights += slice * s.slice_weights;
        c.bias += slice * s.slice_bias;
        const Layout x = in.channel_slice(slice * in_span / static_cast<std::size_t>(in.lanes), in_span);
        const std::size_t first_out = slice * out_span / static_cast<std::size_t>(out.lanes);
        const Layout y = out.channel_slice(first_out, out_span);
        Layout r;
        if (res) r = res->channel_slice(first_out, out_span);
        run_conv<Arch>(c, arena, x, y, res ? &r : nullptr, par);
      }
    }

    Plan<Arch> plan_;
  };
};

}  // namespace CTNN_CPU_ISA
}  // namespace cpu

// The CPU backend for the instruction set of this translation unit.
using Cpu = cpu::Backend<cpu::default_arch>;

}  // namespace ctnn::backend

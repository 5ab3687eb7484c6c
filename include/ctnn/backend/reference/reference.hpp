// The reference backend: plain loops over NCHW, BatchNorm applied as written
// (never folded), one op at a time, accumulation in double. Slow by design and
// obviously correct: it is the oracle every faster backend is tested against,
// so it shares no kernel, layout or folding with them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "ctnn/core/program.hpp"
#include "ctnn/core/tensor.hpp"

namespace ctnn::backend {

namespace reference_ops {

// One output plane at a time, accumulated in double in `plane` (caller-owned
// scratch of out.h * out.w). The kx loop's valid output range is computed up
// front so the innermost loop has no branches.
inline void conv(const Op& op, ConstTensorView in, TensorView out, const float* params, std::span<double> plane) {
  const float* w = params + op.weight;
  const long k = op.kernel, s = op.stride, p = op.padding;
  const long ih = static_cast<long>(in.shape.h), iw = static_cast<long>(in.shape.w);
  const long oh = static_cast<long>(out.shape.h), ow = static_cast<long>(out.shape.w);
  for (std::size_t n = 0; n < out.shape.n; ++n)
    for (long oc = 0; oc < op.out_channels; ++oc) {
      const double bias = op.bias == no_param ? 0.0 : params[op.bias + static_cast<std::size_t>(oc)];
      std::fill(plane.begin(), plane.begin() + oh * ow, bias);
      for (long ic = 0; ic < op.in_channels; ++ic) {
        const float* src = in.data + (n * in.shape.c + static_cast<std::size_t>(ic)) * in.shape.h * in.shape.w;
        for (long ky = 0; ky < k; ++ky)
          for (long kx = 0; kx < k; ++kx) {
            const double wv = w[((oc * op.in_channels + ic) * k + ky) * k + kx];
            // ox such that 0 <= ox*s + kx - p < iw
            const long ox_lo = std::max(0L, (p - kx + s - 1) / s);
            const long last = iw - 1 + p - kx;  // largest ox*s with an in-range column
            const long ox_hi = last < 0 ? 0 : std::min(ow, last / s + 1);
            for (long oy = 0; oy < oh; ++oy) {
              const long y = oy * s + ky - p;
              if (y < 0 || y >= ih) continue;
              const float* row = src + y * iw;
              double* acc = plane.data() + oy * ow;
              for (long ox = ox_lo; ox < ox_hi; ++ox) acc[ox] += wv * row[ox * s + kx - p];
            }
          }
      }
      float* dst = out.data + (n * out.shape.c + static_cast<std::size_t>(oc)) * out.shape.h * out.shape.w;
      for (long i = 0; i < oh * ow; ++i) dst[i] = static_cast<float>(plane[static_cast<std::size_t>(i)]);
    }
}

inline void batch_norm(const Op& op, TensorView x, const float* params) {
  for (std::size_t c = 0; c < x.shape.c; ++c) {
    const double mean = params[op.running_mean + c], var = params[op.running_var + c];
    const double gamma = params[op.weight + c], beta = params[op.bias + c];
    const double inv_std = 1.0 / std::sqrt(var + static_cast<double>(op.eps));
    for (std::size_t n = 0; n < x.shape.n; ++n)
      for (std::size_t y = 0; y < x.shape.h; ++y)
        for (std::size_t xx = 0; xx < x.shape.w; ++xx) {
          float& v = x(n, c, y, xx);
          v = static_cast<float>((v - mean) * inv_std * gamma + beta);
        }
  }
}

inline void max_pool(const Op& op, ConstTensorView in, TensorView out) {
  const long ih = static_cast<long>(in.shape.h), iw = static_cast<long>(in.shape.w);
  for (std::size_t n = 0; n < out.shape.n; ++n)
    for (std::size_t c = 0; c < out.shape.c; ++c)
      for (std::size_t oy = 0; oy < out.shape.h; ++oy)
        for (std::size_t ox = 0; ox < out.shape.w; ++ox) {
          float m = -std::numeric_limits<float>::infinity();  // padding never wins
          for (int ky = 0; ky < op.kernel; ++ky)
            for (int kx = 0; kx < op.kernel; ++kx) {
              const long y = static_cast<long>(oy) * op.stride + ky - op.padding;
              const long x = static_cast<long>(ox) * op.stride + kx - op.padding;
              if (y >= 0 && y < ih && x >= 0 && x < iw)
                m = std::max(m, in(n, c, static_cast<std::size_t>(y), static_cast<std::size_t>(x)));
            }
          out(n, c, oy, ox) = m;
        }
}

inline void global_avg_pool(ConstTensorView in, TensorView out) {
  const double area = static_cast<double>(in.shape.h * in.shape.w);
  for (std::size_t n = 0; n < in.shape.n; ++n)
    for (std::size_t c = 0; c < in.shape.c; ++c) {
      double sum = 0;
      for (std::size_t y = 0; y < in.shape.h; ++y)
        for (std::size_t x = 0; x < in.shape.w; ++x) sum += in(n, c, y, x);
      out(n, c) = static_cast<float>(sum / area);
    }
}

inline void linear(const Op& op, ConstTensorView in, TensorView out, const float* params) {
  const float* w = params + op.weight;
  const std::size_t in_features = in.shape.per_item();
  for (std::size_t n = 0; n < in.shape.n; ++n) {
    const float* x = in.data + n * in_features;
    for (int o = 0; o < op.out_channels; ++o) {
      double acc = params[op.bias + static_cast<std::size_t>(o)];
      for (std::size_t i = 0; i < in_features; ++i)
        acc += static_cast<double>(w[static_cast<std::size_t>(o) * in_features + i]) * x[i];
      out(n, static_cast<std::size_t>(o)) = static_cast<float>(acc);
    }
  }
}

// Over channels at every pixel, with the maximum subtracted for stability.
inline void softmax(TensorView x) {
  for (std::size_t n = 0; n < x.shape.n; ++n)
    for (std::size_t y = 0; y < x.shape.h; ++y)
      for (std::size_t xx = 0; xx < x.shape.w; ++xx) {
        double m = -std::numeric_limits<double>::infinity(), sum = 0;
        for (std::size_t c = 0; c < x.shape.c; ++c) m = std::max<double>(m, x(n, c, y, xx));
        for (std::size_t c = 0; c < x.shape.c; ++c) sum += std::exp(x(n, c, y, xx) - m);
        for (std::size_t c = 0; c < x.shape.c; ++c)
          x(n, c, y, xx) = static_cast<float>(std::exp(x(n, c, y, xx) - m) / sum);
      }
}

}  // namespace reference_ops

struct Reference {
  static constexpr const char* name = "reference";
  static constexpr std::uint32_t supported_ops = ~0u;  // every OpKind

  class Executor {
   public:
    // Buffers are assigned to values with liveness-based reuse, planned once
    // per context, so a forward pass within capacity allocates nothing.
    struct Context {
      std::vector<Extents> extents;
      std::vector<int> slot_of_value;
      std::vector<AlignedBuffer> slots;
      std::vector<double> plane;  // conv accumulation scratch
      Capacity capacity{};
    };

    Executor() = default;
    Executor(const Program& program, std::span<const float> params) : program_(&program), params_(params) {
      plan_slots();
    }

    Context make_context(Capacity cap) const {
      Context ctx;
      ctx.capacity = cap;
      ctx.extents.resize(static_cast<std::size_t>(program_->values));
      ctx.slot_of_value = slot_of_value_;
      ctx.slots.resize(static_cast<std::size_t>(slot_count_));
      reserve(ctx, {cap.batch, static_cast<std::size_t>(program_->input_channels), cap.height, cap.width});
      return ctx;
    }

    ConstTensorView run(ConstTensorView input, Context& ctx, Stage stage) const {
      if (ctx.extents.size() != static_cast<std::size_t>(program_->values))
        throw std::logic_error("ctnn: this context was made for another model");
      infer_extents(*program_, input.shape, ctx.extents);
      reserve(ctx, input.shape);  // no-op within the context's capacity
      const float* params = params_.data();
      auto view = [&](int value) {
        return TensorView{ctx.slots[static_cast<std::size_t>(ctx.slot_of_value[static_cast<std::size_t>(value)])].data(),
                          ctx.extents[static_cast<std::size_t>(value)]};
      };
      auto source = [&](int value) -> ConstTensorView { return value == 0 ? input : ConstTensorView(view(value)); };

      const std::size_t end = stage == Stage::features ? program_->features_end : program_->ops.size();
      for (std::size_t i = 0; i < end; ++i) {
        const Op& op = program_->ops[i];
        const bool elementwise = op.kind != OpKind::conv && op.kind != OpKind::max_pool &&
                                 op.kind != OpKind::global_avg_pool && op.kind != OpKind::linear;
        if (elementwise && op.input != op.output) {  // reads the caller's input: copy, then work in place
          const ConstTensorView src = source(op.input);
          std::copy(src.data, src.data + src.size(), view(op.output).data);
        }
        switch (op.kind) {
          case OpKind::conv: reference_ops::conv(op, source(op.input), view(op.output), params, ctx.plane); break;
          case OpKind::batch_norm: reference_ops::batch_norm(op, view(op.output), params); break;
          case OpKind::relu:
            for (const TensorView x = view(op.output); float& v : x.span()) v = v > 0.f ? v : 0.f;
            break;
          case OpKind::max_pool: reference_ops::max_pool(op, source(op.input), view(op.output)); break;
          case OpKind::global_avg_pool: reference_ops::global_avg_pool(source(op.input), view(op.output)); break;
          case OpKind::linear: reference_ops::linear(op, source(op.input), view(op.output), params); break;
          case OpKind::sigmoid:
            for (const TensorView x = view(op.output); float& v : x.span())
              v = static_cast<float>(1.0 / (1.0 + std::exp(-double(v))));
            break;
          case OpKind::softmax: reference_ops::softmax(view(op.output)); break;
          case OpKind::dropout: break;  // identity at inference
          case OpKind::add: {
            const ConstTensorView r = source(op.residual);
            const TensorView x = view(op.output);
            for (std::size_t j = 0; j < x.size(); ++j) x.data[j] += r.data[j];
            break;
          }
        }
      }
      const int result = stage == Stage::features ? program_->features : program_->output;
      return source(result);
    }

    std::string describe() const { return "reference (plain loops, BatchNorm unfolded, double accumulation)"; }

   private:
    // Values whose lifetimes do not overlap share a slot.
    void plan_slots() {
      const Program& p = *program_;
      std::vector<std::size_t> last_use(static_cast<std::size_t>(p.values), 0);
      for (std::size_t i = 0; i < p.ops.size(); ++i) {
        const Op& op = p.ops[i];
        last_use[static_cast<std::size_t>(op.input)] = i;
        last_use[static_cast<std::size_t>(op.output)] = i;
        if (op.residual >= 0) last_use[static_cast<std::size_t>(op.residual)] = i;
      }
      last_use[static_cast<std::size_t>(p.output)] = p.ops.size();
      last_use[static_cast<std::size_t>(p.features)] = std::max(last_use[static_cast<std::size_t>(p.features)],
                                                                p.features_end);
      slot_of_value_.assign(static_cast<std::size_t>(p.values), -1);
      std::vector<std::size_t> slot_free_after;  // op index after which each slot is free
      std::vector<bool> born(static_cast<std::size_t>(p.values), false);
      for (std::size_t i = 0; i < p.ops.size(); ++i) {
        const Op& op = p.ops[i];
        if (op.output == 0 || born[static_cast<std::size_t>(op.output)]) continue;
        born[static_cast<std::size_t>(op.output)] = true;
        int slot = -1;
        for (std::size_t s = 0; s < slot_free_after.size(); ++s)
          if (slot_free_after[s] < i) {
            slot = static_cast<int>(s);
            break;
          }
        if (slot < 0) {
          slot = static_cast<int>(slot_free_after.size());
          slot_free_after.push_back(0);
        }
        slot_of_value_[static_cast<std::size_t>(op.output)] = slot;
        slot_free_after[static_cast<std::size_t>(slot)] = last_use[static_cast<std::size_t>(op.output)];
      }
      slot_count_ = static_cast<int>(slot_free_after.size());
    }

    void reserve(Context& ctx, Extents input) const {
      std::vector<Extents>& e = ctx.extents;
      infer_extents(*program_, input, e);
      for (int v = 1; v < program_->values; ++v) {
        const int slot = ctx.slot_of_value[static_cast<std::size_t>(v)];
        if (slot >= 0) ctx.slots[static_cast<std::size_t>(slot)].reserve(e[static_cast<std::size_t>(v)].count());
      }
      std::size_t plane = 0;
      for (const Op& op : program_->ops)
        if (op.kind == OpKind::conv) {
          const Extents& o = e[static_cast<std::size_t>(op.output)];
          plane = std::max(plane, o.h * o.w);
        }
      if (ctx.plane.size() < plane) ctx.plane.resize(plane);
    }

    const Program* program_ = nullptr;
    std::span<const float> params_;
    std::vector<int> slot_of_value_;
    int slot_count_ = 0;
  };
};

}  // namespace ctnn::backend

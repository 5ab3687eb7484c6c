// Turns plan steps into kernel arguments and launches, through a launcher
// policy: kernels.cuh's launcher enqueues real kernels on a stream, the host
// simulator (tests/cuda_host) runs the same bodies on the CPU. Sharing this
// sequencing is what lets the simulator test the backend's run loop, not
// only its kernels.
//
// A launcher provides, each taking the step for error messages:
//   to_nhwc(LayoutArgs, items, step)      max_pool(PoolArgs, items, step)
//   avg_pool(PoolArgs, items, step)       eltwise(EltwiseArgs, items, step)
//   softmax(SoftmaxArgs, images, step)
//   conv(ConvArgs, ConvTiling, step)      splitk(ConvArgs, splits, items, step)
#pragma once

#include <span>
#include <stdexcept>
#include <string>

#include "ctnn/backend/cuda/conv_kernel.cuh"
#include "ctnn/backend/cuda/plan.hpp"
#include "ctnn/backend/cuda/simple_kernels.cuh"

namespace ctnn::cuda {

struct DeviceState {
  const float* arena = nullptr;     // packed parameters
  float* const* slots = nullptr;    // one buffer per plan slot
  float* partial = nullptr;         // split-K workspace
  std::size_t partial_floats = 0;
  const float* raw_input = nullptr;  // NCHW input as copied from the host
  int sm_count = 1;
  bool legacy_tiles = false;         // ConvTiling::legacy for every conv
};

inline float* value_ptr(const Plan& plan, const DeviceState& d, int v) {
  return d.slots[plan.slot[static_cast<std::size_t>(v)]];
}

// Checks that don't depend on the device: a Linear only accepts pooled
// (1 x 1) inputs, the layout every Program promises.
inline void check_step_extents(const Step& s, std::span<const Extents> e) {
  if (s.kind == StepKind::conv && s.linear) {
    const Extents& in = e[static_cast<std::size_t>(s.input)];
    if (in.h != 1 || in.w != 1)
      throw std::invalid_argument("ctnn cuda: layer '" + s.name + "' (linear) needs an N x C x 1 x 1 input, got " +
                                  to_string(in));
  }
}

template <class Launcher>
void enqueue_steps(const Plan& plan, std::span<const Extents> e, const DeviceState& d, std::size_t steps_end,
                   Launcher& launch) {
  for (std::size_t k = 0; k < steps_end; ++k) {
    const Step& s = plan.steps[k];
    const Extents& out = e[static_cast<std::size_t>(s.output)];
    float* out_ptr = value_ptr(plan, d, s.output);
    switch (s.kind) {
      case StepKind::to_nhwc: {
        LayoutArgs a{d.raw_input, out_ptr, static_cast<int>(out.n), s.in_channels, static_cast<int>(out.h),
                     static_cast<int>(out.w), s.cs_out};
        launch.to_nhwc(a, static_cast<long>(out.n * out.h * out.w) * s.cs_out, s);
        break;
      }
      case StepKind::conv: {
        check_step_extents(s, e);
        const Extents& in = e[static_cast<std::size_t>(s.input)];
        ConvArgs a;
        a.in = value_ptr(plan, d, s.input);
        a.weight = d.arena + s.weight;
        a.bias = d.arena + s.bias;
        a.residual = s.residual >= 0 ? value_ptr(plan, d, s.residual) : nullptr;
        a.out = out_ptr;
        a.h = static_cast<int>(in.h);
        a.w = static_cast<int>(in.w);
        a.cs_in = s.cs_in;
        a.oh = static_cast<int>(out.h);
        a.ow = static_cast<int>(out.w);
        a.cs_out = s.cs_out;
        a.kernel = s.kernel;
        a.stride = s.stride;
        a.padding = s.padding;
        a.kd = s.kd;
        a.n_pad = s.n_pad;
        a.m = static_cast<int>(out.n * out.h * out.w);
        a.act = static_cast<int>(s.act);
        ConvTiling t = choose_tiling(a.m, s.cs_out, s.kd_pad, d.sm_count, d.legacy_tiles);
        if (t.splits > 1 && static_cast<std::size_t>(t.splits) * a.m * s.cs_out > d.partial_floats) {
          t.splits = 1;  // unreachable by construction (plan.hpp bounds it); stay correct regardless
          t.kt_per_split = t.k_tiles;
        }
        a.k_tiles = t.k_tiles;
        a.kt_per_split = t.kt_per_split;
        if (t.splits > 1) {
          a.partial = d.partial;
          launch.conv(a, t, s);
          launch.splitk(a, t.splits, static_cast<long>(a.m) * (s.cs_out / 4), s);
        } else {
          launch.conv(a, t, s);
        }
        break;
      }
      case StepKind::max_pool:
      case StepKind::avg_pool: {
        const Extents& in = e[static_cast<std::size_t>(s.input)];
        PoolArgs a{value_ptr(plan, d, s.input), out_ptr, static_cast<int>(in.n), static_cast<int>(in.h),
                   static_cast<int>(in.w), s.cs_in, static_cast<int>(out.h), static_cast<int>(out.w),
                   s.kernel, s.stride, s.padding};
        const long items = static_cast<long>(out.n * out.h * out.w) * (s.cs_out / 4);
        if (s.kind == StepKind::max_pool)
          launch.max_pool(a, items, s);
        else
          launch.avg_pool(a, items, s);
        break;
      }
      case StepKind::eltwise: {
        EltwiseArgs a;
        a.in = value_ptr(plan, d, s.input);
        a.out = out_ptr;
        a.residual = s.residual >= 0 ? value_ptr(plan, d, s.residual) : nullptr;
        a.scale = s.scale != no_param ? d.arena + s.scale : nullptr;
        a.shift = s.shift != no_param ? d.arena + s.shift : nullptr;
        a.cs = s.cs_out;
        a.act = static_cast<int>(s.act);
        launch.eltwise(a, static_cast<long>(out.n * out.h * out.w) * (s.cs_out / 4), s);
        break;
      }
      case StepKind::softmax: {
        if (out.h != 1 || out.w != 1)
          throw std::invalid_argument("ctnn cuda: layer '" + s.name + "' (softmax) needs an N x C x 1 x 1 input, got " +
                                      to_string(out));
        SoftmaxArgs a{out_ptr, s.out_channels, s.cs_out};
        launch.softmax(a, static_cast<int>(out.n), s);
        break;
      }
    }
  }
}

}  // namespace ctnn::cuda

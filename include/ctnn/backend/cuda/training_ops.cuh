// The CUDA backend's training kernels as the tape executor sees them
// (train/tape_executor.hpp): each op's forward, backward and the optimiser
// step, as launches of the bodies in training_kernels.cuh.
//
// `Launch` runs bodies (training.cuh: on the GPU; tests/cuda_host: in the
// simulator) and `Mem` says where buffers live, so that the simulator runs
// this very dispatch code, not a copy of it:
//   launch.items(body, count, kernel, layer)       body(i) for i in [0, count)
//   launch.blocks(body, gx, gy, gz, kernel, layer)  body.block(...) per block
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ctnn/backend/cuda/training_kernels.cuh"
#include "ctnn/core/init.hpp"
#include "ctnn/core/tensor.hpp"
#include "ctnn/ir/op_traits.hpp"
#include "ctnn/ir/program.hpp"
#include "ctnn/train/exchange.hpp"
#include "ctnn/train/optim.hpp"
#include "ctnn/train/tape.hpp"

namespace ctnn::cuda {

// The op kinds these kernels train.
inline constexpr std::uint32_t trainable_ops = all_ops;

// `Prec` is the GEMMs' arithmetic: FP32, or BF16 mixed precision (operands
// rounded to BF16 on the tensor cores, FP32 accumulation; parameters,
// gradients, optimiser state, activations and BatchNorm stay FP32).
template <class Launch, class Mem, Precision Prec = Precision::fp32>
class TrainingKernels {
  static_assert(Prec != Precision::tf32, "training GEMMs run in FP32 or BF16");
  using Shape = training::ConvShape;

 public:
  using Memory = Mem;

  // Scratch: the largest partial weight-gradient buffer and dropout mask of these extents.
  void reserve(const Program& p, const train::Tape& t, std::span<const Extents> e) {
    std::size_t partial = 0, mask = 0;
    for (const train::TapeOp& to : t.ops) {
      const Op& op = p.ops[to.op];
      const Extents& in = e[static_cast<std::size_t>(to.in)];
      const Extents& out = e[static_cast<std::size_t>(to.out)];
      if (has_gemm(op.kind)) {
        const Shape s = shape_of(op, in, out);
        const Slices sl = weight_slices(s);
        partial = std::max(partial, static_cast<std::size_t>(sl.count) * weight_floats(op));
      }
      if (op.kind == OpKind::dropout) mask = std::max(mask, out.count());
    }
    partial_.reserve(partial);
    host_mask_.reserve(mask);
  }

  // ---- convolution and Linear: the GEMM ----

  void conv_forward(const Op& op, ConstTensorView x, TensorView y, const float* params) {
    gemm_forward(op, x, y, params);
  }
  void conv_backward(const Op& op, ConstTensorView x, ConstTensorView dy, TensorView dx, bool acc, const float* params,
                     float* grads) {
    gemm_backward(op, x, dy, dx, acc, params, grads);
  }
  void linear_forward(const Op& op, ConstTensorView x, TensorView y, const float* params) {
    gemm_forward(op, x, y, params);
  }
  void linear_backward(const Op& op, ConstTensorView x, ConstTensorView dy, TensorView dx, bool acc,
                       const float* params, float* grads) {
    gemm_backward(op, x, dy, dx, acc, params, grads);
  }

  // ---- BatchNorm ----

  void batch_norm_forward(const Op& op, ConstTensorView x, TensorView y, float* params, bool batch, double factor,
                          double* saved, train::StatisticsReduction*) {
    const int c = static_cast<int>(x.shape.c);
    const long area = static_cast<long>(x.shape.h * x.shape.w);
    const double count = static_cast<double>(x.shape.n) * static_cast<double>(area);
    training::BatchNormStatistics st{saved, params + op.running_mean, params + op.running_var, c, 0, batch, count,
                                     factor, static_cast<double>(op.eps)};
    if (batch) {
      training::ChannelSums sums{.what = training::ChannelSum::values, .x = x.data, .out = saved,
                                 .n = static_cast<int>(x.shape.n), .c = c, .area = area};
      launch_.blocks(sums, c, 1, 1, "batch_norm sums", op.name);
      launch_.items(st, c, "batch_norm mean", op.name);
      sums.what = training::ChannelSum::centred_squares;
      sums.mean = saved;
      sums.out = saved + 2 * c;
      launch_.blocks(sums, c, 1, 1, "batch_norm squares", op.name);
      st.stage = 1;
    }
    launch_.items(st, c, "batch_norm statistics", op.name);
    const training::BatchNormApply apply{x.data, y.data, saved, params + op.weight, params + op.bias, c, area};
    launch_.items(apply, static_cast<long>(x.size()), "batch_norm", op.name);
  }

  void batch_norm_backward(const Op& op, ConstTensorView x, ConstTensorView dy, TensorView dx, bool acc,
                           const float* params, float* grads, bool batch, double* saved, train::StatisticsReduction*) {
    const int c = static_cast<int>(x.shape.c);
    const long area = static_cast<long>(x.shape.h * x.shape.w);
    const training::ChannelSums sums{.what = training::ChannelSum::batch_norm_grads, .x = x.data, .dy = dy.data,
                                     .mean = saved, .inv_std = saved + c, .out = saved + 2 * c,
                                     .grad_weight = grads + op.weight, .grad_bias = grads + op.bias,
                                     .n = static_cast<int>(x.shape.n), .c = c, .area = area};
    launch_.blocks(sums, c, 1, 1, "batch_norm gradient sums", op.name);
    if (!dx.data) return;
    const training::BatchNormBackwardData d{x.data, dy.data, dx.data, saved, params + op.weight, c, area,
                                            static_cast<double>(x.shape.n) * static_cast<double>(area), batch, acc};
    launch_.items(d, static_cast<long>(x.size()), "batch_norm backward", op.name);
  }

  // ---- element-wise ----

  void relu_forward(ConstTensorView x, TensorView y) { pointwise(training::Pointwise::relu, x.data, nullptr, y, false); }
  void relu_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool acc) {
    pointwise(training::Pointwise::relu_gradient, y.data, dy.data, dx, acc);
  }
  void sigmoid_forward(ConstTensorView x, TensorView y) {
    pointwise(training::Pointwise::sigmoid, x.data, nullptr, y, false);
  }
  void sigmoid_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool acc) {
    pointwise(training::Pointwise::sigmoid_gradient, y.data, dy.data, dx, acc);
  }
  void add_forward(ConstTensorView x, ConstTensorView r, TensorView y) {
    pointwise(training::Pointwise::add, x.data, r.data, y, false);
  }
  void pass_gradient(ConstTensorView dy, TensorView dx, bool acc) {
    if (dx.data == dy.data) return;  // in place: already there
    pointwise(training::Pointwise::copy, dy.data, nullptr, dx, acc);
  }

  void softmax_forward(ConstTensorView x, TensorView y) { softmax(x.data, nullptr, y, false); }
  void softmax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool acc) {
    softmax(y.data, dy.data, dx, acc);
  }

  // Masks are drawn on the host from the trainer's generator, exactly as the
  // reference backend draws them, and copied over: the same seed drops the
  // same units on every backend.
  void dropout_forward(const Op& op, ConstTensorView x, TensorView y, SplitMix64& rng, float* mask) {
    const double keep = 1.0 - op.dropout_p;
    host_mask_.resize(y.size());
    for (float& m : host_mask_) m = rng.uniform() < keep ? static_cast<float>(1.0 / keep) : 0.f;
    Memory::to_device(mask, host_mask_.data(), host_mask_.size());
    pointwise(training::Pointwise::multiply, x.data, mask, y, false);
  }
  void dropout_backward(ConstTensorView dy, TensorView dx, bool acc, const float* mask) {
    if (mask)
      pointwise(training::Pointwise::multiply, dy.data, mask, dx, acc);
    else
      pointwise(training::Pointwise::copy, dy.data, nullptr, dx, acc);
  }

  // ---- pooling and shortcuts ----

  void max_pool_forward(const Op& op, ConstTensorView x, TensorView y, std::uint32_t* argmax) {
    const training::MaxPoolForward f{pool_shape(op, x.shape, y.shape), x.data, y.data, argmax};
    launch_.items(f, static_cast<long>(y.size()), "max_pool", op.name);
  }
  void max_pool_backward(const Op& op, ConstTensorView dy, TensorView dx, bool acc, const std::uint32_t* argmax) {
    const training::MaxPoolBackward b{pool_shape(op, dx.shape, dy.shape), dy.data, argmax, dx.data, acc};
    launch_.items(b, static_cast<long>(dx.size()), "max_pool backward", op.name);
  }
  void global_avg_pool_forward(ConstTensorView x, TensorView y) {
    const training::GlobalAvgPoolForward f{x.data, y.data, static_cast<long>(x.shape.h * x.shape.w)};
    launch_.items(f, static_cast<long>(y.size()), "global_avg_pool", "avgpool");
  }
  void global_avg_pool_backward(ConstTensorView dy, TensorView dx, bool acc) {
    const training::GlobalAvgPoolBackward b{dy.data, dx.data, static_cast<long>(dx.shape.h * dx.shape.w), acc};
    launch_.items(b, static_cast<long>(dx.size()), "global_avg_pool backward", "avgpool");
  }
  void pad_shortcut_forward(const Op& op, ConstTensorView x, TensorView y) { pad_shortcut(op, x, y, false, false); }
  void pad_shortcut_backward(const Op& op, ConstTensorView dy, TensorView dx, bool acc) {
    pad_shortcut(op, dy, dx, true, acc);
  }

  // ---- the optimiser: its own rule, one thread per parameter ----

  template <class O>
  void apply(const O& optimizer, const std::vector<train::TrainableRange>& ranges, float* params, const float* grads,
             float* state, double gradient_scale) {
    for (const train::TrainableRange& r : ranges) {
      const training::OptimizerStep<O> step{optimizer,
                                            params,
                                            grads,
                                            state,
                                            static_cast<long>(r.offset),
                                            optimizer.state_size(),
                                            optimizer.lr * r.lr_scale,
                                            r.weight_decay ? optimizer.weight_decay : 0.0,
                                            gradient_scale};
      launch_.items(step, static_cast<long>(r.size), "optimizer step", "optimizer");
    }
  }

 private:
  struct Slices {
    int count = 1;
    long length = 0;
  };

  static bool has_gemm(OpKind k) { return k == OpKind::conv || k == OpKind::grouped_conv || k == OpKind::linear; }

  // Linear is a 1x1 convolution of 1x1 images with features as channels.
  static Shape shape_of(const Op& op, Extents in, Extents out) {
    auto i = [](std::size_t v) { return static_cast<int>(v); };
    if (op.kind == OpKind::linear)
      return {i(in.n), i(in.per_item()), 1, 1, op.out_channels, 1, 1, 1, 1, 0, 1};
    return {i(in.n), i(in.c), i(in.h), i(in.w), op.out_channels, i(out.h), i(out.w),
            op.kernel, op.stride, op.padding, op.groups};
  }

  static long tiles(long v) { return (v + training::gemm_tile - 1) / training::gemm_tile; }

  // The weight gradient reduces over images x pixels: split into slices that
  // give the GPU enough blocks, each a multiple of the GEMM depth. The split
  // depends on the shape only, so results do not depend on the device.
  static Slices weight_slices(const Shape& s) {
    const long total = static_cast<long>(s.n) * s.out_area();
    const long blocks = tiles(s.cout_g()) * tiles(s.taps()) * s.groups;
    const long want = std::max(1L, std::min((total + 1023) / 1024, (1024 + blocks - 1) / blocks));
    const long depth = training::gemm_depth;
    const long length = ((total + want - 1) / want + depth - 1) / depth * depth;
    return {static_cast<int>((total + length - 1) / length), length};
  }

  void gemm_forward(const Op& op, ConstTensorView x, TensorView y, const float* params) {
    const Shape s = shape_of(op, x.shape, y.shape);
    const training::ConvForward p{s, x.data, params + op.weight, op.bias == no_param ? nullptr : params + op.bias,
                                  y.data, s.cout_g(), static_cast<long>(s.n) * s.out_area()};
    launch_.blocks(training::Gemm<training::ConvForward, Prec>{p}, tiles(p.n), tiles(p.m), s.groups, "training conv",
                   op.name);
  }

  void gemm_backward(const Op& op, ConstTensorView x, ConstTensorView dy, TensorView dx, bool acc,
                     const float* params, float* grads) {
    const Shape s = shape_of(op, x.shape, dy.shape);
    const Slices sl = weight_slices(s);
    const training::ConvBackwardWeights w{s, x.data, dy.data, partial_.data(), sl.count, sl.length, s.cout_g(),
                                          s.taps()};
    launch_.blocks(training::Gemm<training::ConvBackwardWeights, Prec>{w}, tiles(w.n), tiles(w.m),
                   static_cast<long>(s.groups) * sl.count, "weight gradient", op.name);
    const training::WeightGradientSum sum{partial_.data(), grads + op.weight, static_cast<long>(weight_floats(op)),
                                          sl.count};
    launch_.items(sum, sum.count, "weight gradient sum", op.name);
    if (op.bias != no_param) {
      const training::ChannelSums b{.what = training::ChannelSum::bias_grads, .dy = dy.data,
                                    .grad_bias = grads + op.bias, .n = s.n, .c = s.cout, .area = s.out_area()};
      launch_.blocks(b, s.cout, 1, 1, "bias gradient", op.name);
    }
    if (!dx.data) return;
    const training::ConvBackwardData d{s, dy.data, params + op.weight, dx.data, acc, s.cin_g(),
                                       static_cast<long>(s.n) * s.in_area()};
    launch_.blocks(training::Gemm<training::ConvBackwardData, Prec>{d}, tiles(d.n), tiles(d.m), s.groups,
                   "input gradient", op.name);
  }

  void pointwise(training::Pointwise f, const float* a, const float* b, TensorView out, bool acc) {
    const training::PointwiseItem item{f, a, b, out.data, acc};
    launch_.items(item, static_cast<long>(out.size()), "element-wise", "element-wise");
  }

  void softmax(const float* x, const float* dy, TensorView out, bool acc) {
    const long area = static_cast<long>(out.shape.h * out.shape.w);
    const training::SoftmaxItem item{x, dy, out.data, static_cast<int>(out.shape.c), area, acc};
    launch_.items(item, static_cast<long>(out.shape.n) * area, dy ? "softmax backward" : "softmax", "softmax");
  }

  static training::PoolShape pool_shape(const Op& op, Extents in, Extents out) {
    return {static_cast<int>(in.h), static_cast<int>(in.w), static_cast<int>(out.h), static_cast<int>(out.w),
            op.kernel, op.stride, op.padding};
  }

  void pad_shortcut(const Op& op, ConstTensorView from, TensorView to, bool backward, bool acc) {
    const Extents& small = backward ? to.shape : from.shape;  // the input side
    const Extents& big = backward ? from.shape : to.shape;
    const training::PadShortcut p{from.data,
                                  to.data,
                                  op.in_channels,
                                  op.out_channels,
                                  (op.out_channels - op.in_channels) / 2,
                                  op.stride,
                                  static_cast<int>(small.h),
                                  static_cast<int>(small.w),
                                  static_cast<int>(big.h),
                                  static_cast<int>(big.w),
                                  backward,
                                  acc};
    launch_.items(p, static_cast<long>(to.size()), backward ? "pad_shortcut backward" : "pad_shortcut", op.name);
  }

  Launch launch_{};
  typename Memory::Floats partial_;
  std::vector<float> host_mask_;
};

}  // namespace ctnn::cuda

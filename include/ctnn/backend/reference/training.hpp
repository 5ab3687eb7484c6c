// The reference backend's training kernels and executor: the oracle for
// every faster backend's training. The kernels are ops.hpp's (plain loops,
// double accumulation); the executor is the shared tape walker
// (train/tape_executor.hpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ctnn/backend/reference/ops.hpp"
#include "ctnn/backend/reference/reference.hpp"
#include "ctnn/train/tape_executor.hpp"

namespace ctnn::backend {

struct ReferenceTrainingKernels {
  using Memory = train::HostMemory;

  std::vector<double> plane;  // conv accumulation scratch

  void reserve(const Program& p, const train::Tape& t, std::span<const Extents> e) {
    std::size_t floats = 0;
    for (const train::TapeOp& to : t.ops) {
      const OpKind k = p.ops[to.op].kind;
      if (k != OpKind::conv && k != OpKind::grouped_conv) continue;
      const Extents& in = e[static_cast<std::size_t>(to.in)];
      const Extents& out = e[static_cast<std::size_t>(to.out)];
      floats = std::max({floats, in.h * in.w, out.h * out.w});
    }
    if (plane.size() < floats) plane.resize(floats);
  }

  void conv_forward(const Op& op, ConstTensorView x, TensorView y, const float* params) {
    reference_ops::conv_forward(op, x, y, params, plane);
  }
  void conv_backward(const Op& op, ConstTensorView x, ConstTensorView dy, TensorView dx, bool acc, const float* params,
                     float* grads) {
    reference_ops::conv_backward_weights(op, x, dy, grads);
    if (dx.data) reference_ops::conv_backward_data(op, dy, dx, acc, params, plane);
  }
  void linear_forward(const Op& op, ConstTensorView x, TensorView y, const float* params) {
    reference_ops::linear_forward(op, x, y, params);
  }
  void linear_backward(const Op& op, ConstTensorView x, ConstTensorView dy, TensorView dx, bool acc,
                       const float* params, float* grads) {
    reference_ops::linear_backward_weights(op, x, dy, grads);
    if (dx.data) reference_ops::linear_backward_data(op, dy, dx, acc, params);
  }
  void batch_norm_forward(const Op& op, ConstTensorView x, TensorView y, float* params, bool batch, double factor,
                          double* saved, train::StatisticsReduction* sync) {
    reference_ops::batch_norm_train_forward(op, x, y, params, batch, factor, saved, sync);
  }
  void batch_norm_backward(const Op& op, ConstTensorView x, ConstTensorView dy, TensorView dx, bool acc,
                           const float* params, float* grads, bool batch, double* saved,
                           train::StatisticsReduction* sync) {
    reference_ops::batch_norm_backward(op, x, dy, dx, acc, params, grads, batch, saved, sync);
  }
  void relu_forward(ConstTensorView x, TensorView y) { reference_ops::relu_forward(x, y); }
  void relu_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool acc) {
    reference_ops::relu_backward(y, dy, dx, acc);
  }
  void sigmoid_forward(ConstTensorView x, TensorView y) { reference_ops::sigmoid_forward(x, y); }
  void sigmoid_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool acc) {
    reference_ops::sigmoid_backward(y, dy, dx, acc);
  }
  void softmax_forward(ConstTensorView x, TensorView y) { reference_ops::softmax_forward(x, y); }
  void softmax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool acc) {
    reference_ops::softmax_backward(y, dy, dx, acc);
  }
  void max_pool_forward(const Op& op, ConstTensorView x, TensorView y, std::uint32_t* argmax) {
    reference_ops::max_pool_forward(op, x, y, argmax);
  }
  void max_pool_backward(const Op&, ConstTensorView dy, TensorView dx, bool acc, const std::uint32_t* argmax) {
    reference_ops::max_pool_backward(dy, dx, acc, argmax);
  }
  void global_avg_pool_forward(ConstTensorView x, TensorView y) { reference_ops::global_avg_pool_forward(x, y); }
  void global_avg_pool_backward(ConstTensorView dy, TensorView dx, bool acc) {
    reference_ops::global_avg_pool_backward(dy, dx, acc);
  }
  void dropout_forward(const Op& op, ConstTensorView x, TensorView y, SplitMix64& rng, float* mask) {
    reference_ops::dropout_train_forward(op, x, y, rng, mask);
  }
  void dropout_backward(ConstTensorView dy, TensorView dx, bool acc, const float* mask) {
    reference_ops::dropout_backward(dy, dx, acc, mask);
  }
  void add_forward(ConstTensorView x, ConstTensorView r, TensorView y) { reference_ops::add_forward(x, r, y); }
  void pad_shortcut_forward(const Op& op, ConstTensorView x, TensorView y) { reference_ops::pad_shortcut_forward(op, x, y); }
  void pad_shortcut_backward(const Op& op, ConstTensorView dy, TensorView dx, bool acc) {
    reference_ops::pad_shortcut_backward(op, dy, dx, acc);
  }
  void pass_gradient(ConstTensorView dy, TensorView dx, bool acc) { reference_ops::pass_gradient(dy, dx, acc); }

  // The optimiser's rule, one parameter after another.
  template <class O>
  void apply(const O& optimizer, const std::vector<train::TrainableRange>& ranges, float* params, const float* grads,
             float* state, double gradient_scale) {
    for (const train::TrainableRange& r : ranges)
      train::update_range(optimizer, r, r.offset, r.offset + r.size, params, grads, state, gradient_scale);
  }
};

class Reference::TrainingExecutor : public train::TapeExecutor<ReferenceTrainingKernels> {
 public:
  TrainingExecutor(const Program& program, std::span<const float> params, std::size_t begin = 0)
      : TapeExecutor(program, params, begin, "ctnn reference backend") {}
};

}  // namespace ctnn::backend

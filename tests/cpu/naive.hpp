// Test support for the CPU backend: a Program builder with random parameters,
// and the reference backend as the oracle (plain NCHW loops in double
// precision, sharing no code, layout or BatchNorm folding with the backend).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ctnn/backend/reference/reference.hpp"
#include "ctnn/core/tensor.hpp"
#include "ctnn/ir/program.hpp"

namespace ctnn::test {

struct ProgramBuilder {
  Program p;
  std::vector<float> params;
  std::mt19937 rng;

  explicit ProgramBuilder(int input_channels, unsigned seed = 1) : rng(seed) { p.input_channels = input_channels; }

  std::size_t normal(std::size_t n, double stddev, double mean = 0.0) {
    std::normal_distribution<double> d(mean, stddev);
    const std::size_t at = params.size();
    for (std::size_t i = 0; i < n; ++i) params.push_back(static_cast<float>(d(rng)));
    return at;
  }
  std::size_t uniform(std::size_t n, double lo, double hi) {
    std::uniform_real_distribution<double> d(lo, hi);
    const std::size_t at = params.size();
    for (std::size_t i = 0; i < n; ++i) params.push_back(static_cast<float>(d(rng)));
    return at;
  }
  Op& push(OpKind kind, int in, int out, const std::string& name) {
    Op op;
    op.kind = kind;
    op.input = in;
    op.output = out;
    op.name = name;
    p.ops.push_back(op);
    return p.ops.back();
  }

  int conv(int in, int cin, int cout, int k, int s, int pad, bool bias = false, int groups = 1) {
    Op& op = push(groups > 1 ? OpKind::grouped_conv : OpKind::conv, in, p.new_value(), "conv" + std::to_string(p.ops.size()));
    op.in_channels = cin;
    op.out_channels = cout;
    op.kernel = k;
    op.stride = s;
    op.padding = pad;
    op.groups = groups;
    op.weight = normal(static_cast<std::size_t>(cout * (cin / groups) * k * k), std::sqrt(2.0 / (cin / groups * k * k)));
    if (bias) op.bias = uniform(static_cast<std::size_t>(cout), -0.5, 0.5);
    return op.output;
  }
  // In place, or into a new value when `fresh` (an op on the caller's input).
  int bn(int v, int c, bool fresh = false) {
    Op& op = push(OpKind::batch_norm, v, fresh ? p.new_value() : v, "bn" + std::to_string(p.ops.size()));
    op.weight = uniform(static_cast<std::size_t>(c), 0.5, 1.5);
    op.bias = uniform(static_cast<std::size_t>(c), -0.5, 0.5);
    op.running_mean = uniform(static_cast<std::size_t>(c), -0.5, 0.5);
    op.running_var = uniform(static_cast<std::size_t>(c), 0.5, 2.0);
    return op.output;
  }
  void relu(int v) { push(OpKind::relu, v, v, "relu"); }
  void sigmoid(int v) { push(OpKind::sigmoid, v, v, "sigmoid"); }
  void softmax(int v) { push(OpKind::softmax, v, v, "softmax"); }
  void dropout(int v) { push(OpKind::dropout, v, v, "dropout").dropout_p = 0.5; }
  void add(int v, int residual) { push(OpKind::add, v, v, "add").residual = residual; }
  int max_pool(int in, int k, int s, int pad) {
    Op& op = push(OpKind::max_pool, in, p.new_value(), "maxpool");
    op.kernel = k;
    op.stride = s;
    op.padding = pad;
    return op.output;
  }
  int global_avg_pool(int in) { return push(OpKind::global_avg_pool, in, p.new_value(), "avgpool").output; }
  int linear(int in, int fin, int fout) {
    Op& op = push(OpKind::linear, in, p.new_value(), "fc");
    op.in_channels = fin;
    op.out_channels = fout;
    const double bound = 1.0 / std::sqrt(fin);
    op.weight = uniform(static_cast<std::size_t>(fin * fout), -bound, bound);
    op.bias = uniform(static_cast<std::size_t>(fout), -bound, bound);
    return op.output;
  }
  // Marks `features` as the backbone's end and `output` as the network's.
  Program finish(int features, int output) {
    p.features = features;
    p.output = output;
    p.features_end = 0;
    for (std::size_t i = 0; i < p.ops.size(); ++i)
      if (p.ops[i].output == features) p.features_end = i + 1;
    return p;
  }
};

inline Tensor random_input(Extents e, unsigned seed) {
  Tensor t(e);
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = d(rng);
  return t;
}

// Ops [0, end) of `p` on the reference backend (the oracle: plain NCHW loops
// in double, BatchNorm unfolded); returns value `result` as NCHW.
inline Tensor reference_run(const Program& p, const std::vector<float>& params, ConstTensorView input, std::size_t end,
                            int result) {
  Program prefix = p;
  prefix.ops.resize(end);
  prefix.features = prefix.output = result;
  prefix.features_end = end;
  const backend::Reference::Executor ex(prefix, params);
  auto ctx = ex.make_context({input.shape.n, input.shape.h, input.shape.w});
  return Tensor::copy_of(ex.run(input, ctx, Stage::output));
}

inline double relative_error(ConstTensorView a, ConstTensorView b) {
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const double d = std::abs(static_cast<double>(a.data[i]) - b.data[i]);
    if (!std::isfinite(d)) return std::numeric_limits<double>::infinity();
    err = std::max(err, d);
    scale = std::max(scale, std::abs(static_cast<double>(b.data[i])));
  }
  return err / std::max(scale, 1e-30);
}

}  // namespace ctnn::test

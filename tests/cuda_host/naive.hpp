// The oracle for the CUDA backend's host tests: the reference backend (NCHW,
// double accumulation, straight from the unfolded parameters: no BatchNorm
// folding, no fusion, no repacking, no layout change).
#pragma once

#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "ctnn/backend/reference/reference.hpp"
#include "ctnn/ir/program.hpp"

namespace ctnn::test {

inline std::vector<double> naive_run(const Program& p, std::span<const float> params, std::span<const float> input,
                                     Extents shape, Stage stage, Extents* out_shape = nullptr) {
  const backend::Reference::Executor ex(p, params);
  auto ctx = ex.make_context({shape.n, shape.h, shape.w});
  const ConstTensorView y = ex.run(ConstTensorView{input.data(), shape}, ctx, stage);
  if (out_shape) *out_shape = y.shape;
  return std::vector<double>(y.data, y.data + y.size());
}

// Builds small Programs by hand, the way the typed layers lower themselves,
// with parameters drawn from a fixed-seed generator.
struct ProgramBuilder {
  Program p;
  std::vector<float> params;
  unsigned state = 12345;

  explicit ProgramBuilder(int input_channels) { p.input_channels = input_channels; }

  float uniform(float lo, float hi) {
    state = state * 1664525u + 1013904223u;
    return lo + (hi - lo) * static_cast<float>(state >> 8) / static_cast<float>(1u << 24);
  }
  std::size_t add_params(std::size_t n, float lo, float hi) {
    const std::size_t at = params.size();
    for (std::size_t i = 0; i < n; ++i) params.push_back(uniform(lo, hi));
    return at;
  }
  int conv(int in, int cin, int cout, int k, int stride, int pad, bool bias, const std::string& name) {
    Op op;
    op.kind = OpKind::conv;
    op.input = in;
    op.output = p.new_value();
    op.in_channels = cin;
    op.out_channels = cout;
    op.kernel = k;
    op.stride = stride;
    op.padding = pad;
    const float bound = 1.0f / std::sqrt(static_cast<float>(cin * k * k));
    op.weight = add_params(static_cast<std::size_t>(cout) * cin * k * k, -bound * 1.7f, bound * 1.7f);
    if (bias) op.bias = add_params(static_cast<std::size_t>(cout), -0.1f, 0.1f);
    op.name = name;
    p.ops.push_back(op);
    return op.output;
  }
  void bn(int v, int c, const std::string& name) {
    Op op;
    op.kind = OpKind::batch_norm;
    op.input = op.output = v;
    op.in_channels = op.out_channels = c;
    op.weight = add_params(static_cast<std::size_t>(c), 0.5f, 1.5f);
    op.bias = add_params(static_cast<std::size_t>(c), -0.3f, 0.3f);
    op.running_mean = add_params(static_cast<std::size_t>(c), -0.2f, 0.2f);
    op.running_var = add_params(static_cast<std::size_t>(c), 0.5f, 2.0f);
    op.name = name;
    p.ops.push_back(op);
  }
  void unary(OpKind kind, int v, const std::string& name) {
    Op op;
    op.kind = kind;
    op.input = op.output = v;
    op.name = name;
    p.ops.push_back(op);
  }
  void add(int v, int residual, const std::string& name) {
    Op op;
    op.kind = OpKind::add;
    op.input = op.output = v;
    op.residual = residual;
    op.name = name;
    p.ops.push_back(op);
  }
  int max_pool(int in, int k, int s, int pad, const std::string& name) {
    Op op;
    op.kind = OpKind::max_pool;
    op.input = in;
    op.output = p.new_value();
    op.kernel = k;
    op.stride = s;
    op.padding = pad;
    op.name = name;
    p.ops.push_back(op);
    return op.output;
  }
  int avg_pool(int in, const std::string& name) {
    Op op;
    op.kind = OpKind::global_avg_pool;
    op.input = in;
    op.output = p.new_value();
    op.name = name;
    p.ops.push_back(op);
    return op.output;
  }
  int linear(int in, int fin, int fout, const std::string& name) {
    Op op;
    op.kind = OpKind::linear;
    op.input = in;
    op.output = p.new_value();
    op.in_channels = fin;
    op.out_channels = fout;
    const float bound = 1.0f / std::sqrt(static_cast<float>(fin));
    op.weight = add_params(static_cast<std::size_t>(fout) * fin, -bound * 3, bound * 3);
    op.bias = add_params(static_cast<std::size_t>(fout), -bound, bound);
    op.name = name;
    p.ops.push_back(op);
    return op.output;
  }
  // torchvision BasicBlock: conv-bn-relu-conv-bn (+ downsample) + add + relu.
  // As models/blocks.hpp lowers it: the projection first, so that the add
  // directly follows bn2.
  int basic_block(int x, int cin, int cout, int stride, const std::string& name) {
    int identity = x;
    if (stride != 1 || cin != cout) {
      identity = conv(x, cin, cout, 1, stride, 0, false, name + ".downsample.0");
      bn(identity, cout, name + ".downsample.1");
    }
    int y = conv(x, cin, cout, 3, stride, 1, false, name + ".conv1");
    bn(y, cout, name + ".bn1");
    unary(OpKind::relu, y, name + ".relu");
    int z = conv(y, cout, cout, 3, 1, 1, false, name + ".conv2");
    bn(z, cout, name + ".bn2");
    add(z, identity, name + ".add");
    unary(OpKind::relu, z, name + ".relu");
    return z;
  }
};

}  // namespace ctnn::test

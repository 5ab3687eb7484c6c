// An independent oracle for the CUDA backend's host tests: executes a
// Program op by op in double precision, NCHW, straight from the unfolded
// parameters (no BatchNorm folding, no fusion, no repacking, no layout change).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "ctnn/core/program.hpp"

namespace ctnn::test {

inline std::vector<double> naive_run(const Program& p, std::span<const float> params, std::span<const float> input,
                                     Extents shape, Stage stage, Extents* out_shape = nullptr) {
  std::vector<Extents> e = infer_extents(p, shape);
  std::vector<std::vector<double>> v(static_cast<std::size_t>(p.values));
  v[0].assign(input.begin(), input.end());
  const std::size_t end = stage == Stage::features ? p.features_end : p.ops.size();
  for (std::size_t k = 0; k < end; ++k) {
    const Op& op = p.ops[k];
    const Extents in = e[static_cast<std::size_t>(op.input)], out = e[static_cast<std::size_t>(op.output)];
    std::vector<double> x = v[static_cast<std::size_t>(op.input)];
    std::vector<double> y(out.count(), 0.0);
    auto P = [&](std::size_t off, std::size_t i) { return static_cast<double>(params[off + i]); };
    switch (op.kind) {
      case OpKind::conv: {
        const int R = op.kernel;
        for (std::size_t n = 0; n < out.n; ++n)
          for (std::size_t ko = 0; ko < out.c; ++ko)
            for (std::size_t oy = 0; oy < out.h; ++oy)
              for (std::size_t ox = 0; ox < out.w; ++ox) {
                double s = op.bias != no_param ? P(op.bias, ko) : 0.0;
                for (std::size_t c = 0; c < in.c; ++c)
                  for (int r = 0; r < R; ++r)
                    for (int q = 0; q < R; ++q) {
                      const long iy = static_cast<long>(oy) * op.stride - op.padding + r;
                      const long ix = static_cast<long>(ox) * op.stride - op.padding + q;
                      if (iy < 0 || ix < 0 || iy >= static_cast<long>(in.h) || ix >= static_cast<long>(in.w)) continue;
                      s += x[((n * in.c + c) * in.h + static_cast<std::size_t>(iy)) * in.w + static_cast<std::size_t>(ix)] *
                           P(op.weight, ((ko * in.c + c) * static_cast<std::size_t>(R) + static_cast<std::size_t>(r)) *
                                            static_cast<std::size_t>(R) + static_cast<std::size_t>(q));
                    }
                y[((n * out.c + ko) * out.h + oy) * out.w + ox] = s;
              }
        break;
      }
      case OpKind::batch_norm:
        for (std::size_t i = 0; i < x.size(); ++i) {
          const std::size_t c = (i / (in.h * in.w)) % in.c;
          y[i] = (x[i] - P(op.running_mean, c)) / std::sqrt(P(op.running_var, c) + op.eps) * P(op.weight, c) +
                 P(op.bias, c);
        }
        break;
      case OpKind::relu:
        for (std::size_t i = 0; i < x.size(); ++i) y[i] = std::max(x[i], 0.0);
        break;
      case OpKind::sigmoid:
        for (std::size_t i = 0; i < x.size(); ++i) y[i] = 1.0 / (1.0 + std::exp(-x[i]));
        break;
      case OpKind::dropout:
        y = x;
        break;
      case OpKind::add:
        for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] + v[static_cast<std::size_t>(op.residual)][i];
        break;
      case OpKind::max_pool:
        for (std::size_t n = 0; n < out.n; ++n)
          for (std::size_t c = 0; c < out.c; ++c)
            for (std::size_t oy = 0; oy < out.h; ++oy)
              for (std::size_t ox = 0; ox < out.w; ++ox) {
                double m = -std::numeric_limits<double>::infinity();
                for (int r = 0; r < op.kernel; ++r)
                  for (int q = 0; q < op.kernel; ++q) {
                    const long iy = static_cast<long>(oy) * op.stride - op.padding + r;
                    const long ix = static_cast<long>(ox) * op.stride - op.padding + q;
                    if (iy < 0 || ix < 0 || iy >= static_cast<long>(in.h) || ix >= static_cast<long>(in.w)) continue;
                    m = std::max(m, x[((n * in.c + c) * in.h + static_cast<std::size_t>(iy)) * in.w +
                                      static_cast<std::size_t>(ix)]);
                  }
                y[((n * out.c + c) * out.h + oy) * out.w + ox] = m;
              }
        break;
      case OpKind::global_avg_pool:
        for (std::size_t n = 0; n < in.n; ++n)
          for (std::size_t c = 0; c < in.c; ++c) {
            double s = 0;
            for (std::size_t i = 0; i < in.h * in.w; ++i) s += x[(n * in.c + c) * in.h * in.w + i];
            y[n * in.c + c] = s / static_cast<double>(in.h * in.w);
          }
        break;
      case OpKind::linear:
        for (std::size_t n = 0; n < in.n; ++n)
          for (std::size_t o = 0; o < out.c; ++o) {
            double s = op.bias != no_param ? P(op.bias, o) : 0.0;
            for (std::size_t i = 0; i < in.c; ++i) s += P(op.weight, o * in.c + i) * x[n * in.c + i];
            y[n * out.c + o] = s;
          }
        break;
      case OpKind::softmax:
        for (std::size_t n = 0; n < in.n; ++n) {
          double m = -std::numeric_limits<double>::infinity(), s = 0;
          for (std::size_t c = 0; c < in.c; ++c) m = std::max(m, x[n * in.c + c]);
          for (std::size_t c = 0; c < in.c; ++c) s += std::exp(x[n * in.c + c] - m);
          for (std::size_t c = 0; c < in.c; ++c) y[n * in.c + c] = std::exp(x[n * in.c + c] - m) / s;
        }
        break;
    }
    v[static_cast<std::size_t>(op.output)] = std::move(y);
  }
  const int r = stage == Stage::features ? p.features : p.output;
  if (out_shape) *out_shape = e[static_cast<std::size_t>(r)];
  return v[static_cast<std::size_t>(r)];
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
  int basic_block(int x, int cin, int cout, int stride, const std::string& name) {
    int y = conv(x, cin, cout, 3, stride, 1, false, name + ".conv1");
    bn(y, cout, name + ".bn1");
    unary(OpKind::relu, y, name + ".relu");
    int z = conv(y, cout, cout, 3, 1, 1, false, name + ".conv2");
    bn(z, cout, name + ".bn2");
    int identity = x;
    if (stride != 1 || cin != cout) {
      identity = conv(x, cin, cout, 1, stride, 0, false, name + ".downsample.0");
      bn(identity, cout, name + ".downsample.1");
    }
    add(z, identity, name + ".add");
    unary(OpKind::relu, z, name + ".relu");
    return z;
  }
};

}  // namespace ctnn::test

// Test support for the CPU backend: a Program builder with random parameters
// and an obviously-correct evaluator (plain NCHW loops in double precision)
// that shares no code, layout or BatchNorm folding with the backend.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ctnn/core/program.hpp"
#include "ctnn/core/tensor.hpp"

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

  int conv(int in, int cin, int cout, int k, int s, int pad, bool bias = false) {
    Op& op = push(OpKind::conv, in, p.new_value(), "conv" + std::to_string(p.ops.size()));
    op.in_channels = cin;
    op.out_channels = cout;
    op.kernel = k;
    op.stride = s;
    op.padding = pad;
    op.weight = normal(static_cast<std::size_t>(cout * cin * k * k), std::sqrt(2.0 / (cin * k * k)));
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

// Evaluates ops [0, end) of `p` in double; returns value `result` as NCHW.
inline Tensor naive_run(const Program& p, const std::vector<float>& params, ConstTensorView input, std::size_t end,
                        int result) {
  std::vector<Extents> e = infer_extents(p, input.shape);
  std::vector<std::vector<double>> v(static_cast<std::size_t>(p.values));
  v[0].assign(input.data, input.data + input.size());
  const auto P = [&](std::size_t off, std::size_t i) { return static_cast<double>(params[off + i]); };
  for (std::size_t k = 0; k < end; ++k) {
    const Op& op = p.ops[k];
    const Extents in = e[static_cast<std::size_t>(op.input)], out = e[static_cast<std::size_t>(op.output)];
    const bool elementwise = op.kind != OpKind::conv && op.kind != OpKind::max_pool &&
                             op.kind != OpKind::global_avg_pool && op.kind != OpKind::linear;
    if (elementwise && op.output != op.input) v[static_cast<std::size_t>(op.output)] = v[static_cast<std::size_t>(op.input)];
    std::vector<double>& x = v[static_cast<std::size_t>(elementwise ? op.output : op.input)];
    const auto X = [&](std::size_t n, std::size_t c, std::size_t h, std::size_t w) -> double& {
      return x[((n * in.c + c) * in.h + h) * in.w + w];
    };
    switch (op.kind) {
      case OpKind::conv:
      case OpKind::max_pool: {
        std::vector<double> y(out.count());
        for (std::size_t n = 0; n < out.n; ++n)
          for (std::size_t o = 0; o < out.c; ++o)
            for (std::size_t oh = 0; oh < out.h; ++oh)
              for (std::size_t ow = 0; ow < out.w; ++ow) {
                double acc = op.kind == OpKind::conv ? (op.bias != no_param ? P(op.bias, o) : 0.0)
                                                     : -std::numeric_limits<double>::infinity();
                for (std::size_t c = 0; c < (op.kind == OpKind::conv ? in.c : 1); ++c)
                  for (int kh = 0; kh < op.kernel; ++kh)
                    for (int kw = 0; kw < op.kernel; ++kw) {
                      const long ih = static_cast<long>(oh) * op.stride - op.padding + kh;
                      const long iw = static_cast<long>(ow) * op.stride - op.padding + kw;
                      if (ih < 0 || iw < 0 || ih >= static_cast<long>(in.h) || iw >= static_cast<long>(in.w)) continue;
                      if (op.kind == OpKind::conv)
                        acc += P(op.weight, ((o * in.c + c) * op.kernel + kh) * op.kernel + kw) *
                               X(n, c, static_cast<std::size_t>(ih), static_cast<std::size_t>(iw));
                      else
                        acc = std::max(acc, X(n, o, static_cast<std::size_t>(ih), static_cast<std::size_t>(iw)));
                    }
                y[((n * out.c + o) * out.h + oh) * out.w + ow] = acc;
              }
        v[static_cast<std::size_t>(op.output)] = std::move(y);
        break;
      }
      case OpKind::batch_norm:
        for (std::size_t i = 0; i < x.size(); ++i) {
          const std::size_t c = i / (in.h * in.w) % in.c;
          x[i] = (x[i] - P(op.running_mean, c)) / std::sqrt(P(op.running_var, c) + op.eps) * P(op.weight, c) +
                 P(op.bias, c);
        }
        break;
      case OpKind::relu:
        for (double& a : x) a = std::max(a, 0.0);
        break;
      case OpKind::sigmoid:
        for (double& a : x) a = 1.0 / (1.0 + std::exp(-a));
        break;
      case OpKind::dropout: break;
      case OpKind::add: {
        const std::vector<double>& r = v[static_cast<std::size_t>(op.residual)];
        for (std::size_t i = 0; i < x.size(); ++i) x[i] += r[i];
        break;
      }
      case OpKind::softmax:
        for (std::size_t n = 0; n < in.n; ++n) {
          double m = -std::numeric_limits<double>::infinity(), s = 0;
          for (std::size_t c = 0; c < in.c; ++c) m = std::max(m, X(n, c, 0, 0));
          for (std::size_t c = 0; c < in.c; ++c) s += std::exp(X(n, c, 0, 0) - m);
          for (std::size_t c = 0; c < in.c; ++c) X(n, c, 0, 0) = std::exp(X(n, c, 0, 0) - m) / s;
        }
        break;
      case OpKind::global_avg_pool: {
        std::vector<double> y(out.count());
        for (std::size_t n = 0; n < in.n; ++n)
          for (std::size_t c = 0; c < in.c; ++c) {
            double s = 0;
            for (std::size_t h = 0; h < in.h; ++h)
              for (std::size_t w = 0; w < in.w; ++w) s += X(n, c, h, w);
            y[n * in.c + c] = s / static_cast<double>(in.h * in.w);
          }
        v[static_cast<std::size_t>(op.output)] = std::move(y);
        break;
      }
      case OpKind::linear: {
        std::vector<double> y(out.count());
        for (std::size_t n = 0; n < in.n; ++n)
          for (std::size_t o = 0; o < out.c; ++o) {
            double s = op.bias != no_param ? P(op.bias, o) : 0.0;
            for (std::size_t i = 0; i < in.c; ++i) s += P(op.weight, o * in.c + i) * x[n * in.c + i];
            y[n * out.c + o] = s;
          }
        v[static_cast<std::size_t>(op.output)] = std::move(y);
        break;
      }
    }
  }
  Tensor t(e[static_cast<std::size_t>(result)]);
  const std::vector<double>& r = v[static_cast<std::size_t>(result)];
  for (std::size_t i = 0; i < t.size(); ++i) t.data()[i] = static_cast<float>(r[i]);
  return t;
}

// max |a - b| / max |b|: the error relative to the largest expected value.
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

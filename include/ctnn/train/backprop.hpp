// Training-mode execution of a Program range with backward passes.
//
// Forward keeps every op's output (element-wise ops get their own copy, so
// in-place inference ops become out-of-place here), BatchNorm normalises with
// batch statistics and updates the running ones (PyTorch: biased variance to
// normalise, unbiased into running_var, momentum 0.1), and Dropout draws a
// seeded mask. Backward walks the ops in reverse, accumulating gradients of
// values (a value read twice, like a block's input, sums both) and of
// parameters into an arena laid out like the model's.
//
// Plain loops with double accumulation, like the reference backend whose
// forward kernels it reuses: training here favours obviously-correct over fast.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "ctnn/backend/reference/reference.hpp"
#include "ctnn/core/init.hpp"
#include "ctnn/ir/program.hpp"
#include "ctnn/core/tensor.hpp"

namespace ctnn::train {

class Backprop {
 public:
  // Runs ops [begin, end) of `program`, whose first op reads value `input`.
  Backprop(const Program& program, std::size_t begin, std::size_t end)
      : program_(program), begin_(begin), end_(end) {
    if (begin >= end || end > program.ops.size()) throw std::invalid_argument("ctnn: empty training range");
  }

  // `params` is updated in place (BatchNorm running statistics) when training.
  ConstTensorView forward(ConstTensorView input, std::span<float> params, bool training, SplitMix64& rng) {
    const std::size_t count = end_ - begin_;
    outs_.clear();
    outs_.resize(count);
    saved_.assign(count, {});
    in_src_.assign(count, -1);
    res_src_.assign(count, -1);
    input_ = input;
    std::vector<int> latest(static_cast<std::size_t>(program_.values), -2);  // -1: the range's input
    latest[static_cast<std::size_t>(program_.ops[begin_].input)] = -1;
    std::vector<double> plane;

    for (std::size_t i = 0; i < count; ++i) {
      const Op& op = program_.ops[begin_ + i];
      in_src_[i] = latest[static_cast<std::size_t>(op.input)];
      if (in_src_[i] == -2) throw std::logic_error("ctnn: training range reads a value computed before it");
      const ConstTensorView x = value(in_src_[i]);
      Tensor& y = outs_[i];
      switch (op.kind) {
        case OpKind::conv: {
          y = Tensor(out_extents(op, x.shape));
          plane.resize(y.shape().h * y.shape().w);
          backend::reference_ops::conv(op, x, y, params.data(), plane);
          break;
        }
        case OpKind::max_pool: {
          y = Tensor(out_extents(op, x.shape));
          max_pool_with_indices(op, x, y, saved_[i]);
          break;
        }
        case OpKind::global_avg_pool:
          y = Tensor(Extents{x.shape.n, x.shape.c, 1, 1});
          backend::reference_ops::global_avg_pool(x, y);
          break;
        case OpKind::linear:
          y = Tensor(Extents{x.shape.n, static_cast<std::size_t>(op.out_channels), 1, 1});
          backend::reference_ops::linear(op, x, y, params.data());
          break;
        case OpKind::batch_norm:
          y = Tensor::copy_of(x);
          batch_norm_forward(op, y, params, training, saved_[i]);
          break;
        case OpKind::relu:
          y = Tensor::copy_of(x);
          for (const TensorView out = y.view(); float& v : out.span()) v = v > 0.f ? v : 0.f;
          break;
        case OpKind::sigmoid:
          y = Tensor::copy_of(x);
          for (const TensorView out = y.view(); float& v : out.span()) v = static_cast<float>(1.0 / (1.0 + std::exp(-double(v))));
          break;
        case OpKind::softmax:
          y = Tensor::copy_of(x);
          backend::reference_ops::softmax(y);
          break;
        case OpKind::dropout:
          y = Tensor::copy_of(x);
          if (training && op.dropout_p > 0) {
            saved_[i].resize(y.size());
            const double keep = 1.0 - op.dropout_p;
            for (std::size_t j = 0; j < y.size(); ++j) {
              const float scale = rng.uniform() < keep ? static_cast<float>(1.0 / keep) : 0.f;
              saved_[i][j] = scale;
              y.data()[j] *= scale;
            }
          }
          break;
        case OpKind::add: {
          res_src_[i] = latest[static_cast<std::size_t>(op.residual)];
          const ConstTensorView r = value(res_src_[i]);
          y = Tensor::copy_of(x);
          for (std::size_t j = 0; j < y.size(); ++j) y.data()[j] += r.data[j];
          break;
        }
      }
      latest[static_cast<std::size_t>(op.output)] = static_cast<int>(i);
    }
    return outs_.back().view();
  }

  // Accumulates parameter gradients into `grads` (the model's arena layout).
  void backward(ConstTensorView d_output, std::span<const float> params, std::span<float> grads) {
    const std::size_t count = outs_.size();
    std::vector<Tensor> d(count);
    for (std::size_t i = 0; i < count; ++i) d[i] = Tensor(outs_[i].shape());
    std::copy(d_output.data, d_output.data + d_output.size(), d[count - 1].data());

    for (std::size_t k = count; k-- > 0;) {
      const Op& op = program_.ops[begin_ + k];
      const ConstTensorView g = d[k].view();
      const ConstTensorView x = value(in_src_[k]);
      const ConstTensorView y = outs_[k].view();
      Tensor dx_local;
      float* dx = nullptr;  // where this op's input gradient accumulates
      if (in_src_[k] >= 0) {
        dx = d[static_cast<std::size_t>(in_src_[k])].data();
      } else {
        dx_local = Tensor(x.shape);  // gradient w.r.t. the range input: computed, then dropped
        dx = dx_local.data();
      }
      switch (op.kind) {
        case OpKind::conv: conv_backward(op, x, g, params, grads, dx); break;
        case OpKind::max_pool:
          for (std::size_t j = 0; j < g.size(); ++j) dx[static_cast<std::size_t>(saved_[k][j])] += g.data[j];
          break;
        case OpKind::global_avg_pool: {
          const std::size_t area = x.shape.h * x.shape.w;
          for (std::size_t nc = 0; nc < g.size(); ++nc)
            for (std::size_t j = 0; j < area; ++j) dx[nc * area + j] += g.data[nc] / static_cast<float>(area);
          break;
        }
        case OpKind::linear: linear_backward(op, x, g, params, grads, dx); break;
        case OpKind::batch_norm: batch_norm_backward(op, x, g, params, grads, dx, saved_[k]); break;
        case OpKind::relu:
          for (std::size_t j = 0; j < g.size(); ++j) dx[j] += y.data[j] > 0.f ? g.data[j] : 0.f;
          break;
        case OpKind::sigmoid:
          for (std::size_t j = 0; j < g.size(); ++j) dx[j] += g.data[j] * y.data[j] * (1.f - y.data[j]);
          break;
        case OpKind::softmax: softmax_backward(y, g, dx); break;
        case OpKind::dropout:
          for (std::size_t j = 0; j < g.size(); ++j) dx[j] += saved_[k].empty() ? g.data[j] : g.data[j] * saved_[k][j];
          break;
        case OpKind::add: {
          for (std::size_t j = 0; j < g.size(); ++j) dx[j] += g.data[j];
          if (res_src_[k] >= 0) {
            float* dr = d[static_cast<std::size_t>(res_src_[k])].data();
            for (std::size_t j = 0; j < g.size(); ++j) dr[j] += g.data[j];
          }
          break;
        }
      }
    }
  }

 private:
  ConstTensorView value(int src) const { return src < 0 ? input_ : outs_[static_cast<std::size_t>(src)].view(); }

  static Extents out_extents(const Op& op, Extents in) {
    const auto o = [&](std::size_t v) {
      return static_cast<std::size_t>((static_cast<long>(v) + 2L * op.padding - op.kernel) / op.stride + 1);
    };
    return {in.n, op.kind == OpKind::conv ? static_cast<std::size_t>(op.out_channels) : in.c, o(in.h), o(in.w)};
  }

  static void max_pool_with_indices(const Op& op, ConstTensorView in, TensorView out, std::vector<float>& index) {
    index.resize(out.size());
    const long ih = static_cast<long>(in.shape.h), iw = static_cast<long>(in.shape.w);
    std::size_t j = 0;
    for (std::size_t n = 0; n < out.shape.n; ++n)
      for (std::size_t c = 0; c < out.shape.c; ++c)
        for (std::size_t oy = 0; oy < out.shape.h; ++oy)
          for (std::size_t ox = 0; ox < out.shape.w; ++ox, ++j) {
            float best = -INFINITY;
            std::size_t at = 0;
            for (int ky = 0; ky < op.kernel; ++ky)
              for (int kx = 0; kx < op.kernel; ++kx) {
                const long y = static_cast<long>(oy) * op.stride + ky - op.padding;
                const long x = static_cast<long>(ox) * op.stride + kx - op.padding;
                if (y < 0 || y >= ih || x < 0 || x >= iw) continue;
                const std::size_t flat = ((n * in.shape.c + c) * in.shape.h + static_cast<std::size_t>(y)) * in.shape.w +
                                         static_cast<std::size_t>(x);
                if (in.data[flat] > best) best = in.data[flat], at = flat;
              }
            out.data[j] = best;
            index[j] = static_cast<float>(at);  // exact for tensors below 2^24 elements
          }
    if (in.size() >= (std::size_t{1} << 24)) throw std::length_error("ctnn: max-pool input too large for training");
  }

  // saved: per channel [mean, inv_std] of the statistics used.
  static void batch_norm_forward(const Op& op, Tensor& y, std::span<float> params, bool training,
                                 std::vector<float>& saved) {
    const Extents e = y.shape();
    const std::size_t area = e.h * e.w, m = e.n * area;
    saved.resize(2 * e.c);
    for (std::size_t c = 0; c < e.c; ++c) {
      double mean, var;
      if (training) {
        double s = 0, s2 = 0;
        for (std::size_t n = 0; n < e.n; ++n)
          for (std::size_t j = 0; j < area; ++j) {
            const double v = y.data()[(n * e.c + c) * area + j];
            s += v, s2 += v * v;
          }
        mean = s / double(m);
        var = std::max(0.0, s2 / double(m) - mean * mean);
        const double unbiased = m > 1 ? var * double(m) / double(m - 1) : var;
        float& rm = params[op.running_mean + c];
        float& rv = params[op.running_var + c];
        rm = static_cast<float>(0.9 * rm + 0.1 * mean);
        rv = static_cast<float>(0.9 * rv + 0.1 * unbiased);
      } else {
        mean = params[op.running_mean + c];
        var = params[op.running_var + c];
      }
      const double inv_std = 1.0 / std::sqrt(var + double(op.eps));
      const double gamma = params[op.weight + c], beta = params[op.bias + c];
      saved[2 * c] = static_cast<float>(mean);
      saved[2 * c + 1] = static_cast<float>(inv_std);
      for (std::size_t n = 0; n < e.n; ++n)
        for (std::size_t j = 0; j < area; ++j) {
          float& v = y.data()[(n * e.c + c) * area + j];
          v = static_cast<float>((v - mean) * inv_std * gamma + beta);
        }
    }
    saved.push_back(training ? 1.f : 0.f);
  }

  static void batch_norm_backward(const Op& op, ConstTensorView x, ConstTensorView g, std::span<const float> params,
                                  std::span<float> grads, float* dx, const std::vector<float>& saved) {
    const Extents e = x.shape;
    const std::size_t area = e.h * e.w, m = e.n * area;
    const bool training = saved.back() != 0.f;
    for (std::size_t c = 0; c < e.c; ++c) {
      const double mean = saved[2 * c], inv_std = saved[2 * c + 1], gamma = params[op.weight + c];
      double sum_g = 0, sum_gx = 0;
      for (std::size_t n = 0; n < e.n; ++n)
        for (std::size_t j = 0; j < area; ++j) {
          const std::size_t at = (n * e.c + c) * area + j;
          sum_g += g.data[at];
          sum_gx += g.data[at] * (x.data[at] - mean) * inv_std;
        }
      grads[op.weight + c] += static_cast<float>(sum_gx);
      grads[op.bias + c] += static_cast<float>(sum_g);
      for (std::size_t n = 0; n < e.n; ++n)
        for (std::size_t j = 0; j < area; ++j) {
          const std::size_t at = (n * e.c + c) * area + j;
          const double xhat = (x.data[at] - mean) * inv_std;
          const double d = training ? gamma * inv_std * (g.data[at] - sum_g / double(m) - xhat * sum_gx / double(m))
                                    : gamma * inv_std * g.data[at];
          dx[at] += static_cast<float>(d);
        }
    }
  }

  static void conv_backward(const Op& op, ConstTensorView x, ConstTensorView g, std::span<const float> params,
                            std::span<float> grads, float* dx) {
    const long k = op.kernel, s = op.stride, p = op.padding;
    const long ih = static_cast<long>(x.shape.h), iw = static_cast<long>(x.shape.w);
    const long oh = static_cast<long>(g.shape.h), ow = static_cast<long>(g.shape.w);
    const float* w = params.data() + op.weight;
    float* dw = grads.data() + op.weight;
    for (long oc = 0; oc < op.out_channels; ++oc) {
      if (op.bias != no_param) {
        double sb = 0;
        for (std::size_t n = 0; n < g.shape.n; ++n)
          for (long j = 0; j < oh * ow; ++j) sb += g.data[(n * g.shape.c + static_cast<std::size_t>(oc)) * static_cast<std::size_t>(oh * ow) + static_cast<std::size_t>(j)];
        grads[op.bias + static_cast<std::size_t>(oc)] += static_cast<float>(sb);
      }
      for (long ic = 0; ic < op.in_channels; ++ic)
        for (long ky = 0; ky < k; ++ky)
          for (long kx = 0; kx < k; ++kx) {
            const std::size_t wi = static_cast<std::size_t>(((oc * op.in_channels + ic) * k + ky) * k + kx);
            double acc = 0;
            const double wv = w[wi];
            for (std::size_t n = 0; n < g.shape.n; ++n) {
              const float* gp = g.data + (n * g.shape.c + static_cast<std::size_t>(oc)) * static_cast<std::size_t>(oh * ow);
              const std::size_t xbase = (n * x.shape.c + static_cast<std::size_t>(ic)) * x.shape.h * x.shape.w;
              for (long oy = 0; oy < oh; ++oy) {
                const long y = oy * s + ky - p;
                if (y < 0 || y >= ih) continue;
                for (long ox = 0; ox < ow; ++ox) {
                  const long xx = ox * s + kx - p;
                  if (xx < 0 || xx >= iw) continue;
                  const std::size_t xi = xbase + static_cast<std::size_t>(y * iw + xx);
                  const float gv = gp[oy * ow + ox];
                  acc += double(gv) * x.data[xi];
                  dx[xi] += static_cast<float>(wv * gv);
                }
              }
            }
            dw[wi] += static_cast<float>(acc);
          }
    }
  }

  static void linear_backward(const Op& op, ConstTensorView x, ConstTensorView g, std::span<const float> params,
                              std::span<float> grads, float* dx) {
    const std::size_t in = x.shape.per_item(), out = static_cast<std::size_t>(op.out_channels);
    for (std::size_t n = 0; n < x.shape.n; ++n)
      for (std::size_t o = 0; o < out; ++o) {
        const double gv = g.data[n * out + o];
        grads[op.bias + o] += static_cast<float>(gv);
        for (std::size_t i = 0; i < in; ++i) {
          grads[op.weight + o * in + i] += static_cast<float>(gv * x.data[n * in + i]);
          dx[n * in + i] += static_cast<float>(gv * params[op.weight + o * in + i]);
        }
      }
  }

  static void softmax_backward(ConstTensorView y, ConstTensorView g, float* dx) {
    const std::size_t c = y.shape.c, area = y.shape.h * y.shape.w;
    for (std::size_t n = 0; n < y.shape.n; ++n)
      for (std::size_t j = 0; j < area; ++j) {
        double dot = 0;
        for (std::size_t k = 0; k < c; ++k) dot += double(g.data[(n * c + k) * area + j]) * y.data[(n * c + k) * area + j];
        for (std::size_t k = 0; k < c; ++k) {
          const std::size_t at = (n * c + k) * area + j;
          dx[at] += static_cast<float>(y.data[at] * (g.data[at] - dot));
        }
      }
  }

  const Program& program_;
  std::size_t begin_, end_;
  ConstTensorView input_;
  std::vector<Tensor> outs_;
  std::vector<std::vector<float>> saved_;
  std::vector<int> in_src_, res_src_;
};

}  // namespace ctnn::train

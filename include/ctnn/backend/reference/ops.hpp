// The reference backend's kernels, one section per op kind, each with
// everything the op needs: inference forward, training forward (keeping what
// backward needs), backward-data and backward-weights. Plain loops over NCHW
// with double accumulation: slow by design and obviously correct, the oracle
// every faster backend is tested against. Nothing here is shared with them.
//
// Conventions: gradients of parameters accumulate (+=) into an arena laid out
// like the model's; a gradient of a value is either assigned or accumulated
// (the tape's fan-in, train/tape.hpp), and may alias the output gradient when
// the op ran in place.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "ctnn/core/init.hpp"
#include "ctnn/core/tensor.hpp"
#include "ctnn/ir/program.hpp"
#include "ctnn/train/exchange.hpp"

namespace ctnn::backend::reference_ops {

inline void store(float* dst, std::size_t j, double v, bool accumulate) {
  dst[j] = accumulate ? static_cast<float>(dst[j] + v) : static_cast<float>(v);
}

// ---- conv -------------------------------------------------------------------
// Grouped when op.groups > 1: output channel oc sees input channels of its group only.

struct ConvGeometry {
  long k, s, p, ih, iw, oh, ow, cin_g, cout_g;
  ConvGeometry(const Op& op, Extents in, Extents out)
      : k(op.kernel), s(op.stride), p(op.padding), ih(static_cast<long>(in.h)), iw(static_cast<long>(in.w)),
        oh(static_cast<long>(out.h)), ow(static_cast<long>(out.w)), cin_g(op.in_channels / op.groups),
        cout_g(op.out_channels / op.groups) {}
  // Output columns ox with 0 <= ox*s + kx - p < iw.
  long ox_lo(long kx) const { return std::max(0L, (p - kx + s - 1) / s); }
  long ox_hi(long kx) const {
    const long last = iw - 1 + p - kx;
    return last < 0 ? 0 : std::min(ow, last / s + 1);
  }
};

// One output plane at a time, accumulated in `plane` (out.h * out.w doubles).
inline void conv_forward(const Op& op, ConstTensorView in, TensorView out, const float* params, std::span<double> plane) {
  const ConvGeometry g(op, in.shape, out.shape);
  const float* w = params + op.weight;
  for (std::size_t n = 0; n < out.shape.n; ++n)
    for (long oc = 0; oc < op.out_channels; ++oc) {
      const double bias = op.bias == no_param ? 0.0 : params[op.bias + static_cast<std::size_t>(oc)];
      std::fill(plane.begin(), plane.begin() + g.oh * g.ow, bias);
      const long ic0 = oc / g.cout_g * g.cin_g;
      for (long icg = 0; icg < g.cin_g; ++icg) {
        const float* src = in.data + (n * in.shape.c + static_cast<std::size_t>(ic0 + icg)) * in.shape.h * in.shape.w;
        for (long ky = 0; ky < g.k; ++ky)
          for (long kx = 0; kx < g.k; ++kx) {
            const double wv = w[((oc * g.cin_g + icg) * g.k + ky) * g.k + kx];
            const long lo = g.ox_lo(kx), hi = g.ox_hi(kx);
            for (long oy = 0; oy < g.oh; ++oy) {
              const long y = oy * g.s + ky - g.p;
              if (y < 0 || y >= g.ih) continue;
              const float* row = src + y * g.iw;
              double* acc = plane.data() + oy * g.ow;
              for (long ox = lo; ox < hi; ++ox) acc[ox] += wv * row[ox * g.s + kx - g.p];
            }
          }
      }
      float* dst = out.data + (n * out.shape.c + static_cast<std::size_t>(oc)) * out.shape.h * out.shape.w;
      for (long i = 0; i < g.oh * g.ow; ++i) dst[i] = static_cast<float>(plane[static_cast<std::size_t>(i)]);
    }
}

// dx = conv_transpose(dy, w), one input plane at a time in `plane` (in.h * in.w doubles).
inline void conv_backward_data(const Op& op, ConstTensorView dy, TensorView dx, bool accumulate, const float* params,
                               std::span<double> plane) {
  const ConvGeometry g(op, dx.shape, dy.shape);
  const float* w = params + op.weight;
  const std::size_t in_area = dx.shape.h * dx.shape.w, out_area = dy.shape.h * dy.shape.w;
  for (std::size_t n = 0; n < dx.shape.n; ++n)
    for (long ic = 0; ic < op.in_channels; ++ic) {
      std::fill(plane.begin(), plane.begin() + static_cast<long>(in_area), 0.0);
      const long group = ic / g.cin_g, icg = ic % g.cin_g;
      for (long ocg = 0; ocg < g.cout_g; ++ocg) {
        const long oc = group * g.cout_g + ocg;
        const float* grad = dy.data + (n * dy.shape.c + static_cast<std::size_t>(oc)) * out_area;
        for (long ky = 0; ky < g.k; ++ky)
          for (long kx = 0; kx < g.k; ++kx) {
            const double wv = w[((oc * g.cin_g + icg) * g.k + ky) * g.k + kx];
            const long lo = g.ox_lo(kx), hi = g.ox_hi(kx);
            for (long oy = 0; oy < g.oh; ++oy) {
              const long y = oy * g.s + ky - g.p;
              if (y < 0 || y >= g.ih) continue;
              double* acc = plane.data() + y * g.iw;
              const float* row = grad + oy * g.ow;
              for (long ox = lo; ox < hi; ++ox) acc[ox * g.s + kx - g.p] += wv * row[ox];
            }
          }
      }
      float* dst = dx.data + (n * dx.shape.c + static_cast<std::size_t>(ic)) * in_area;
      for (std::size_t i = 0; i < in_area; ++i) store(dst, i, plane[i], accumulate);
    }
}

// dW += sum over batch and pixels of dy x, db += sum of dy.
inline void conv_backward_weights(const Op& op, ConstTensorView x, ConstTensorView dy, float* grads) {
  const ConvGeometry g(op, x.shape, dy.shape);
  const std::size_t in_area = x.shape.h * x.shape.w, out_area = dy.shape.h * dy.shape.w;
  for (long oc = 0; oc < op.out_channels; ++oc) {
    if (op.bias != no_param) {
      double sum = 0;
      for (std::size_t n = 0; n < dy.shape.n; ++n)
        for (std::size_t j = 0; j < out_area; ++j) sum += dy.data[(n * dy.shape.c + static_cast<std::size_t>(oc)) * out_area + j];
      grads[op.bias + static_cast<std::size_t>(oc)] += static_cast<float>(sum);
    }
    const long ic0 = oc / g.cout_g * g.cin_g;
    for (long icg = 0; icg < g.cin_g; ++icg)
      for (long ky = 0; ky < g.k; ++ky)
        for (long kx = 0; kx < g.k; ++kx) {
          const long lo = g.ox_lo(kx), hi = g.ox_hi(kx);
          double acc = 0;
          for (std::size_t n = 0; n < dy.shape.n; ++n) {
            const float* grad = dy.data + (n * dy.shape.c + static_cast<std::size_t>(oc)) * out_area;
            const float* src = x.data + (n * x.shape.c + static_cast<std::size_t>(ic0 + icg)) * in_area;
            for (long oy = 0; oy < g.oh; ++oy) {
              const long y = oy * g.s + ky - g.p;
              if (y < 0 || y >= g.ih) continue;
              for (long ox = lo; ox < hi; ++ox)
                acc += double(grad[oy * g.ow + ox]) * src[y * g.iw + ox * g.s + kx - g.p];
            }
          }
          grads[op.weight + static_cast<std::size_t>(((oc * g.cin_g + icg) * g.k + ky) * g.k + kx)] +=
              static_cast<float>(acc);
        }
  }
}

// ---- batch_norm ---------------------------------------------------------------
// Eval: the running statistics. Training: the batch's (biased variance to
// normalise, unbiased into running_var), running statistics moved by
// `factor` (the layer's momentum, or 1/batches for a cumulative average).
// `saved` (4 x C doubles) keeps the statistics used, planar: [0, C) means,
// [C, 2C) 1/std; [2C, 4C) is scratch for `sync`. With `sync` (synchronised
// BatchNorm), the per-channel sums of forward and backward are summed over
// the processes, each normalising over processes() x its own batch. Without
// it the arithmetic is per channel in the same order as ever.

inline void batch_norm_forward(const Op& op, TensorView x, const float* params) {
  for (std::size_t c = 0; c < x.shape.c; ++c) {
    const double mean = params[op.running_mean + c], var = params[op.running_var + c];
    const double gamma = params[op.weight + c], beta = params[op.bias + c];
    const double inv_std = 1.0 / std::sqrt(var + static_cast<double>(op.eps));
    for (std::size_t n = 0; n < x.shape.n; ++n)
      for (float& v : std::span(&x(n, c), x.shape.h * x.shape.w)) v = static_cast<float>((v - mean) * inv_std * gamma + beta);
  }
}

inline void batch_norm_train_forward(const Op& op, ConstTensorView x, TensorView y, float* params, bool batch_statistics,
                                     double factor, double* saved, train::StatisticsReduction* sync = nullptr) {
  const std::size_t area = x.shape.h * x.shape.w, channels = x.shape.c;
  const std::size_t m = x.shape.n * area * (sync ? sync->processes() : 1);
  double* mean = saved;
  double* inv_std = saved + channels;
  double* squares = saved + 2 * channels;
  for (std::size_t c = 0; c < channels; ++c) {
    if (!batch_statistics) {
      mean[c] = params[op.running_mean + c];
      continue;
    }
    double sum = 0;
    for (std::size_t n = 0; n < x.shape.n; ++n)
      for (float v : std::span(&x(n, c), area)) sum += v;
    mean[c] = sum;
  }
  if (batch_statistics) {
    if (sync) sync->sum({mean, channels});
    for (std::size_t c = 0; c < channels; ++c) mean[c] /= double(m);
    for (std::size_t c = 0; c < channels; ++c) {  // two passes: no cancellation
      double sq = 0;
      for (std::size_t n = 0; n < x.shape.n; ++n)
        for (float v : std::span(&x(n, c), area)) sq += (v - mean[c]) * (v - mean[c]);
      squares[c] = sq;
    }
    if (sync) sync->sum({squares, channels});
  }
  for (std::size_t c = 0; c < channels; ++c) {
    double var = params[op.running_var + c];
    if (batch_statistics) {
      var = squares[c] / double(m);
      const double unbiased = m > 1 ? squares[c] / double(m - 1) : var;
      float& rm = params[op.running_mean + c];
      float& rv = params[op.running_var + c];
      rm = static_cast<float>((1 - factor) * rm + factor * mean[c]);
      rv = static_cast<float>((1 - factor) * rv + factor * unbiased);
    }
    inv_std[c] = 1.0 / std::sqrt(var + double(op.eps));
    const double gamma = params[op.weight + c], beta = params[op.bias + c];
    for (std::size_t n = 0; n < x.shape.n; ++n) {
      const float* src = &x(n, c);
      float* dst = &y(n, c);
      for (std::size_t j = 0; j < area; ++j) dst[j] = static_cast<float>((src[j] - mean[c]) * inv_std[c] * gamma + beta);
    }
  }
}

inline void batch_norm_backward(const Op& op, ConstTensorView x, ConstTensorView dy, TensorView dx, bool accumulate,
                                const float* params, float* grads, bool batch_statistics, double* saved,
                                train::StatisticsReduction* sync = nullptr) {
  const std::size_t area = x.shape.h * x.shape.w, channels = x.shape.c;
  const std::size_t m = x.shape.n * area * (sync && batch_statistics ? sync->processes() : 1);
  const double* mean = saved;
  const double* inv_std = saved + channels;
  double* sums = saved + 2 * channels;  // [sum dy | sum dy * xhat], per channel
  for (std::size_t c = 0; c < channels; ++c) {
    double sum_dy = 0, sum_dy_xhat = 0;
    for (std::size_t n = 0; n < x.shape.n; ++n)
      for (std::size_t j = 0; j < area; ++j) {
        const double g = (&dy(n, c))[j];
        sum_dy += g;
        sum_dy_xhat += g * ((&x(n, c))[j] - mean[c]) * inv_std[c];
      }
    grads[op.weight + c] += static_cast<float>(sum_dy_xhat);  // this process's: the gradient exchange averages them
    grads[op.bias + c] += static_cast<float>(sum_dy);
    sums[c] = sum_dy;
    sums[channels + c] = sum_dy_xhat;
  }
  if (!dx.data) return;  // the range's input: no gradient wanted
  if (sync && batch_statistics) sync->sum({sums, 2 * channels});
  for (std::size_t c = 0; c < channels; ++c) {
    const double gamma = params[op.weight + c], sum_dy = sums[c], sum_dy_xhat = sums[channels + c];
    for (std::size_t n = 0; n < x.shape.n; ++n)
      for (std::size_t j = 0; j < area; ++j) {
        const double g = (&dy(n, c))[j];
        const double xhat = ((&x(n, c))[j] - mean[c]) * inv_std[c];
        const double d = batch_statistics
                             ? gamma * inv_std[c] * (g - sum_dy / double(m) - xhat * sum_dy_xhat / double(m))
                             : gamma * inv_std[c] * g;
        store(&dx(n, c), j, d, accumulate);
      }
  }
}

// ---- relu, sigmoid (element-wise; backward from the output) -------------------

inline void relu_forward(ConstTensorView x, TensorView y) {
  for (std::size_t j = 0; j < y.size(); ++j) y.data[j] = x.data[j] > 0.f ? x.data[j] : 0.f;
}
inline void relu_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool accumulate) {
  for (std::size_t j = 0; j < dy.size(); ++j) store(dx.data, j, y.data[j] > 0.f ? dy.data[j] : 0.f, accumulate);
}

inline void sigmoid_forward(ConstTensorView x, TensorView y) {
  for (std::size_t j = 0; j < y.size(); ++j) y.data[j] = static_cast<float>(1.0 / (1.0 + std::exp(-double(x.data[j]))));
}
inline void sigmoid_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool accumulate) {
  for (std::size_t j = 0; j < dy.size(); ++j)
    store(dx.data, j, double(dy.data[j]) * y.data[j] * (1.0 - y.data[j]), accumulate);
}

// ---- softmax (over channels at every pixel) ---------------------------------

inline void softmax_forward(ConstTensorView x, TensorView y) {
  const std::size_t c = x.shape.c, area = x.shape.h * x.shape.w;
  for (std::size_t n = 0; n < x.shape.n; ++n)
    for (std::size_t j = 0; j < area; ++j) {
      const auto at = [&](std::size_t k) { return (n * c + k) * area + j; };
      double m = -std::numeric_limits<double>::infinity(), sum = 0;
      for (std::size_t k = 0; k < c; ++k) m = std::max<double>(m, x.data[at(k)]);
      for (std::size_t k = 0; k < c; ++k) sum += std::exp(x.data[at(k)] - m);
      for (std::size_t k = 0; k < c; ++k) y.data[at(k)] = static_cast<float>(std::exp(x.data[at(k)] - m) / sum);
    }
}
inline void softmax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool accumulate) {
  const std::size_t c = y.shape.c, area = y.shape.h * y.shape.w;
  for (std::size_t n = 0; n < y.shape.n; ++n)
    for (std::size_t j = 0; j < area; ++j) {
      const auto at = [&](std::size_t k) { return (n * c + k) * area + j; };
      double dot = 0;
      for (std::size_t k = 0; k < c; ++k) dot += double(dy.data[at(k)]) * y.data[at(k)];
      for (std::size_t k = 0; k < c; ++k) store(dx.data, at(k), y.data[at(k)] * (dy.data[at(k)] - dot), accumulate);
    }
}

// ---- max_pool (padding never wins; backward routes to the saved argmax) ------

// `argmax`, when given, receives the index within its input plane of each maximum.
inline void max_pool_forward(const Op& op, ConstTensorView in, TensorView out, std::uint32_t* argmax = nullptr) {
  const long ih = static_cast<long>(in.shape.h), iw = static_cast<long>(in.shape.w);
  std::size_t j = 0;
  for (std::size_t n = 0; n < out.shape.n; ++n)
    for (std::size_t c = 0; c < out.shape.c; ++c) {
      const float* plane = &in(n, c);
      for (std::size_t oy = 0; oy < out.shape.h; ++oy)
        for (std::size_t ox = 0; ox < out.shape.w; ++ox, ++j) {
          float m = -std::numeric_limits<float>::infinity();
          std::uint32_t at = 0;
          for (int ky = 0; ky < op.kernel; ++ky)
            for (int kx = 0; kx < op.kernel; ++kx) {
              const long y = static_cast<long>(oy) * op.stride + ky - op.padding;
              const long x = static_cast<long>(ox) * op.stride + kx - op.padding;
              if (y < 0 || y >= ih || x < 0 || x >= iw) continue;
              const auto flat = static_cast<std::uint32_t>(y * iw + x);
              if (plane[flat] > m) m = plane[flat], at = flat;
            }
          out.data[j] = m;
          if (argmax) argmax[j] = at;
        }
    }
}
inline void max_pool_backward(ConstTensorView dy, TensorView dx, bool accumulate, const std::uint32_t* argmax) {
  const std::size_t in_area = dx.shape.h * dx.shape.w, out_area = dy.shape.h * dy.shape.w;
  if (!accumulate) std::fill(dx.data, dx.data + dx.size(), 0.f);
  for (std::size_t plane = 0; plane < dy.shape.n * dy.shape.c; ++plane)
    for (std::size_t j = 0; j < out_area; ++j)
      dx.data[plane * in_area + argmax[plane * out_area + j]] += dy.data[plane * out_area + j];
}

// ---- global_avg_pool ----------------------------------------------------------

inline void global_avg_pool_forward(ConstTensorView in, TensorView out) {
  const std::size_t area = in.shape.h * in.shape.w;
  for (std::size_t nc = 0; nc < in.shape.n * in.shape.c; ++nc) {
    double sum = 0;
    for (std::size_t j = 0; j < area; ++j) sum += in.data[nc * area + j];
    out.data[nc] = static_cast<float>(sum / double(area));
  }
}
inline void global_avg_pool_backward(ConstTensorView dy, TensorView dx, bool accumulate) {
  const std::size_t area = dx.shape.h * dx.shape.w;
  for (std::size_t nc = 0; nc < dx.shape.n * dx.shape.c; ++nc)
    for (std::size_t j = 0; j < area; ++j) store(dx.data, nc * area + j, double(dy.data[nc]) / double(area), accumulate);
}

// ---- linear (W is [out, in] row-major) ---------------------------------------

inline void linear_forward(const Op& op, ConstTensorView in, TensorView out, const float* params) {
  const float* w = params + op.weight;
  const std::size_t features = in.shape.per_item(), outs = static_cast<std::size_t>(op.out_channels);
  for (std::size_t n = 0; n < in.shape.n; ++n)
    for (std::size_t o = 0; o < outs; ++o) {
      double acc = op.bias == no_param ? 0.0 : params[op.bias + o];
      for (std::size_t i = 0; i < features; ++i) acc += double(w[o * features + i]) * in.data[n * features + i];
      out.data[n * outs + o] = static_cast<float>(acc);
    }
}
inline void linear_backward_data(const Op& op, ConstTensorView dy, TensorView dx, bool accumulate, const float* params) {
  const float* w = params + op.weight;
  const std::size_t features = dx.shape.per_item(), outs = static_cast<std::size_t>(op.out_channels);
  for (std::size_t n = 0; n < dx.shape.n; ++n)
    for (std::size_t i = 0; i < features; ++i) {
      double acc = 0;
      for (std::size_t o = 0; o < outs; ++o) acc += double(dy.data[n * outs + o]) * w[o * features + i];
      store(dx.data, n * features + i, acc, accumulate);
    }
}
inline void linear_backward_weights(const Op& op, ConstTensorView x, ConstTensorView dy, float* grads) {
  const std::size_t features = x.shape.per_item(), outs = static_cast<std::size_t>(op.out_channels);
  for (std::size_t o = 0; o < outs; ++o) {
    double bias = 0;
    for (std::size_t n = 0; n < x.shape.n; ++n) bias += dy.data[n * outs + o];
    if (op.bias != no_param) grads[op.bias + o] += static_cast<float>(bias);
    for (std::size_t i = 0; i < features; ++i) {
      double acc = 0;
      for (std::size_t n = 0; n < x.shape.n; ++n) acc += double(dy.data[n * outs + o]) * x.data[n * features + i];
      grads[op.weight + o * features + i] += static_cast<float>(acc);
    }
  }
}

// ---- dropout (identity at inference; training scales kept values by 1/(1-p)) --

inline void dropout_train_forward(const Op& op, ConstTensorView x, TensorView y, SplitMix64& rng, float* mask) {
  const double keep = 1.0 - op.dropout_p;
  for (std::size_t j = 0; j < y.size(); ++j) {
    mask[j] = rng.uniform() < keep ? static_cast<float>(1.0 / keep) : 0.f;
    y.data[j] = x.data[j] * mask[j];
  }
}
inline void dropout_backward(ConstTensorView dy, TensorView dx, bool accumulate, const float* mask) {
  for (std::size_t j = 0; j < dy.size(); ++j) store(dx.data, j, mask ? dy.data[j] * mask[j] : dy.data[j], accumulate);
}

// ---- pad_shortcut (CIFAR option A: subsample, zero channels on both sides) -----

inline void pad_shortcut_forward(const Op& op, ConstTensorView x, TensorView y) {
  const std::size_t offset = static_cast<std::size_t>(op.out_channels - op.in_channels) / 2, s = static_cast<std::size_t>(op.stride);
  std::fill(y.data, y.data + y.size(), 0.f);
  for (std::size_t n = 0; n < y.shape.n; ++n)
    for (std::size_t c = 0; c < x.shape.c; ++c)
      for (std::size_t yy = 0; yy < y.shape.h; ++yy)
        for (std::size_t xx = 0; xx < y.shape.w; ++xx) y(n, c + offset, yy, xx) = x(n, c, yy * s, xx * s);
}
inline void pad_shortcut_backward(const Op& op, ConstTensorView dy, TensorView dx, bool accumulate) {
  const std::size_t offset = static_cast<std::size_t>(op.out_channels - op.in_channels) / 2, s = static_cast<std::size_t>(op.stride);
  if (!accumulate) std::fill(dx.data, dx.data + dx.size(), 0.f);
  for (std::size_t n = 0; n < dy.shape.n; ++n)
    for (std::size_t c = 0; c < dx.shape.c; ++c)
      for (std::size_t yy = 0; yy < dy.shape.h; ++yy)
        for (std::size_t xx = 0; xx < dy.shape.w; ++xx) dx(n, c, yy * s, xx * s) += dy(n, c + offset, yy, xx);
}

// ---- add (y = x + residual; both inputs receive dy) ---------------------------

inline void add_forward(ConstTensorView x, ConstTensorView r, TensorView y) {
  for (std::size_t j = 0; j < y.size(); ++j) y.data[j] = x.data[j] + r.data[j];
}
inline void pass_gradient(ConstTensorView dy, TensorView dx, bool accumulate) {
  if (dx.data == dy.data) return;  // in place: already there
  for (std::size_t j = 0; j < dy.size(); ++j) store(dx.data, j, dy.data[j], accumulate);
}

}  // namespace ctnn::backend::reference_ops

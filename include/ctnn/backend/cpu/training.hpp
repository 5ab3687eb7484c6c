// The CPU backend's training kernels and executor (Backend<Arch>::TrainingExecutor).
//
// Values stay NCHW between ops (the tape and the skeleton are
// train/tape_executor.hpp's). A dense convolution whose channels fill vector
// blocks runs forward, and a "same" stride-1 one also backward-data, on the
// inference backend's direct kernels in the blocked layout (direct_conv),
// unless its map is too small for their one-row register tiles; on large
// maps its weight gradient comes from that layout too (weight_tile).
// Everything else is a matrix product (gemm.hpp):
//   forward          Y_g  = W_g   x col(X_g)              per stack of images and group
//   backward-data    dX_g = col2im(W_g^T x dY_g)          per stack of images and group
//   backward-weights dW_g += dY_g x col(X_g)^T            per chunk of images
// where a stack is one image, or on small maps several side by side as the
// product's columns (stacked_products). 1x1 stride-1 convolutions read the
// activation itself as the column matrix. Work is split over images (and
// BatchNorm over channels) with the backend's thread pool. The weight
// gradient is reduced over a fixed number of image chunks, each summed in
// image order and the chunks added in chunk order, so results are bitwise
// the same for any thread count.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "ctnn/backend/cpu/conv.hpp"
#include "ctnn/backend/cpu/cpu.hpp"
#include "ctnn/backend/cpu/gemm.hpp"
#include "ctnn/backend/cpu/layout.hpp"
#include "ctnn/backend/cpu/thread_pool.hpp"
#include "ctnn/core/init.hpp"
#include "ctnn/core/tensor.hpp"
#include "ctnn/train/tape_executor.hpp"

namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

template <class Arch>
class TrainingKernels {
  using G = Gemm<Arch>;
  using S = simd<Arch>;
  using vec = typename S::vec;
  static constexpr std::size_t W = static_cast<std::size_t>(S::width);
  static constexpr std::size_t weight_chunks = 8;  // fixed: results must not depend on the thread count

 public:
  using Memory = train::HostMemory;

  TrainingKernels() : threads_(thread_count()), pool_(std::make_unique<ThreadPool>(threads_)) {}

  void reserve(const Program& p, const train::Tape& t, std::span<const Extents> e) {
    std::size_t col = 0, gemm = 0, weights = 0, blocked_in = 0, blocked_out = 0, packed = 0, flipped = 0, gathered = 0;
    for (const train::TapeOp& to : t.ops) {
      const Op& op = p.ops[to.op];
      const Extents& in = e[static_cast<std::size_t>(to.in)];
      const Extents& out = e[static_cast<std::size_t>(to.out)];
      if (op.kind == OpKind::conv || op.kind == OpKind::grouped_conv) {
        const Geometry g(op, in, out);
        const std::size_t columns = stacked_images(g, in.n) * g.pixels;
        col = std::max({col, g.column_floats(), g.k * columns, g.cout * columns});
        const WeightPlan wp = plan_weights(g, in.n);
        gemm = std::max({gemm, G::scratch_floats(g.cout, columns, g.k), G::scratch_floats(g.k, columns, g.cout),
                         G::scratch_floats(g.cout, std::min(wp.block, g.k), wp.group * g.pixels)});
        gathered = std::max(gathered, gather_floats(g, wp));
        weights = std::max(weights, weight_floats(op) + static_cast<std::size_t>(op.out_channels));
        if (direct(g)) {  // forward, and the input gradient of a "same" stride-1 conv
          blocked_in = std::max({blocked_in, item_floats(g.in_channels, in, g.padding, op.stride, op.kernel),
                                 item_floats(g.out_channels, out, g.padding, 1, op.kernel)});
          blocked_out = std::max({blocked_out, item_floats(g.out_channels, out, 0, 1, 0),
                                  item_floats(g.in_channels, in, 0, 1, 0)});
          packed = std::max({packed, packed_floats(g.in_channels, g.out_channels, g.kernel),
                             packed_floats(g.out_channels, g.in_channels, g.kernel)});
          flipped = std::max(flipped, weight_floats(op));
        }
      } else if (op.kind == OpKind::linear) {
        const std::size_t n = in.n, f = in.per_item(), o = static_cast<std::size_t>(op.out_channels);
        gemm = std::max({gemm, G::scratch_floats(n, o, f), G::scratch_floats(o, f, n), G::scratch_floats(n, f, o)});
      }
    }
    scratch_floats_ = aligned_floats(col) + aligned_floats(gemm);
    if (scratch_.size() < static_cast<std::size_t>(threads_) * scratch_floats_)
      scratch_.resize(static_cast<std::size_t>(threads_) * scratch_floats_);
    gather_floats_ = aligned_floats(gathered);
    gather_.reserve(static_cast<std::size_t>(threads_) * gather_floats_);
    chunk_floats_ = aligned_floats(weights);
    if (partials_.size() < weight_chunks * chunk_floats_) partials_.resize(weight_chunks * chunk_floats_);
    blocked_item_floats_ = {blocked_in, blocked_out};
    blocked_in_.reserve(static_cast<std::size_t>(threads_) * blocked_in);
    blocked_out_.reserve(static_cast<std::size_t>(threads_) * blocked_out);
    packed_.reserve(packed);
    flipped_.reserve(flipped);
  }

  // ---- conv and grouped_conv ----------------------------------------------------

  void conv_forward(const Op& op, ConstTensorView x, TensorView y, const float* params) {
    const Geometry g(op, x.shape, y.shape);
    if (direct(g) && !small_map(g))
      return direct_conv(x, params + op.weight, op.bias != no_param ? params + op.bias : nullptr, g.in_channels,
                         g.out_channels, g, y, false);
    const float* bias = op.bias != no_param ? params + op.bias : nullptr;
    stacked_products(g, x.shape.n, g.cout, 1, [&](const StackTask& t, float* temp, float* gs) {
      const std::size_t columns = t.count * g.pixels;
      const MatrixView w{params + op.weight + (t.group * g.cout + t.row0) * g.k, g.k};
      float* first = y.data + (t.image0 * g.out_channels + t.group * g.cout + t.row0) * g.pixels;
      const bool in_place = t.count == 1;  // one image: the product's rows are y's channel planes
      float* c = in_place ? first : temp;
      if (in_place)  // the image's column matrix (or, pointwise, the image itself), in `temp`
        G::run(t.rows, columns, g.k, w, this->columns(g, x, t.image0, t.group, temp), c, columns, false, gs);
      else
        G::run(t.rows, columns, g.k, w, StackedColumns{g, x.data, t.image0, t.group}, c, columns, false, gs);
      if (in_place && !bias) return;
      // Rows to each image's channel planes, plus the bias.
      for (std::size_t i = 0; i < t.count; ++i)
        for (std::size_t r = 0; r < t.rows; ++r) {
          const float b = bias ? bias[t.group * g.cout + t.row0 + r] : 0.f;
          map(first + i * g.out_channels * g.pixels + r * g.pixels, g.pixels, false, [b](auto v) { return v + b; },
              c + r * columns + i * g.pixels);
        }
    });
  }

  void conv_backward(const Op& op, ConstTensorView x, ConstTensorView dy, TensorView dx, bool accumulate,
                     const float* params, float* grads) {
    const Geometry g(op, x.shape, dy.shape);
    weight_gradient(op, g, x, dy, grads);
    const std::size_t taps = g.kernel * g.kernel;
    if (!dx.data) return;
    if (direct(g) && !small_map(g) && g.stride == 1 && 2 * g.padding + 1 == g.kernel) {
      // A "same" stride-1 convolution's input gradient is the forward
      // convolution of dY with the weights flipped in space and transposed in
      // channels: the direct kernels again, with no column matrix or col2im.
      float* flipped = flipped_.data();
      for (std::size_t o = 0; o < g.out_channels; ++o)
        for (std::size_t i = 0; i < g.in_channels; ++i)
          for (std::size_t t = 0; t < taps; ++t)
            flipped[(i * g.out_channels + o) * taps + (taps - 1 - t)] =
                params[op.weight + (o * g.in_channels + i) * taps + t];
      return direct_conv(dy, flipped, nullptr, g.out_channels, g.in_channels, g, dx, accumulate);
    }
    // Input gradient: dcol = W_g^T x dY_g over stacked images, folded back by
    // col2im. Rows come in whole input channels (`taps` rows each), so every
    // input plane is folded by exactly one task, in a fixed order.
    stacked_products(g, x.shape.n, g.k, taps, [&](const StackTask& t, float* temp, float* gs) {
      const std::size_t columns = t.count * g.pixels, c0 = t.row0 / taps, channels = t.rows / taps;
      const MatrixView wt{params + op.weight + t.group * g.cout * g.k + t.row0, g.k, true};
      float* dst = dx.data + (t.image0 * g.in_channels + t.group * g.cin + c0) * g.in_area;
      if (t.count == 1) {
        const MatrixView grad{dy.data + (t.image0 * g.out_channels + t.group * g.cout) * g.pixels, g.pixels};
        if (g.pointwise) return G::run(t.rows, columns, g.cout, wt, grad, dst, g.pixels, accumulate, gs);
        G::run(t.rows, columns, g.cout, wt, grad, temp, columns, false, gs);
      } else {
        G::run(t.rows, columns, g.cout, wt, StackedGradients{g, dy.data, t.image0, t.group}, temp, columns, false, gs);
      }
      for (std::size_t i = 0; i < t.count; ++i)
        col2im(g, temp + i * g.pixels, columns, channels, dst + i * g.in_channels * g.in_area, accumulate);
    });
  }

  // ---- linear (W is [out, in]) --------------------------------------------------

  void linear_forward(const Op& op, ConstTensorView x, TensorView y, const float* params) {
    const std::size_t n = x.shape.n, f = x.shape.per_item(), o = static_cast<std::size_t>(op.out_channels);
    G::run(n, o, f, {x.data, f}, {params + op.weight, f, true}, y.data, o, false, scratch(0));
    if (op.bias != no_param)
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < o; ++j) y.data[i * o + j] += params[op.bias + j];
  }

  void linear_backward(const Op& op, ConstTensorView x, ConstTensorView dy, TensorView dx, bool accumulate,
                       const float* params, float* grads) {
    const std::size_t n = x.shape.n, f = x.shape.per_item(), o = static_cast<std::size_t>(op.out_channels);
    G::run(o, f, n, {dy.data, o, true}, {x.data, f}, grads + op.weight, f, true, scratch(0));
    if (op.bias != no_param)
      for (std::size_t j = 0; j < o; ++j) {
        float sum = 0;
        for (std::size_t i = 0; i < n; ++i) sum += dy.data[i * o + j];
        grads[op.bias + j] += sum;
      }
    if (dx.data) G::run(n, f, o, {dy.data, o}, {params + op.weight, f}, dx.data, f, accumulate, scratch(0));
  }

  // ---- batch_norm (per channel; statistics in double over float plane sums) -----
  // `saved`: [0, C) means, [C, 2C) 1/std, [2C, 4C) scratch; with `sync`
  // (synchronised BatchNorm) the channel sums are summed over processes
  // between the passes. Each pass is parallel over channels.

  void batch_norm_forward(const Op& op, ConstTensorView x, TensorView y, float* params, bool batch, double factor,
                          double* saved, train::StatisticsReduction* sync) {
    const std::size_t area = x.shape.h * x.shape.w, channels = x.shape.c;
    const std::size_t m = x.shape.n * area * (sync ? sync->processes() : 1);
    double* mean = saved;
    double* inv_std = saved + channels;
    double* sums = saved + 2 * channels;  // [sum x | sum x^2]
    const long cs = static_cast<long>(channels);
    if (batch) {
      // The statistics in one pass over x: each plane's sum, then (from L1)
      // its squares around its own mean, m_p; sum x^2 = sum (x - m_p)^2 +
      // 2 m_p sum x - area m_p^2 exactly, so float rounding enters only
      // through deviations from a nearby mean, never through x^2 against mean^2.
      parallel()(cs, [&](long ch, int) {
        const auto c = static_cast<std::size_t>(ch);
        double sum = 0, squares = 0;
        for (std::size_t n = 0; n < x.shape.n; ++n) {
          const float* plane = &x(n, c);
          const double s = plane_sum(plane, area);
          const float mp = static_cast<float>(s / double(area));
          squares += plane_squares(plane, area, mp) + 2.0 * mp * s - double(area) * mp * mp;
          sum += s;
        }
        sums[c] = sum;
        sums[channels + c] = squares;
      });
      if (sync) sync->sum({sums, 2 * channels});
      for (std::size_t c = 0; c < channels; ++c) mean[c] = sums[c] / double(m);
    }
    parallel()(cs, [&](long ch, int) {
      const auto c = static_cast<std::size_t>(ch);
      double var = params[op.running_var + c];
      if (batch) {
        const double deviations = std::max(0.0, sums[channels + c] - double(m) * mean[c] * mean[c]);
        var = deviations / double(m);
        const double unbiased = m > 1 ? deviations / double(m - 1) : var;
        params[op.running_mean + c] = static_cast<float>((1 - factor) * params[op.running_mean + c] + factor * mean[c]);
        params[op.running_var + c] = static_cast<float>((1 - factor) * params[op.running_var + c] + factor * unbiased);
      } else {
        mean[c] = params[op.running_mean + c];
      }
      inv_std[c] = 1.0 / std::sqrt(var + double(op.eps));
      const float scale = static_cast<float>(inv_std[c] * params[op.weight + c]);
      const float shift = static_cast<float>(params[op.bias + c] - mean[c] * inv_std[c] * params[op.weight + c]);
      for (std::size_t n = 0; n < x.shape.n; ++n)
        map(&y(n, c), area, false, [scale, shift](auto v) { return v * scale + shift; }, &x(n, c));
    });
  }

  void batch_norm_backward(const Op& op, ConstTensorView x, ConstTensorView dy, TensorView dx, bool accumulate,
                           const float* params, float* grads, bool batch, double* saved,
                           train::StatisticsReduction* sync) {
    const std::size_t area = x.shape.h * x.shape.w, channels = x.shape.c;
    const std::size_t m = x.shape.n * area * (sync && batch ? sync->processes() : 1);
    const double* mean = saved;
    const double* inv_std = saved + channels;
    double* sums = saved + 2 * channels;  // [sum dy | sum dy * xhat]
    const long cs = static_cast<long>(channels);
    parallel()(cs, [&](long ch, int) {
      const auto c = static_cast<std::size_t>(ch);
      double sum_dy = 0, sum_dy_x = 0;  // sum dy * xhat = (sum dy * x - mean * sum dy) * inv_std
      const float mu = static_cast<float>(mean[c]);
      for (std::size_t n = 0; n < x.shape.n; ++n) {
        sum_dy += sum(area, [](auto g) { return g; }, &dy(n, c));
        sum_dy_x += sum(area, [mu](auto g, auto v) { return g * (v - mu); }, &dy(n, c), &x(n, c));
      }
      const double sum_dy_xhat = sum_dy_x * inv_std[c];
      grads[op.weight + c] += static_cast<float>(sum_dy_xhat);  // this process's: the exchange averages them
      grads[op.bias + c] += static_cast<float>(sum_dy);
      sums[c] = sum_dy;
      sums[channels + c] = sum_dy_xhat;
    });
    if (!dx.data) return;
    if (sync && batch) sync->sum({sums, 2 * channels});
    parallel()(cs, [&](long ch, int) {
      const auto c = static_cast<std::size_t>(ch);
      // dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)) = a * dy + b * x + d
      const double k = params[op.weight + c] * inv_std[c];
      const double a = k, b = batch ? -k * inv_std[c] * sums[channels + c] / double(m) : 0.0;
      const double d = batch ? -k * sums[c] / double(m) - b * mean[c] : 0.0;
      const float fa = static_cast<float>(a), fb = static_cast<float>(b), fd = static_cast<float>(d);
      for (std::size_t n = 0; n < x.shape.n; ++n)
        map(&dx(n, c), area, accumulate, [fa, fb, fd](auto g, auto v) { return fa * g + fb * v + fd; }, &dy(n, c),
            &x(n, c));
    });
  }

  // ---- element-wise ---------------------------------------------------------------

  void relu_forward(ConstTensorView x, TensorView y) {
    per_image(x.shape, [&](std::size_t b, std::size_t e) {
      map(y.data + b, e - b, false, [](auto v) { return S::where_positive(v, v); }, x.data + b);
    });
  }
  void relu_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool acc) {
    per_image(y.shape, [&](std::size_t b, std::size_t e) {
      map(dx.data + b, e - b, acc, [](auto out, auto g) { return S::where_positive(out, g); }, y.data + b,
          dy.data + b);
    });
  }
  void add_forward(ConstTensorView x, ConstTensorView r, TensorView y) {
    per_image(x.shape, [&](std::size_t b, std::size_t e) {
      map(y.data + b, e - b, false, [](auto u, auto v) { return u + v; }, x.data + b, r.data + b);
    });
  }
  void pass_gradient(ConstTensorView dy, TensorView dx, bool acc) {
    if (dx.data == dy.data) return;  // in place: already there
    per_image(dy.shape, [&](std::size_t b, std::size_t e) {
      map(dx.data + b, e - b, acc, [](auto g) { return g; }, dy.data + b);
    });
  }
  // CIFAR option A: y[:, c + offset] = x[:, c, ::s, ::s], zero elsewhere.
  void pad_shortcut_forward(const Op& op, ConstTensorView x, TensorView y) {
    const std::size_t offset = static_cast<std::size_t>(op.out_channels - op.in_channels) / 2;
    const std::size_t s = static_cast<std::size_t>(op.stride), oh = y.shape.h, ow = y.shape.w;
    per_image(y.shape, [&](std::size_t b, std::size_t) {
      const std::size_t n = b / y.shape.per_item();
      float* out = y.data + b;
      std::fill_n(out, y.shape.per_item(), 0.f);
      for (std::size_t c = 0; c < x.shape.c; ++c) {
        const float* in = &x(n, c);
        float* dst = out + (c + offset) * oh * ow;
        for (std::size_t yy = 0; yy < oh; ++yy)
          for (std::size_t xx = 0; xx < ow; ++xx) dst[yy * ow + xx] = in[yy * s * x.shape.w + xx * s];
      }
    });
  }
  void pad_shortcut_backward(const Op& op, ConstTensorView dy, TensorView dx, bool acc) {
    const std::size_t offset = static_cast<std::size_t>(op.out_channels - op.in_channels) / 2;
    const std::size_t s = static_cast<std::size_t>(op.stride), oh = dy.shape.h, ow = dy.shape.w;
    per_image(dx.shape, [&](std::size_t b, std::size_t) {
      const std::size_t n = b / dx.shape.per_item();
      float* out = dx.data + b;
      if (!acc) std::fill_n(out, dx.shape.per_item(), 0.f);
      for (std::size_t c = 0; c < dx.shape.c; ++c) {
        const float* g = &dy(n, c + offset);
        float* dst = out + c * dx.shape.h * dx.shape.w;
        for (std::size_t yy = 0; yy < oh; ++yy)
          for (std::size_t xx = 0; xx < ow; ++xx) dst[yy * s * dx.shape.w + xx * s] += g[yy * ow + xx];
      }
    });
  }
  void sigmoid_forward(ConstTensorView x, TensorView y) {
    for (std::size_t j = 0; j < y.size(); ++j) y.data[j] = 1.f / (1.f + std::exp(-x.data[j]));
  }
  void sigmoid_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool acc) {
    map(dx.data, dy.size(), acc, [](auto out, auto g) { return g * out * (1.f - out); }, y.data, dy.data);
  }
  void softmax_forward(ConstTensorView x, TensorView y) {
    const std::size_t c = x.shape.c, area = x.shape.h * x.shape.w;
    for (std::size_t n = 0; n < x.shape.n; ++n)
      for (std::size_t j = 0; j < area; ++j) {
        const auto at = [&](std::size_t k) { return (n * c + k) * area + j; };
        float m = -std::numeric_limits<float>::infinity(), sum = 0;
        for (std::size_t k = 0; k < c; ++k) m = std::max(m, x.data[at(k)]);
        for (std::size_t k = 0; k < c; ++k) sum += std::exp(x.data[at(k)] - m);
        for (std::size_t k = 0; k < c; ++k) y.data[at(k)] = std::exp(x.data[at(k)] - m) / sum;
      }
  }
  void softmax_backward(ConstTensorView y, ConstTensorView dy, TensorView dx, bool acc) {
    const std::size_t c = y.shape.c, area = y.shape.h * y.shape.w;
    for (std::size_t n = 0; n < y.shape.n; ++n)
      for (std::size_t j = 0; j < area; ++j) {
        const auto at = [&](std::size_t k) { return (n * c + k) * area + j; };
        float dot = 0;
        for (std::size_t k = 0; k < c; ++k) dot += dy.data[at(k)] * y.data[at(k)];
        for (std::size_t k = 0; k < c; ++k) store(dx.data, at(k), y.data[at(k)] * (dy.data[at(k)] - dot), acc);
      }
  }

  // ---- pooling and dropout ------------------------------------------------------------

  void max_pool_forward(const Op& op, ConstTensorView x, TensorView y, std::uint32_t* argmax) {
    const long ih = static_cast<long>(x.shape.h), iw = static_cast<long>(x.shape.w);
    const std::size_t out_area = y.shape.h * y.shape.w;
    parallel()(static_cast<long>(y.shape.n * y.shape.c), [&](long p, int) {
      const float* plane = x.data + static_cast<std::size_t>(p) * x.shape.h * x.shape.w;
      std::size_t j = static_cast<std::size_t>(p) * out_area;
      for (std::size_t oy = 0; oy < y.shape.h; ++oy)
        for (std::size_t ox = 0; ox < y.shape.w; ++ox, ++j) {
          float m = -std::numeric_limits<float>::infinity();
          std::uint32_t at = 0;
          for (int ky = 0; ky < op.kernel; ++ky) {
            const long yy = static_cast<long>(oy) * op.stride + ky - op.padding;
            if (yy < 0 || yy >= ih) continue;
            for (int kx = 0; kx < op.kernel; ++kx) {
              const long xx = static_cast<long>(ox) * op.stride + kx - op.padding;
              if (xx < 0 || xx >= iw) continue;
              const auto flat = static_cast<std::uint32_t>(yy * iw + xx);
              if (plane[flat] > m) m = plane[flat], at = flat;
            }
          }
          y.data[j] = m;
          argmax[j] = at;
        }
    });
  }
  void max_pool_backward(const Op&, ConstTensorView dy, TensorView dx, bool acc, const std::uint32_t* argmax) {
    const std::size_t in_area = dx.shape.h * dx.shape.w, out_area = dy.shape.h * dy.shape.w;
    parallel()(static_cast<long>(dy.shape.n * dy.shape.c), [&](long p, int) {
      float* plane = dx.data + static_cast<std::size_t>(p) * in_area;
      if (!acc) std::fill_n(plane, in_area, 0.f);
      const std::size_t base = static_cast<std::size_t>(p) * out_area;
      for (std::size_t j = 0; j < out_area; ++j) plane[argmax[base + j]] += dy.data[base + j];
    });
  }
  void global_avg_pool_forward(ConstTensorView x, TensorView y) {
    const std::size_t area = x.shape.h * x.shape.w;
    for (std::size_t p = 0; p < x.shape.n * x.shape.c; ++p)
      y.data[p] = static_cast<float>(plane_sum(x.data + p * area, area) / double(area));
  }
  void global_avg_pool_backward(ConstTensorView dy, TensorView dx, bool acc) {
    const std::size_t area = dx.shape.h * dx.shape.w;
    const float inv = 1.f / static_cast<float>(area);
    for (std::size_t p = 0; p < dx.shape.n * dx.shape.c; ++p)
      for (std::size_t j = 0; j < area; ++j) store(dx.data, p * area + j, dy.data[p] * inv, acc);
  }
  void dropout_forward(const Op& op, ConstTensorView x, TensorView y, SplitMix64& rng, float* mask) {
    const double keep = 1.0 - op.dropout_p;
    const float scale = static_cast<float>(1.0 / keep);
    for (std::size_t j = 0; j < y.size(); ++j) {
      mask[j] = rng.uniform() < keep ? scale : 0.f;
      y.data[j] = x.data[j] * mask[j];
    }
  }
  void dropout_backward(ConstTensorView dy, TensorView dx, bool acc, const float* mask) {
    if (mask)
      map(dx.data, dy.size(), acc, [](auto g, auto keep) { return g * keep; }, dy.data, mask);
    else
      map(dx.data, dy.size(), acc, [](auto g) { return g; }, dy.data);
  }

  // The optimiser's rule over the trainable ranges, split into fixed pieces
  // across threads (each parameter's update is independent).
  template <class O>
  void apply(const O& optimizer, const std::vector<train::TrainableRange>& ranges, float* params, const float* grads,
             float* state, double gradient_scale) {
    constexpr std::size_t piece = 16384;
    for (const train::TrainableRange& r : ranges) {
      const long pieces = static_cast<long>((r.size + piece - 1) / piece);
      parallel().at_least(r.size, piece)(pieces, [&](long t, int) {
        const std::size_t first = r.offset + static_cast<std::size_t>(t) * piece;
        train::update_range(optimizer, r, first, std::min(r.offset + r.size, first + piece), params, grads, state,
                            gradient_scale);
      });
    }
  }

 private:
  // A conv as matrix products: k = (in/groups) * kernel^2 rows of columns, `pixels` columns.
  struct Geometry {
    std::size_t in_channels, out_channels, groups, cin, cout, kernel, stride, padding;
    std::size_t h, w, oh, ow, in_area, pixels, k;
    bool pointwise;
    // The weight gradient reads channels-last copies of the input, vector by
    // vector, when a vector of K never crosses taps (see TapMajorColumns).
    bool tap_major;
    Geometry(const Op& op, Extents in, Extents out)
        : in_channels(static_cast<std::size_t>(op.in_channels)), out_channels(static_cast<std::size_t>(op.out_channels)),
          groups(static_cast<std::size_t>(op.groups)), cin(in_channels / groups), cout(out_channels / groups),
          kernel(static_cast<std::size_t>(op.kernel)), stride(static_cast<std::size_t>(op.stride)),
          padding(static_cast<std::size_t>(op.padding)), h(in.h), w(in.w), oh(out.h), ow(out.w), in_area(in.h * in.w),
          pixels(out.h * out.w), k(cin * kernel * kernel), pointwise(kernel == 1 && stride == 1 && padding == 0),
          tap_major(!pointwise && cin % W == 0) {}
    // Per-thread room for the column matrix, or for the channels-last input copy.
    std::size_t column_floats() const { return std::max(k * pixels, cin * in_area); }
  };

  // B = col(X)^T of the weight gradient, packed for Gemm straight from a
  // channels-last image (`hwc`: in_area x cin): rows are output pixels,
  // columns the K index in (tap, channel) order, so W consecutive columns are
  // W consecutive channels of one input pixel, one vector load (or zeros in
  // the padding). The transposition the NCHW columns would need is done once
  // on the input instead of on the kernel^2 times larger column matrix.
  struct TapMajorColumns {
    const Geometry& g;
    const float* hwc;        // images after one another, each in_area x cin
    std::size_t first = 0;   // the K index of column 0
    void operator()(std::size_t p0, std::size_t pc, std::size_t n, float* dst) const {
      constexpr std::size_t NR = static_cast<std::size_t>(G::NR);
      const long pad = static_cast<long>(g.padding), s = static_cast<long>(g.stride);
      const long ih = static_cast<long>(g.h), iw = static_cast<long>(g.w);
      const std::size_t image_floats = g.in_area * g.cin;
      for (std::size_t j0 = 0; j0 < n; j0 += NR, dst += pc * NR)
        for (std::size_t half = 0; half < NR; half += W) {
          float* d = dst + half;
          if (j0 + half >= n) {
            for (std::size_t kk = 0; kk < pc; ++kk, d += NR) S::store_unaligned(d, S::zero());
            continue;
          }
          const std::size_t j = first + j0 + half;
          const std::size_t tap = j / g.cin, c0 = j % g.cin;
          const long ky = static_cast<long>(tap / g.kernel) - pad, kx = static_cast<long>(tap % g.kernel) - pad;
          const float* image = hwc + (p0 / g.pixels) * image_floats + c0;
          std::size_t oy = p0 % g.pixels / g.ow, ox = p0 % g.ow;
          for (std::size_t kk = 0; kk < pc; ++kk, d += NR) {
            const long iy = static_cast<long>(oy) * s + ky, ix = static_cast<long>(ox) * s + kx;
            const bool inside = iy >= 0 && iy < ih && ix >= 0 && ix < iw;
            S::store_unaligned(d, inside ? S::load_unaligned(image + static_cast<std::size_t>(iy * iw + ix) * g.cin)
                                         : S::zero());
            if (++ox == g.ow) {
              ox = 0;
              if (++oy == g.oh) oy = 0, image += image_floats;  // the next image's first pixel
            }
          }
        }
    }
  };

  // ---- products over stacked images (forward and input gradient) -----------
  // On small maps a product per image is only a few columns wide, so the
  // GEMM re-packs its whole weight operand for a handful of FMAs per
  // element. Images are therefore set side by side as the product's
  // columns (column j: pixel j % pixels of image j / pixels), until the
  // product is about 128 columns wide. For such stacks the packers below
  // fill Gemm's panels straight from the NCHW tensors; a product of one
  // image keeps the column matrix (im2col's row copies beat the packer there).

  // Maps where the direct kernels' one-row register tiles are mostly
  // padding. Measured per op (2 threads, AVX-512, forward / input gradient,
  // GFLOP/s direct vs stacked): 2x2 maps with 512 channels 97/80 vs 185/191,
  // 4x4 with 256 249/210 vs 210/193, 7x7 with 64 274/279 vs 119/162 (the
  // stacked im2col packer is scalar), so only maps under 16 pixels stack.
  static bool small_map(const Geometry& g) { return g.pixels < 16; }
  static std::size_t stacked_images(const Geometry& g, std::size_t images) {
    constexpr std::size_t columns = 128;
    return std::clamp<std::size_t>((columns + g.pixels - 1) / g.pixels, 1, std::max<std::size_t>(images, 1));
  }

  // One product: images [image0, image0 + count) of conv group `group`, rows [row0, row0 + rows).
  struct StackTask {
    std::size_t image0, count, group, row0, rows;
  };
  // Runs body(task, temp, gemm_scratch) over every stack of images, conv
  // group and block of rows. The product's `rows` are cut into blocks of
  // whole `unit`s (at least 64 rows) only to give every thread work: each
  // element is still summed by one call in Gemm's fixed order, so the cut
  // (which follows the thread count) does not change the results.
  template <class F>
  void stacked_products(const Geometry& g, std::size_t images, std::size_t rows, std::size_t unit, F&& body) {
    const std::size_t q = stacked_images(g, images), stacks = (images + q - 1) / q;
    const std::size_t products = stacks * g.groups, units = rows / unit;
    const std::size_t want = (2 * static_cast<std::size_t>(threads_) + products - 1) / products;
    const std::size_t blocks = std::clamp<std::size_t>(want, 1, std::max<std::size_t>(1, std::min(units, rows / 64)));
    parallel()(static_cast<long>(products * blocks), [&](long task, int thread) {
      const std::size_t b = static_cast<std::size_t>(task) % blocks, product = static_cast<std::size_t>(task) / blocks;
      const std::size_t stack = product / g.groups, u0 = b * units / blocks, u1 = (b + 1) * units / blocks;
      const StackTask t{stack * q, std::min(q, images - stack * q), product % g.groups, u0 * unit, (u1 - u0) * unit};
      float* temp = scratch(thread);
      body(t, temp, temp + aligned_floats(std::max(g.k, g.cout) * t.count * g.pixels));
    });
  }

  // Fills Gemm's B panels for rows [k0, k0 + kc) and columns [0, n):
  // columns(j0, cols) once per panel of NR columns, then row(r, d, cols)
  // writes the first `cols` entries of row r; the rest of the panel is zero.
  template <class Columns, class Row>
  static void fill_panels(std::size_t k0, std::size_t kc, std::size_t n, float* dst, Columns&& columns, Row&& row) {
    constexpr std::size_t NR = static_cast<std::size_t>(G::NR);
    for (std::size_t j0 = 0; j0 < n; j0 += NR, dst += kc * NR) {
      const std::size_t cols = std::min(NR, n - j0);
      columns(j0, cols);
      for (std::size_t kk = 0; kk < kc; ++kk) {
        float* d = dst + kk * NR;
        row(k0 + kk, d, cols);
        std::fill(d + cols, d + NR, 0.f);
      }
    }
  }

  // B of the forward product: row r is the input tap (channel, ky, kx) in
  // the weights' order, column j a pixel of one of the stacked images.
  struct StackedColumns {
    const Geometry& g;
    const float* x;
    std::size_t image0, group;
    void operator()(std::size_t k0, std::size_t kc, std::size_t n, float* dst) const {
      const long ih = static_cast<long>(g.h), iw = static_cast<long>(g.w);
      const std::size_t taps = g.kernel * g.kernel;
      std::array<std::size_t, G::NR> image{};
      std::array<long, G::NR> top{}, left{};
      fill_panels(
          k0, kc, n, dst,
          [&](std::size_t j0, std::size_t cols) {
            for (std::size_t jj = 0; jj < cols; ++jj) {
              const std::size_t j = j0 + jj, p = j % g.pixels;
              image[jj] = ((image0 + j / g.pixels) * g.in_channels + group * g.cin) * g.in_area;
              top[jj] = static_cast<long>((p / g.ow) * g.stride) - static_cast<long>(g.padding);
              left[jj] = static_cast<long>((p % g.ow) * g.stride) - static_cast<long>(g.padding);
            }
          },
          [&](std::size_t r, float* d, std::size_t cols) {
            const std::size_t tap = r % taps;
            const long ky = static_cast<long>(tap / g.kernel), kx = static_cast<long>(tap % g.kernel);
            const float* plane = x + (r / taps) * g.in_area;
            for (std::size_t jj = 0; jj < cols; ++jj) {
              const long iy = top[jj] + ky, ix = left[jj] + kx;
              d[jj] = iy >= 0 && iy < ih && ix >= 0 && ix < iw
                          ? plane[image[jj] + static_cast<std::size_t>(iy * iw + ix)]
                          : 0.f;
            }
          });
    }
  };

  // B of the input-gradient product: row o is output channel o of the conv
  // group, column j a pixel of one of the stacked images.
  struct StackedGradients {
    const Geometry& g;
    const float* dy;
    std::size_t image0, group;
    void operator()(std::size_t k0, std::size_t kc, std::size_t n, float* dst) const {
      std::array<std::size_t, G::NR> at{};
      fill_panels(
          k0, kc, n, dst,
          [&](std::size_t j0, std::size_t cols) {
            for (std::size_t jj = 0; jj < cols; ++jj) {
              const std::size_t j = j0 + jj;
              at[jj] = ((image0 + j / g.pixels) * g.out_channels + group * g.cout) * g.pixels + j % g.pixels;
            }
          },
          [&](std::size_t o, float* d, std::size_t cols) {
            const float* plane = dy + o * g.pixels;
            for (std::size_t jj = 0; jj < cols; ++jj) d[jj] = plane[at[jj]];
          });
    }
  };

  // Weight and bias gradients, dW = sum over images of dY x col(X)^T: a GEMM
  // with the images' pixels as its depth. The batch is cut into `chunks`
  // (partial sums, added in chunk order) and dW's columns into blocks; each
  // (chunk, block) is one task, so a small-map layer with a large filter bank
  // still has parallel work without more partials to add. Images are
  // gathered into one GEMM until it is `depth` deep (a 2x2 map would
  // otherwise give 4-deep products that re-read the whole dW each). Every
  // choice depends on the shape only: the same bits for any thread count.
  struct WeightPlan {
    std::size_t chunks, group, block, blocks;
  };
  static WeightPlan plan_weights(const Geometry& g, std::size_t images) {
    constexpr std::size_t pixels_per_chunk = 1024, depth = 256, tasks = 8, narrowest = 128;
    const std::size_t chunks = std::clamp<std::size_t>(images * g.pixels / pixels_per_chunk, 1, std::min(weight_chunks, images));
    const bool gathers = g.tap_major || g.pointwise;  // the layouts that can stack images along the depth
    const std::size_t group = gathers ? std::clamp<std::size_t>((depth + g.pixels - 1) / g.pixels, 1, (images + chunks - 1) / chunks) : 1;
    // Column blocks only where the chunks alone leave too few tasks, none narrower than `narrowest`.
    const std::size_t want = chunks >= tasks ? 1 : std::min((g.k + narrowest - 1) / narrowest, (tasks + chunks - 1) / chunks);
    const std::size_t nr = static_cast<std::size_t>(G::NR);
    const std::size_t block = ((g.k + want - 1) / want + nr - 1) / nr * nr;
    return {chunks, group, block, (g.k + block - 1) / block};
  }
  // Per-thread floats of the gathered operands: dY rows, and the input (channels last, or NCHW rows if pointwise).
  static std::size_t gather_floats(const Geometry& g, const WeightPlan& w) {
    if (w.group == 1 && !g.tap_major) return 0;
    return aligned_floats(g.cout * w.group * g.pixels) + aligned_floats(w.group * g.cin * g.in_area);
  }

  void weight_gradient(const Op& op, const Geometry& g, ConstTensorView x, ConstTensorView dy, float* grads) {
    const std::size_t wfloats = weight_floats(op);
    const WeightPlan w = plan_weights(g, x.shape.n);
    if (direct_weights(g, w))
      direct_weight_partials(op, g, x, dy, w.chunks);
    else
      gemm_weight_partials(op, g, x, dy, w);
    // The chunks' partials, in chunk order, row by row in parallel.
    const std::size_t taps = g.kernel * g.kernel;
    parallel().at_least(g.out_channels * g.k, 16384)(static_cast<long>(g.out_channels), [&](long r, int) {
      const std::size_t row = static_cast<std::size_t>(r);
      float* dst = grads + op.weight + row * g.k;
      for (std::size_t c = 0; c < w.chunks; ++c) {
        const float* src = partials_.data() + c * chunk_floats_ + row * g.k;
        if (g.tap_major)  // partial rows are (tap, channel); PyTorch's are (channel, tap)
          for (std::size_t tap = 0; tap < taps; ++tap)
            for (std::size_t ch = 0; ch < g.cin; ++ch) dst[ch * taps + tap] += src[tap * g.cin + ch];
        else
          for (std::size_t i = 0; i < g.k; ++i) dst[i] += src[i];
      }
    });
    if (op.bias != no_param)
      for (std::size_t c = 0; c < w.chunks; ++c)
        for (std::size_t i = 0; i < g.out_channels; ++i)
          grads[op.bias + i] += partials_.data()[c * chunk_floats_ + wfloats + i];
  }

  // The bias gradient's partial of images [first, last): sums of dY per channel.
  static void bias_partial(const Geometry& g, ConstTensorView dy, std::size_t first, std::size_t last, float* out) {
    for (std::size_t n = first; n < last; ++n)
      for (std::size_t oc = 0; oc < g.out_channels; ++oc) {
        const float* gr = dy.data + (n * g.out_channels + oc) * g.pixels;
        float sum = 0;
        for (std::size_t j = 0; j < g.pixels; ++j) sum += gr[j];
        out[oc] = n > first ? out[oc] + sum : sum;
      }
  }

  void gemm_weight_partials(const Op& op, const Geometry& g, ConstTensorView x, ConstTensorView dy, const WeightPlan& w) {
    const std::size_t images = x.shape.n, wfloats = weight_floats(op);
    parallel()(static_cast<long>(w.chunks * w.blocks), [&](long task, int thread) {
      const std::size_t c = static_cast<std::size_t>(task) / w.blocks, b = static_cast<std::size_t>(task) % w.blocks;
      const std::size_t j0 = b * w.block, jn = std::min(w.block, g.k - j0);
      float* col = scratch(thread);
      float* gs = col + aligned_floats(g.column_floats());
      float* rows = gather(thread);
      float* inputs = rows + aligned_floats(g.cout * w.group * g.pixels);
      float* partial = partials_.data() + c * chunk_floats_;
      const std::size_t first = c * images / w.chunks, last = (c + 1) * images / w.chunks;
      for (std::size_t n0 = first; n0 < last; n0 += w.group) {
        const std::size_t count = std::min(w.group, last - n0), depth = count * g.pixels;
        for (std::size_t grp = 0; grp < g.groups; ++grp) {
          float* dw = partial + grp * g.cout * g.k + j0;
          // A = dY of these images, cout x depth
          const float* grad = dy.data + (n0 * g.out_channels + grp * g.cout) * g.pixels;
          MatrixView a{grad, g.pixels};
          if (count > 1) {
            gather_images(dy.data, g.out_channels, grp * g.cout, g.cout, g.pixels, n0, count, rows);
            a = {rows, depth};
          }
          if (g.tap_major) {  // channels last, image after image: one tap's channels are contiguous
            for (std::size_t i = 0; i < count; ++i) {
              const float* src = x.data + ((n0 + i) * g.in_channels + grp * g.cin) * g.in_area;
              float* dst = inputs + i * g.in_area * g.cin;
              for (std::size_t ch = 0; ch < g.cin; ++ch)
                for (std::size_t j = 0; j < g.in_area; ++j) dst[j * g.cin + ch] = src[ch * g.in_area + j];
            }
            G::run(g.cout, jn, depth, a, TapMajorColumns{g, inputs, j0}, dw, g.k, n0 > first, gs);
          } else if (count > 1) {  // pointwise: X of these images, cin x depth, read transposed
            gather_images(x.data, g.in_channels, grp * g.cin, g.cin, g.pixels, n0, count, inputs);
            G::run(g.cout, jn, depth, a, {inputs + j0 * depth, depth, true}, dw, g.k, n0 > first, gs);
          } else {
            const MatrixView cols = columns(g, x, n0, grp, col);
            G::run(g.cout, jn, depth, a, {cols.data + j0 * cols.ld, cols.ld, true}, dw, g.k, n0 > first, gs);
          }
        }
      }
      if (op.bias != no_param && b == 0) bias_partial(g, dy, first, last, partial + wfloats);
    });
  }

  // The weight gradient of a direct conv without a column matrix: each image
  // in the blocked layout (as the forward reads it), and per block of input
  // channels, tile of output channels and kernel row, one register
  // accumulator per (output channel, kernel column) over the image's
  // pixels: x vectors are loaded once per pixel for every output channel of
  // the tile, dY values broadcast once for every kernel column. Partials are
  // (tap, channel)-major like TapMajorColumns', one per chunk of images.
  // Small maps stay on the GEMM, which stacks images: here every image
  // would re-read the whole partial for a few pixels, and a batch of them
  // fills too few chunks to occupy the threads.
  static bool direct_weights(const Geometry& g, const WeightPlan& w) {
    constexpr std::size_t smallest_map = 128;
    return direct(g) && (g.kernel == 1 || g.kernel == 3 || g.kernel == 5 || g.kernel == 7) &&
           g.pixels >= smallest_map && w.chunks >= 2;
  }
  static constexpr int output_tile(int kw) { return std::clamp((S::registers - kw - 2) / kw, 1, 8); }

  void direct_weight_partials(const Op& op, const Geometry& g, ConstTensorView x, ConstTensorView dy,
                              std::size_t chunks) {
    const std::size_t images = x.shape.n, wfloats = weight_floats(op);
    parallel()(static_cast<long>(chunks), [&](long c, int thread) {
      const std::size_t first = static_cast<std::size_t>(c) * images / chunks;
      const std::size_t last = (static_cast<std::size_t>(c) + 1) * images / chunks;
      float* partial = partials_.data() + static_cast<std::size_t>(c) * chunk_floats_;
      std::fill_n(partial, wfloats, 0.f);
      const Layout src = blocked(g.in_channels, x.shape, g.padding,
                                 blocked_in_.data() + static_cast<std::size_t>(thread) * blocked_item_floats_[0]);
      for (std::size_t cb = 0; cb < src.blocks(); ++cb) clear_border<Arch>(src, 0, cb);
      for (std::size_t n = first; n < last; ++n) {
        reorder(const_cast<float*>(x.data) + n * g.in_channels * g.in_area, src, 0, true);  // only read
        const float* grad = dy.data + n * g.out_channels * g.pixels;
        switch (g.kernel) {
          case 1: weight_taps<1>(g, src, grad, partial); break;
          case 3: weight_taps<3>(g, src, grad, partial); break;
          case 5: weight_taps<5>(g, src, grad, partial); break;
          default: weight_taps<7>(g, src, grad, partial); break;
        }
      }
      if (op.bias != no_param) bias_partial(g, dy, first, last, partial + wfloats);
    });
  }

  template <int KW>
  static void weight_taps(const Geometry& g, const Layout& src, const float* grad, float* partial) {
    constexpr std::size_t CO = static_cast<std::size_t>(output_tile(KW));
    for (std::size_t cb = 0; cb < src.blocks(); ++cb)
      for (std::size_t ky = 0; ky < g.kernel; ++ky) {
        std::size_t co = 0;
        for (; co + CO <= g.out_channels; co += CO) weight_tile<KW, CO>(g, src, cb, ky, co, grad, partial);
        for (; co < g.out_channels; ++co) weight_tile<KW, 1>(g, src, cb, ky, co, grad, partial);
      }
  }

  template <int KW, std::size_t CO>
  static void weight_tile(const Geometry& g, const Layout& src, std::size_t cb, std::size_t ky, std::size_t co0,
                          const float* grad, float* partial) {
    vec acc[CO][KW];
    for (auto& row : acc)
      for (vec& a : row) a = S::zero();
    const auto s = static_cast<std::ptrdiff_t>(g.stride), pad = static_cast<std::ptrdiff_t>(g.padding);
    const auto lanes = static_cast<std::ptrdiff_t>(B);
    const float* dy0 = grad + co0 * g.pixels;
    for (std::size_t oy = 0; oy < g.oh; ++oy) {
      const float* row = src.at(0, cb, static_cast<std::ptrdiff_t>(oy) * s + static_cast<std::ptrdiff_t>(ky) - pad, -pad);
      const float* d = dy0 + oy * g.ow;
      for (std::size_t ox = 0; ox < g.ow; ++ox, row += s * lanes) {
        vec xv[KW];
        for (int kx = 0; kx < KW; ++kx) xv[kx] = S::load(row + kx * lanes);
        for (std::size_t o = 0; o < CO; ++o) {
          const vec dv = S::set1(d[o * g.pixels + ox]);
          for (int kx = 0; kx < KW; ++kx) acc[o][kx] = S::fma(dv, xv[kx], acc[o][kx]);
        }
      }
    }
    for (std::size_t o = 0; o < CO; ++o)
      for (int kx = 0; kx < KW; ++kx) {
        float* dst = partial + (co0 + o) * g.k + (ky * g.kernel + static_cast<std::size_t>(kx)) * g.cin + cb * B;
        S::store_unaligned(dst, S::load_unaligned(dst) + acc[o][kx]);
      }
  }

  // dst[c][i * pixels + p] = src[((n0 + i) * channels + c0 + c) * pixels + p] for `count` images.
  static void gather_images(const float* src, std::size_t channels, std::size_t c0, std::size_t take,
                            std::size_t pixels, std::size_t n0, std::size_t count, float* dst) {
    for (std::size_t c = 0; c < take; ++c)
      for (std::size_t i = 0; i < count; ++i)
        std::copy_n(src + ((n0 + i) * channels + c0 + c) * pixels, pixels, dst + (c * count + i) * pixels);
  }

  // ---- direct convolution in the blocked layout (the inference kernels) -------
  // A dense convolution whose channel counts fill whole vector blocks runs
  // its forward product (and a "same" stride-1 conv its input gradient) on
  // the inference backend's register-tiled kernels (conv.hpp): each image is
  // reordered into the blocked layout with a zero border, convolved with the
  // weights packed for the kernels (once per call: they change every step)
  // and reordered back, instead of im2col's kernel^2-fold copy and the
  // GEMM's packing.
  static constexpr std::size_t B = static_cast<std::size_t>(block_width<Arch>);
  static bool direct(const Geometry& g) {
    return g.groups == 1 && g.in_channels % B == 0 && g.out_channels % B == 0 && g.stride <= 2 && !g.pointwise;
  }
  // One item of a value in the blocked layout.
  static Layout blocked(std::size_t channels, const Extents& e, std::size_t border, float* data = nullptr) {
    return {data, 1, channels, e.h, e.w, static_cast<int>(B), static_cast<int>(border)};
  }
  // Floats of one thread's buffer for such an item, with the slack a conv
  // kernel may read past its end; whole alignment units, so that every
  // thread's buffer starts aligned.
  static std::size_t item_floats(std::size_t channels, const Extents& e, std::size_t border, int stride, int kernel) {
    return aligned_floats(blocked(channels, e, border).floats() +
                          (kernel ? conv_read_slack<Arch>(stride, static_cast<int>(B), kernel) : 0));
  }
  static std::size_t packed_floats(std::size_t in, std::size_t out, std::size_t kernel) {
    const std::size_t pairs = (out / B + 1) / 2;
    return packed_conv_floats<Arch>(static_cast<int>(in), static_cast<int>(out), static_cast<int>(kernel),
                                    static_cast<int>(B)) +
           2 * B * pairs;  // + zero biases
  }

  // out (+)= conv(in, weights [out][in][k][k]) + bias (if any) with g's
  // kernel, stride and padding; `in` has `cin` channels, `out` has `cout`.
  void direct_conv(ConstTensorView in, const float* weights, const float* bias, std::size_t cin, std::size_t cout,
                   const Geometry& g, TensorView out, bool accumulate) {
    ConvSpec spec;
    spec.in_channels = static_cast<int>(cin);
    spec.out_channels = static_cast<int>(cout);
    spec.kernel = static_cast<int>(g.kernel);
    spec.stride = static_cast<int>(g.stride);
    spec.padding = static_cast<int>(g.padding);
    spec.in_lanes = static_cast<int>(B);
    spec.groups = static_cast<int>((cout / B + 1) / 2);
    spec.group_floats = cin / B * g.kernel * g.kernel * B * 2 * B;
    spec.weights = 0;
    spec.bias = static_cast<std::size_t>(spec.groups) * spec.group_floats;
    float* packed = packed_.data();
    pack_conv_weights<Arch>(weights, {}, spec.in_channels, spec.out_channels, spec.kernel, spec.in_lanes, packed);
    std::fill_n(packed + spec.bias, 2 * B * static_cast<std::size_t>(spec.groups), 0.f);
    if (bias) std::copy_n(bias, cout, packed + spec.bias);
    // One image at a time per thread, through that thread's blocked buffers:
    // an image's worth stays in cache from the reorder in to the reorder out.
    parallel()(static_cast<long>(in.shape.n), [&](long n, int thread) {
      const auto i = static_cast<std::size_t>(n), t = static_cast<std::size_t>(thread);
      const Layout src = blocked(cin, in.shape, g.padding, blocked_in_.data() + t * blocked_item_floats_[0]);
      const Layout dst = blocked(cout, out.shape, 0, blocked_out_.data() + t * blocked_item_floats_[1]);
      for (std::size_t cb = 0; cb < src.blocks(); ++cb) clear_border<Arch>(src, 0, cb);
      reorder(const_cast<float*>(in.data) + i * cin * src.h * src.w, src, 0, true);  // only read
      run_conv<Arch>(spec, packed, src, dst, nullptr, Parallel{});
      reorder(out.data + i * cout * dst.h * dst.w, dst, 0, false, accumulate);
    });
  }

  // Between item i of a blocked value `b` (lanes = B, whole blocks) and its
  // NCHW image `nchw`: into the blocked layout's interior, or out of it
  // (assigned or accumulated). B x B tiles of channels x pixels are
  // transposed in registers; the row's last pixels one at a time.
  static void reorder(float* nchw, const Layout& b, std::size_t i, bool into_blocked, bool accumulate = false) {
    const std::size_t area = b.h * b.w;
    for (std::size_t cb = 0; cb < b.blocks(); ++cb)
      for (std::size_t y = 0; y < b.h; ++y) {
        float* row = nchw + cb * B * area + y * b.w;  // channel cb * B, row y
        float* blk = b.at(i, cb, static_cast<std::ptrdiff_t>(y), 0);
        std::size_t x = 0;
        if constexpr (B > 1)
          for (; x + B <= b.w; x += B) {
            vec t[B];
            for (std::size_t r = 0; r < B; ++r)
              t[r] = S::load_unaligned(into_blocked ? row + r * area + x : blk + (x + r) * B);
            S::transpose(t);
            for (std::size_t r = 0; r < B; ++r) {
              float* dst = into_blocked ? blk + (x + r) * B : row + r * area + x;
              S::store_unaligned(dst, accumulate ? S::load_unaligned(dst) + t[r] : t[r]);
            }
          }
        for (; x < b.w; ++x)
          for (std::size_t c = 0; c < B; ++c) {
            float& plain = row[c * area + x];
            float& blocked_value = blk[x * B + c];
            if (into_blocked)
              blocked_value = plain;
            else
              plain = accumulate ? plain + blocked_value : blocked_value;
          }
      }
  }

  // The column matrix (k x pixels) of image n, group grp: the input itself
  // for a pointwise conv, else im2col into `col`.
  static MatrixView columns(const Geometry& g, ConstTensorView x, std::size_t n, std::size_t grp, float* col) {
    const float* src = x.data + (n * g.in_channels + grp * g.cin) * g.in_area;
    if (g.pointwise) return {src, g.pixels};
    const long p = static_cast<long>(g.padding), s = static_cast<long>(g.stride);
    const long ih = static_cast<long>(g.h), iw = static_cast<long>(g.w);
    float* row = col;
    for (std::size_t c = 0; c < g.cin; ++c)
      for (std::size_t ky = 0; ky < g.kernel; ++ky)
        for (std::size_t kx = 0; kx < g.kernel; ++kx, row += g.pixels) {
          const float* plane = src + c * g.in_area;
          const auto [lo, hi] = valid_columns(g, kx);
          const long shift = static_cast<long>(kx) - p;
          for (std::size_t oy = 0; oy < g.oh; ++oy) {
            const long yy = static_cast<long>(oy) * s + static_cast<long>(ky) - p;
            float* out = row + oy * g.ow;
            if (yy < 0 || yy >= ih) {
              std::fill_n(out, g.ow, 0.f);
              continue;
            }
            const float* in = plane + yy * iw + shift;
            std::fill(out, out + lo, 0.f);
            if (s == 1)
              std::copy(in + lo, in + hi, out + lo);
            else
              for (std::size_t ox = lo; ox < hi; ++ox) out[ox] = in[static_cast<long>(ox) * s];
            std::fill(out + hi, out + g.ow, 0.f);
          }
        }
    return {col, g.pixels};
  }

  // dst (`channels` planes of h x w) (+)= the sum of every column entry at its
  // input position; `col` has channels * kernel^2 rows, `ld` floats apart.
  static void col2im(const Geometry& g, const float* col, std::size_t ld, std::size_t channels, float* dst,
                     bool accumulate) {
    if (!accumulate) std::fill_n(dst, channels * g.in_area, 0.f);
    const long p = static_cast<long>(g.padding), s = static_cast<long>(g.stride);
    const long ih = static_cast<long>(g.h), iw = static_cast<long>(g.w);
    const float* row = col;
    for (std::size_t c = 0; c < channels; ++c)
      for (std::size_t ky = 0; ky < g.kernel; ++ky)
        for (std::size_t kx = 0; kx < g.kernel; ++kx, row += ld) {
          float* plane = dst + c * g.in_area;
          const auto [lo, hi] = valid_columns(g, kx);
          const long shift = static_cast<long>(kx) - p;
          for (std::size_t oy = 0; oy < g.oh; ++oy) {
            const long yy = static_cast<long>(oy) * s + static_cast<long>(ky) - p;
            if (yy < 0 || yy >= ih) continue;
            float* out = plane + yy * iw + shift;
            const float* in = row + oy * g.ow;
            if (s == 1)
              map(out + lo, hi - lo, true, [](auto v) { return v; }, in + lo);
            else
              for (std::size_t ox = lo; ox < hi; ++ox) out[static_cast<long>(ox) * s] += in[ox];
          }
        }
  }

  // Output columns ox whose input column ox * stride + kx - padding lies inside the image.
  static std::pair<std::size_t, std::size_t> valid_columns(const Geometry& g, std::size_t kx) {
    const long p = static_cast<long>(g.padding), s = static_cast<long>(g.stride), k = static_cast<long>(kx);
    const long lo = std::max(0L, (p - k + s - 1) / s);
    const long last = static_cast<long>(g.w) - 1 + p - k;  // largest ox * s with an in-range column
    const long hi = last < 0 ? 0 : std::min(static_cast<long>(g.ow), last / s + 1);
    return {static_cast<std::size_t>(std::min(lo, hi)), static_cast<std::size_t>(hi)};
  }

  static double plane_sum(const float* v, std::size_t n) {
    return sum(n, [](auto x) { return x; }, v);
  }
  static double plane_squares(const float* v, std::size_t n, float mean) {
    return sum(n, [mean](auto x) { return (x - mean) * (x - mean); }, v);
  }

  // ---- vector loops shared by the element-wise and per-plane kernels ---------
  // `f` is generic: it is called with vectors for whole vectors, then with
  // floats for the tail (both are float on the scalar architecture).

  // dst[j] (+)= f(src[j]...) for j in [0, n).
  template <class F, class... Src>
  static void map(float* dst, std::size_t n, bool accumulate, F&& f, const Src*... src) {
    std::size_t j = 0;
    if constexpr (W > 1)
      for (; j + W <= n; j += W) {
        const vec v = f(S::load_unaligned(src + j)...);
        S::store_unaligned(dst + j, accumulate ? S::load_unaligned(dst + j) + v : v);
      }
    for (; j < n; ++j) {
      const float v = f(src[j]...);
      dst[j] = accumulate ? dst[j] + v : v;
    }
  }
  // The sum of f(src[j]...) over [0, n), in a fixed order (lane-wise, the
  // lanes reduced, then the tail): the same for any thread count.
  template <class F, class... Src>
  static float sum(std::size_t n, F&& f, const Src*... src) {
    float total = 0;
    std::size_t j = 0;
    if constexpr (W > 1) {
      vec acc = S::zero();
      for (; j + W <= n; j += W) acc += f(S::load_unaligned(src + j)...);
      total = S::reduce_add(acc);
    }
    for (; j < n; ++j) total += f(src[j]...);
    return total;
  }
  static void store(float* dst, std::size_t j, float v, bool accumulate) { dst[j] = accumulate ? dst[j] + v : v; }
  // Element-wise work in one task per image.
  template <class F>
  void per_image(const Extents& e, F&& body) {
    const std::size_t item = e.per_item();
    parallel().at_least(e.count(), 16384)(static_cast<long>(e.n), [&](long n, int) {
      body(static_cast<std::size_t>(n) * item, (static_cast<std::size_t>(n) + 1) * item);
    });
  }

  Parallel parallel() const { return {pool_.get(), threads_}; }
  float* scratch(int thread) { return scratch_.data() + static_cast<std::size_t>(thread) * scratch_floats_; }
  float* gather(int thread) { return gather_.data() + static_cast<std::size_t>(thread) * gather_floats_; }

  int threads_ = 1;
  std::unique_ptr<ThreadPool> pool_;
  AlignedBuffer scratch_, gather_, partials_, blocked_in_, blocked_out_, packed_, flipped_;
  std::array<std::size_t, 2> blocked_item_floats_{};  // per thread: input, output
  std::size_t scratch_floats_ = 0, gather_floats_ = 0, chunk_floats_ = 0;
};

template <class Arch>
class Backend<Arch>::TrainingExecutor : public train::TapeExecutor<TrainingKernels<Arch>> {
 public:
  TrainingExecutor(const Program& program, std::span<const float> params, std::size_t begin = 0)
      : train::TapeExecutor<TrainingKernels<Arch>>(program, params, begin, "ctnn cpu backend") {}
};

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu

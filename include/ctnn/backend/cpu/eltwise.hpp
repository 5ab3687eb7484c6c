// Element-wise operations of the CPU backend that were not fused into a
// convolution's epilogue: per-channel scale and shift (a BatchNorm that does
// not follow a convolution), ReLU, residual add, sigmoid, softmax. All run in
// place on the interior of a value; borders stay zero.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "ctnn/backend/cpu/layout.hpp"
#include "ctnn/backend/cpu/simd.hpp"
#include "ctnn/backend/cpu/thread_pool.hpp"

namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

namespace detail {
// Calls f(row pointer, item, channel block) for every interior row (w * lanes
// contiguous floats), in parallel when the value is large.
template <class F>
void for_each_row(const Layout& l, const Parallel& par, F&& f) {
  const long rows = static_cast<long>(l.n * l.blocks() * l.h);
  par.at_least(l.floats(), 32768).small_tasks(rows, [&](long t, int) {
    const std::size_t y = static_cast<std::size_t>(t) % l.h, plane = static_cast<std::size_t>(t) / l.h;
    const std::size_t i = plane / l.blocks(), cb = plane % l.blocks();
    f(l.at(i, cb, static_cast<std::ptrdiff_t>(y), 0), i, cb, y);
  });
}
}  // namespace detail

// x = x * scale[c] + shift[c]; scale and shift hold round_up(C, B) floats.
template <class Arch>
void run_scale_shift(const Layout& l, const float* scale, const float* shift, const Parallel& par) {
  using V = simd<Arch>;
  constexpr int B = V::width;
  const std::size_t lanes = static_cast<std::size_t>(l.lanes), len = l.w * lanes;
  detail::for_each_row(l, par, [&](float* r, std::size_t, std::size_t cb, std::size_t) {
    if (l.lanes == B) {
      const auto s = V::load(scale + cb * B), b = V::load(shift + cb * B);
      for (std::size_t x = 0; x < len; x += B) V::store(r + x, V::fma(V::load(r + x), s, b));
    } else {
      for (std::size_t x = 0; x < len; ++x) {
        const std::size_t ch = cb * lanes + x % lanes;
        r[x] = r[x] * scale[ch] + shift[ch];
      }
    }
  });
}

template <class Arch>
void run_relu(const Layout& l, const Parallel& par) {
  const std::size_t len = l.w * static_cast<std::size_t>(l.lanes);
  detail::for_each_row(l, par, [&](float* r, std::size_t, std::size_t, std::size_t) {
    for (std::size_t x = 0; x < len; ++x) r[x] = std::max(r[x], 0.0f);
  });
}

// dst += src (same extents), then ReLU when asked.
template <class Arch>
void run_add(const Layout& dst, const Layout& src, bool relu, const Parallel& par) {
  const std::size_t len = dst.w * static_cast<std::size_t>(dst.lanes);
  const bool same = dst.lanes == src.lanes;
  detail::for_each_row(dst, par, [&](float* r, std::size_t i, std::size_t cb, std::size_t y) {
    if (same) {
      const float* s = src.at(i, cb, static_cast<std::ptrdiff_t>(y), 0);
      for (std::size_t x = 0; x < len; ++x) r[x] = relu ? std::max(r[x] + s[x], 0.0f) : r[x] + s[x];
    } else {
      const std::size_t lanes = static_cast<std::size_t>(dst.lanes);
      for (std::size_t x = 0; x < len; ++x) {
        const std::size_t ch = cb * lanes + x % lanes;
        if (ch >= dst.c) continue;
        const float v = r[x] + src(i, ch, y, x / lanes);
        r[x] = relu ? std::max(v, 0.0f) : v;
      }
    }
  });
}

template <class Arch>
void run_sigmoid(const Layout& l, const Parallel& par) {
  const std::size_t len = l.w * static_cast<std::size_t>(l.lanes);
  detail::for_each_row(l, par, [&](float* r, std::size_t, std::size_t, std::size_t) {
    for (std::size_t x = 0; x < len; ++x) r[x] = 1.0f / (1.0f + std::exp(-r[x]));
  });
}

// Softmax over channels at every pixel, shifted by the maximum as PyTorch does.
template <class Arch>
void run_softmax(const Layout& l) {
  for (std::size_t i = 0; i < l.n; ++i)
    for (std::size_t y = 0; y < l.h; ++y)
      for (std::size_t x = 0; x < l.w; ++x) {
        float m = -std::numeric_limits<float>::infinity();
        for (std::size_t ch = 0; ch < l.c; ++ch) m = std::max(m, l(i, ch, y, x));
        double sum = 0.0;
        for (std::size_t ch = 0; ch < l.c; ++ch) {
          const float e = std::exp(l(i, ch, y, x) - m);
          l(i, ch, y, x) = e;
          sum += e;
        }
        for (std::size_t ch = 0; ch < l.c; ++ch) l(i, ch, y, x) = static_cast<float>(l(i, ch, y, x) / sum);
      }
}

// CIFAR option A shortcut: out(c + offset) = in(c) subsampled by `stride`,
// zero channels around it (one task per image; a cheap, memory-bound step).
template <class Arch>
void run_pad_shortcut(const Layout& in, const Layout& out, int stride, std::size_t offset, const Parallel& par) {
  const auto s = static_cast<std::size_t>(stride);
  par.small_tasks(static_cast<long>(out.n), [&](long t, int) {
    const auto n = static_cast<std::size_t>(t);
    for (std::size_t cb = 0; cb < out.blocks(); ++cb) clear_border<Arch>(out, n, cb);
    for (std::size_t c = 0; c < out.c; ++c) {
      const bool inside = c >= offset && c - offset < in.c;
      for (std::size_t y = 0; y < out.h; ++y)
        for (std::size_t x = 0; x < out.w; ++x) out(n, c, y, x) = inside ? in(n, c - offset, y * s, x * s) : 0.f;
    }
    clear_unused_lanes<Arch>(out, n);
  });
}

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu

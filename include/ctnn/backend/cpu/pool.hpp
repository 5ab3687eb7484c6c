// Pooling on the CPU backend's layouts: max pooling (padding acts as -inf,
// as in PyTorch) and global average pooling into plain N x C x 1 x 1.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>

#include "ctnn/backend/cpu/layout.hpp"
#include "ctnn/backend/cpu/simd.hpp"
#include "ctnn/backend/cpu/thread_pool.hpp"

namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

template <class Arch>
void run_max_pool(const Layout& in, const Layout& out, int kernel, int stride, int padding, const Parallel& par) {
  using V = simd<Arch>;
  constexpr int B = V::width;
  const long planes = static_cast<long>(out.n * out.blocks());
  const long rows = planes * static_cast<long>(out.h);
  const std::ptrdiff_t lanes = in.lanes, in_w = static_cast<std::ptrdiff_t>(in.w);
  const bool vector = in.lanes == B;
  const long borders = out.border ? planes : 0;
  par.at_least(out.floats(), 16384).small_tasks(borders + rows, [&](long task, int) {
    if (task < borders) {
      clear_border<Arch>(out, static_cast<std::size_t>(task) / out.blocks(),
                         static_cast<std::size_t>(task) % out.blocks());
      return;
    }
    {
      const long t = task - borders;
      const std::size_t plane = static_cast<std::size_t>(t) / out.h, oy = static_cast<std::size_t>(t) % out.h;
      const std::size_t i = plane / out.blocks(), cb = plane % out.blocks();
      const std::ptrdiff_t y0 = static_cast<std::ptrdiff_t>(oy) * stride - padding;
      const std::ptrdiff_t ky0 = std::max<std::ptrdiff_t>(0, -y0);
      const std::ptrdiff_t ky1 = std::min<std::ptrdiff_t>(kernel, static_cast<std::ptrdiff_t>(in.h) - y0);
      const float* src = in.at(i, cb, 0, 0);  // interior pixel (0, 0) of this plane
      float* dst = out.at(i, cb, static_cast<std::ptrdiff_t>(oy), 0);
      for (std::size_t ox = 0; ox < out.w; ++ox, dst += lanes) {
        const std::ptrdiff_t x0 = static_cast<std::ptrdiff_t>(ox) * stride - padding;
        const std::ptrdiff_t kx0 = std::max<std::ptrdiff_t>(0, -x0);
        const std::ptrdiff_t kx1 = std::min<std::ptrdiff_t>(kernel, in_w - x0);
        if (vector) {
          auto m = V::set1(-std::numeric_limits<float>::infinity());
          for (std::ptrdiff_t ky = ky0; ky < ky1; ++ky) {
            const float* r = src + (y0 + ky) * in.row() + x0 * B;
            for (std::ptrdiff_t kx = kx0; kx < kx1; ++kx) m = V::max(m, V::load(r + kx * B));
          }
          V::store(dst, m);
        } else {
          for (std::ptrdiff_t l = 0; l < lanes; ++l) {
            float m = -std::numeric_limits<float>::infinity();
            for (std::ptrdiff_t ky = ky0; ky < ky1; ++ky) {
              const float* r = src + (y0 + ky) * in.row() + x0 * lanes + l;
              for (std::ptrdiff_t kx = kx0; kx < kx1; ++kx) m = std::max(m, r[kx * lanes]);
            }
            dst[l] = m;
          }
        }
      }
    }
  });
}

// N x C x H x W (any layout) -> N x C x 1 x 1 (out's layout). Sums in a fixed
// order, then divides by H*W as PyTorch's mean does.
template <class Arch>
void run_global_avg_pool(const Layout& in, const Layout& out, const Parallel& par) {
  using V = simd<Arch>;
  constexpr int B = V::width;
  const long planes = static_cast<long>(in.n * in.blocks());
  const std::size_t lanes = static_cast<std::size_t>(in.lanes);
  const float count = static_cast<float>(in.h * in.w);
  for (std::size_t i = 0; i < out.n; ++i)
    for (std::size_t cb = 0; cb < out.blocks(); ++cb) clear_border<Arch>(out, i, cb);
  par.at_least(in.floats(), 65536).small_tasks(planes, [&](long t, int) {
    const std::size_t i = static_cast<std::size_t>(t) / in.blocks(), cb = static_cast<std::size_t>(t) % in.blocks();
    alignas(64) float sum[B > 64 ? B : 64];
    const std::size_t used = std::min(lanes, in.c - cb * lanes);
    if (in.lanes == B) {
      auto acc = V::zero();
      for (std::size_t y = 0; y < in.h; ++y) {
        const float* r = in.at(i, cb, static_cast<std::ptrdiff_t>(y), 0);
        for (std::size_t x = 0; x < in.w; ++x) acc = acc + V::load(r + x * B);
      }
      V::store(sum, acc / V::set1(count));
    } else {
      for (std::size_t l = 0; l < used; ++l) {
        float s = 0.0f;
        for (std::size_t y = 0; y < in.h; ++y) {
          const float* r = in.at(i, cb, static_cast<std::ptrdiff_t>(y), 0);
          for (std::size_t x = 0; x < in.w; ++x) s += r[x * lanes + l];
        }
        sum[l] = s / count;
      }
    }
    for (std::size_t l = 0; l < used; ++l) out(i, cb * lanes + l, 0, 0) = sum[l];
  });
}

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu

// Winograd F(2x2, 3x3) for stride-1, padding-1 3x3 convolutions on the
// blocked layout (Lavin & Gray 2016): each 2x2 output tile is computed from a
// 4x4 input tile with 16 multiplies per channel pair instead of 36, i.e.
// 2.25x fewer FMAs. Its transforms use only 0, +-1 and 1/2, so fp32 error
// stays within a small factor of direct convolution's (the tests bound it).
//
// The work is split into chunks of tiles. A chunk's input transform V
// ([16 positions][in blocks][tiles][B]) and products M ([16][out blocks]
// [tiles][B]) stay in the thread's L2-sized scratch; the 16 products are the
// direct-convolution register tile with a 1x1 kernel over "pixels" that are
// tiles; the output transform applies the fused epilogue (bias with BatchNorm
// folded in, residual, ReLU). Each output is computed by one chunk in a fixed
// order, so results do not depend on the thread count or on the chunk size.
#pragma once

#include <algorithm>
#include <cstddef>

#include "ctnn/backend/cpu/conv.hpp"
#include "ctnn/backend/cpu/conv_kernel.hpp"
#include "ctnn/backend/cpu/layout.hpp"
#include "ctnn/backend/cpu/simd.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ctnn::backend::cpu {

inline constexpr int winograd_positions = 16;  // (2 + 3 - 1)^2

// Whether a convolution takes the Winograd path: 3x3, stride 1, padding 1,
// on the blocked layout, up to 256 x 256 channels. Measured on AVX-512 it is
// 1.5-1.8x faster than direct there; at 512 x 512 the 16 transformed weight
// matrices (16 MB) are read per chunk and a 7x7 image wastes a third of its
// 2x2 tiles, so it loses to direct convolution.
template <class Arch>
constexpr bool winograd_applies(int in_channels, int out_channels, int kernel, int stride, int padding,
                                int in_lanes) {
  constexpr int B = block_width<Arch>;
  return B >= 8 && kernel == 3 && stride == 1 && padding == 1 && in_lanes == B &&
         static_cast<long>(in_channels) * out_channels <= 256L * 256L;
}

// Tiles per chunk: a multiple of the register tile, with the chunk's V and M
// within ~256 KB.
template <class Arch>
constexpr int winograd_max_chunk(int in_channels, int out_channels) {
  constexpr int P = conv_max_pixels<Arch>;
  const int by_cache = 4096 / std::max(1, in_channels + out_channels);
  return std::max(P, by_cache / P * P);
}

template <class Arch>
constexpr std::size_t winograd_scratch_floats(int in_channels, int out_channels) {
  constexpr std::size_t B = static_cast<std::size_t>(block_width<Arch>);
  const std::size_t cin = (static_cast<std::size_t>(in_channels) + B - 1) / B * B;
  const std::size_t cout = (static_cast<std::size_t>(out_channels) + 2 * B - 1) / (2 * B) * (2 * B);
  const std::size_t chunk = static_cast<std::size_t>(winograd_max_chunk<Arch>(in_channels, out_channels));
  // + one register tile of slack: the last, partial tile of a chunk reads past its end.
  return aligned_floats(winograd_positions * (cin + cout) * chunk + conv_max_pixels<Arch> * B);
}

// U = G g G^T for every (out, in) pair, from weights scaled by the folded
// BatchNorm, in double and rounded once; laid out per position like a 1x1
// convolution's packed weights.
template <class Arch>
void pack_winograd_weights(const float* w, std::span<const double> scale, int in_channels, int out_channels,
                           float* dst) {
  constexpr int B = block_width<Arch>;
  const std::size_t per_position = packed_conv_floats<Arch>(in_channels, out_channels, 1, B);
  const int in_blocks = (in_channels + B - 1) / B;
  std::fill(dst, dst + winograd_positions * per_position, 0.0f);
  for (int o = 0; o < out_channels; ++o)
    for (int i = 0; i < in_channels; ++i) {
      double g[3][3], t[4][3], u[4][4];
      for (int r = 0; r < 3; ++r)
        for (int s = 0; s < 3; ++s)
          g[r][s] = static_cast<double>(w[((static_cast<std::size_t>(o) * in_channels + i) * 3 + r) * 3 + s]) *
                    scale[static_cast<std::size_t>(o)];
      for (int s = 0; s < 3; ++s) {  // G g
        t[0][s] = g[0][s];
        t[1][s] = 0.5 * (g[0][s] + g[1][s] + g[2][s]);
        t[2][s] = 0.5 * (g[0][s] - g[1][s] + g[2][s]);
        t[3][s] = g[2][s];
      }
      for (int r = 0; r < 4; ++r) {  // (G g) G^T
        u[r][0] = t[r][0];
        u[r][1] = 0.5 * (t[r][0] + t[r][1] + t[r][2]);
        u[r][2] = 0.5 * (t[r][0] - t[r][1] + t[r][2]);
        u[r][3] = t[r][2];
      }
      const int g2 = o / (2 * B), r2 = o / B % 2, b = o % B, ib = i / B, l = i % B;
      const std::size_t at =
          ((static_cast<std::size_t>(g2) * in_blocks + ib) * B + l) * 2 * B + static_cast<std::size_t>(r2 * B + b);
      for (int x = 0; x < winograd_positions; ++x)
        dst[static_cast<std::size_t>(x) * per_position + at] = static_cast<float>(u[x / 4][x % 4]);
    }
}

// `scratch` holds `threads` blocks of winograd_scratch_floats; `zeros` is
// 2 * B zero floats (the products carry no bias; the epilogue adds it).
template <class Arch>
void run_winograd(const ConvSpec& c, const float* arena, const float* zeros, const Layout& in, const Layout& out,
                  const Layout* res, float* scratch, int threads) {
  using V = simd<Arch>;
  using vec = typename V::vec;
  constexpr int B = V::width;
  constexpr int P = conv_max_pixels<Arch>;
  const int in_blocks = static_cast<int>(in.blocks()), out_blocks = static_cast<int>(out.blocks());
  const int out_h = static_cast<int>(out.h), out_w = static_cast<int>(out.w);
  const int tiles_h = (out_h + 1) / 2, tiles_w = (out_w + 1) / 2;
  const long tiles = static_cast<long>(out.n) * tiles_h * tiles_w;
  const std::size_t per_position = packed_conv_floats<Arch>(c.in_channels, c.out_channels, 1, B);
  const std::size_t group_floats = per_position / static_cast<std::size_t>(c.groups);
  const std::size_t scratch_floats = winograd_scratch_floats<Arch>(c.in_channels, c.out_channels);
  const int pair_blocks = 2 * c.groups;  // M has whole pairs of blocks

  // Enough chunks to keep every thread busy, each at most the cache-sized maximum.
  const int max_chunk = winograd_max_chunk<Arch>(c.in_channels, c.out_channels);
  const long wanted = std::max<long>(1, tiles / (4L * threads));
  const int chunk = static_cast<int>(std::min<long>(max_chunk, std::max<long>(P, (wanted + P - 1) / P * P)));
  const long chunks = (tiles + chunk - 1) / chunk;

  ConvTileArgs gemm;
  gemm.bias = zeros;
  gemm.in_block = static_cast<std::ptrdiff_t>(chunk) * B;
  gemm.in_row = 0;
  gemm.in_blocks = in_blocks;
  gemm.kernel = 1;
  const std::ptrdiff_t row = in.row();

#pragma omp parallel num_threads(threads)
  {
#if defined(_OPENMP)
    const int tid = omp_get_thread_num();
#else
    const int tid = 0;
#endif
    float* vbuf = scratch + static_cast<std::size_t>(tid) * scratch_floats;
    float* mbuf = vbuf + static_cast<std::size_t>(winograd_positions) * in_blocks * chunk * B;

#pragma omp for schedule(static) nowait
    for (long t = 0; t < static_cast<long>(out.n) * out_blocks; ++t)
      clear_border<Arch>(out, static_cast<std::size_t>(t / out_blocks), static_cast<std::size_t>(t % out_blocks));

#pragma omp for schedule(dynamic)
    for (long ck = 0; ck < chunks; ++ck) {
      const long first = ck * chunk;
      const int count = static_cast<int>(std::min<long>(chunk, tiles - first));
      const auto tile_at = [&](int k, std::size_t& n, int& ty, int& tx) {
        const long t = first + k;
        n = static_cast<std::size_t>(t / (static_cast<long>(tiles_h) * tiles_w));
        const long r = t % (static_cast<long>(tiles_h) * tiles_w);
        ty = static_cast<int>(r / tiles_w);
        tx = static_cast<int>(r % tiles_w);
      };

      // Input transform V = B^T d B of every tile and input block.
      for (int ib = 0; ib < in_blocks; ++ib)
        for (int k = 0; k < count; ++k) {
          std::size_t n;
          int ty, tx;
          tile_at(k, n, ty, tx);
          const float* d = in.at(n, static_cast<std::size_t>(ib), 2 * ty - 1, 2 * tx - 1);
          vec u[4][4];
          for (int s = 0; s < 4; ++s) {
            const vec d0 = V::load(d + s * B), d1 = V::load(d + row + s * B), d2 = V::load(d + 2 * row + s * B),
                      d3 = V::load(d + 3 * row + s * B);
            u[0][s] = d0 - d2;
            u[1][s] = d1 + d2;
            u[2][s] = d2 - d1;
            u[3][s] = d1 - d3;
          }
          float* v = vbuf + (static_cast<std::size_t>(ib) * chunk + static_cast<std::size_t>(k)) * B;
          const std::size_t step = static_cast<std::size_t>(in_blocks) * chunk * B;
          for (int r = 0; r < 4; ++r) {
            V::store(v + (4 * r + 0) * step, u[r][0] - u[r][2]);
            V::store(v + (4 * r + 1) * step, u[r][1] + u[r][2]);
            V::store(v + (4 * r + 2) * step, u[r][2] - u[r][1]);
            V::store(v + (4 * r + 3) * step, u[r][1] - u[r][3]);
          }
        }

      // The 16 products: M[x] = U[x] V[x], a 1x1 convolution over tiles.
      const detail::conv_tile_fn tile_fn = &conv_tile<Arch, P, 1, B>;
      for (int x = 0; x < winograd_positions; ++x) {
        const float* vx = vbuf + static_cast<std::size_t>(x) * in_blocks * chunk * B;
        float* mx = mbuf + static_cast<std::size_t>(x) * pair_blocks * chunk * B;
        for (int g = 0; g < c.groups; ++g) {
          ConvTileArgs a = gemm;
          a.weights = arena + c.weights + static_cast<std::size_t>(x) * per_position +
                      static_cast<std::size_t>(g) * group_floats;
          float* m0 = mx + static_cast<std::size_t>(2 * g) * chunk * B;
          for (int k = 0; k < count; k += P)
            tile_fn(a, vx + static_cast<std::size_t>(k) * B, m0 + static_cast<std::size_t>(k) * B,
                    m0 + static_cast<std::size_t>(chunk + k) * B, nullptr, nullptr, std::min(P, count - k));
        }
      }

      // Output transform Y = A^T M A with the fused epilogue.
      const vec zero = V::zero();
      for (int ob = 0; ob < out_blocks; ++ob) {
        const vec bias = V::load(arena + c.bias + static_cast<std::size_t>(ob) * B);
        for (int k = 0; k < count; ++k) {
          std::size_t n;
          int ty, tx;
          tile_at(k, n, ty, tx);
          const float* m = mbuf + (static_cast<std::size_t>(ob) * chunk + static_cast<std::size_t>(k)) * B;
          const std::size_t step = static_cast<std::size_t>(pair_blocks) * chunk * B;
          vec s[2][4];
          for (int j = 0; j < 4; ++j) {
            const vec m0 = V::load(m + (0 + j) * step), m1 = V::load(m + (4 + j) * step),
                      m2 = V::load(m + (8 + j) * step), m3 = V::load(m + (12 + j) * step);
            s[0][j] = m0 + m1 + m2;
            s[1][j] = m1 - m2 - m3;
          }
          for (int i = 0; i < 2; ++i) {
            const int oy = 2 * ty + i;
            if (oy >= out_h) break;
            const vec y[2] = {s[i][0] + s[i][1] + s[i][2], s[i][1] - s[i][2] - s[i][3]};
            for (int j = 0; j < 2; ++j) {
              const int ox = 2 * tx + j;
              if (ox >= out_w) break;
              vec v = y[j] + bias;
              if (res) v = v + V::load(res->at(n, static_cast<std::size_t>(ob), oy, ox));
              if (c.relu) v = V::max(v, zero);
              V::store(out.at(n, static_cast<std::size_t>(ob), oy, ox), v);
            }
          }
        }
      }
    }
  }
}

}  // namespace ctnn::backend::cpu

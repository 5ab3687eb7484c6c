// Winograd convolution F(MxM, 3x3), M = 2 or 4, for stride-1, padding-1 3x3
// convolutions on the blocked layout (Lavin & Gray 2016): each MxM output
// tile comes from an (M+2)x(M+2) input tile with (M+2)^2 multiplies per
// channel pair instead of 9 M^2: 2.25x fewer FMAs for F(2x2), 4x for F(4x4).
//
// The work is split into chunks of tiles. A chunk's input transform V
// ([positions][in blocks][tiles][B]) and products M ([positions][out blocks]
// [tiles][B]) stay in the thread's L2-sized scratch; the products are the
// direct-convolution register tile with a 1x1 kernel over "pixels" that are
// tiles; the output transform applies the fused epilogue (bias with BatchNorm
// folded in, residual, ReLU). Each output is computed by one chunk in a fixed
// order, so results do not depend on the thread count or on the chunk size.
//
// Accuracy: F(2x2) transforms use 0, +-1, 1/2; F(4x4) uses points 0, +-1, +-2,
// whose larger coefficients cost a few bits (see winograd_tile). Both are
// measured against a double-precision oracle in the tests.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>

#include "ctnn/backend/cpu/conv.hpp"
#include "ctnn/backend/cpu/conv_kernel.hpp"
#include "ctnn/backend/cpu/layout.hpp"
#include "ctnn/backend/cpu/simd.hpp"
#include "ctnn/backend/cpu/thread_pool.hpp"

namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

// Which Winograd variant a convolution takes (0: direct). Only 3x3, stride
// 1, padding 1 on the blocked layout. Measured on AVX-512, one thread, batch
// 1, against direct convolution (0.89 ms for each of these ResNet shapes):
//   64 x 64 @56:   F(4x4) 0.31 ms
//   128 x 128 @28: F(4x4) 0.34 ms, F(2x2) 0.46 ms
//   256 x 256 @14: F(4x4) 0.56 ms, F(2x2) 0.58 ms
//   512 x 512 @7:  F(2x2) 1.37 ms (slower: 16 MB of transformed weights read
//                  per chunk, and a 7x7 image wastes a third of its tiles)
// F(4x4)'s error grows with the channel count (single layer, relative to
// the largest output: 4e-6 at 64, 7e-6 at 128, 1e-5 at 256 channels, against
// 4e-7 .. 2e-6 for direct), so at 256 channels, where it is barely faster,
// F(2x2) (3e-7) is used.
template <class Arch>
constexpr int winograd_tile(int in_channels, int out_channels, int kernel, int stride, int padding, int in_lanes) {
  constexpr int B = block_width<Arch>;
  if (B < 8 || kernel != 3 || stride != 1 || padding != 1 || in_lanes != B) return 0;
  const long pairs = static_cast<long>(in_channels) * out_channels;
  return pairs <= 128L * 128L ? 4 : pairs <= 256L * 256L ? 2 : 0;
}

template <int M>
inline constexpr int winograd_positions = (M + 2) * (M + 2);

// Tiles per chunk: a multiple of the register tile, with the chunk's V and M
// within ~256 KB.
template <class Arch, int M>
constexpr int winograd_max_chunk(int in_channels, int out_channels) {
  constexpr int P = conv_max_pixels<Arch>;
  const int by_cache = 65536 / (winograd_positions<M> * std::max(1, in_channels + out_channels));
  return std::max(P, by_cache / P * P);
}

template <class Arch, int M>
constexpr std::size_t winograd_scratch_floats(int in_channels, int out_channels) {
  constexpr std::size_t B = static_cast<std::size_t>(block_width<Arch>);
  const std::size_t cin = (static_cast<std::size_t>(in_channels) + B - 1) / B * B;
  const std::size_t cout = (static_cast<std::size_t>(out_channels) + 2 * B - 1) / (2 * B) * (2 * B);
  const std::size_t chunk = static_cast<std::size_t>(winograd_max_chunk<Arch, M>(in_channels, out_channels));
  // + one register tile of slack: the last, partial tile of a chunk reads past its end.
  return aligned_floats(winograd_positions<M> * (cin + cout) * chunk + conv_max_pixels<Arch> * B);
}

template <class Arch>
constexpr std::size_t winograd_weight_floats(int tile, int in_channels, int out_channels) {
  const std::size_t positions = static_cast<std::size_t>((tile + 2) * (tile + 2));
  return positions * packed_conv_floats<Arch>(in_channels, out_channels, 1, block_width<Arch>);
}

// U = G g G^T for every (out, in) pair, from weights scaled by the folded
// BatchNorm, in double and rounded once; laid out per position like a 1x1
// convolution's packed weights.
template <class Arch, int M>
void pack_winograd_weights(const float* w, std::span<const double> scale, int in_channels, int out_channels,
                           float* dst) {
  constexpr int B = block_width<Arch>;
  constexpr int T = M + 2;
  // G for interpolation points 0, 1, -1 (M = 2) and 0, +-1, +-2 (M = 4), and infinity.
  static constexpr double g2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static constexpr double g4[6][3] = {{1.0 / 4, 0, 0},
                                      {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                      {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                      {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                      {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                      {0, 0, 1}};
  const auto G = [&](int r, int c) { return M == 2 ? g2[r][c] : g4[r][c]; };
  const std::size_t per_position = packed_conv_floats<Arch>(in_channels, out_channels, 1, B);
  const int in_blocks = (in_channels + B - 1) / B;
  std::fill(dst, dst + winograd_positions<M> * per_position, 0.0f);
  for (int o = 0; o < out_channels; ++o)
    for (int i = 0; i < in_channels; ++i) {
      double g[3][3], t[T][3];
      for (int r = 0; r < 3; ++r)
        for (int s = 0; s < 3; ++s)
          g[r][s] = static_cast<double>(w[((static_cast<std::size_t>(o) * in_channels + i) * 3 + r) * 3 + s]) *
                    scale[static_cast<std::size_t>(o)];
      for (int r = 0; r < T; ++r)  // G g
        for (int s = 0; s < 3; ++s) t[r][s] = G(r, 0) * g[0][s] + G(r, 1) * g[1][s] + G(r, 2) * g[2][s];
      const int pair = o / (2 * B), half = o / B % 2, b = o % B, ib = i / B, l = i % B;
      const std::size_t at =
          ((static_cast<std::size_t>(pair) * in_blocks + ib) * B + l) * 2 * B + static_cast<std::size_t>(half * B + b);
      for (int r = 0; r < T; ++r)  // (G g) G^T
        for (int s = 0; s < T; ++s)
          dst[static_cast<std::size_t>(r * T + s) * per_position + at] =
              static_cast<float>(t[r][0] * G(s, 0) + t[r][1] * G(s, 1) + t[r][2] * G(s, 2));
    }
}

namespace detail {

// One-dimensional B^T d over T = M + 2 values.
template <class V, int M>
[[gnu::always_inline]] inline void winograd_in_1d(const typename V::vec (&d)[M + 2], typename V::vec (&v)[M + 2]) {
  if constexpr (M == 2) {
    v[0] = d[0] - d[2];
    v[1] = d[1] + d[2];
    v[2] = d[2] - d[1];
    v[3] = d[1] - d[3];
  } else {
    const auto four = V::set1(4.0f), five = V::set1(5.0f), two = V::set1(2.0f);
    const auto t1 = V::fma(V::set1(-4.0f), d[2], d[4]), t2 = V::fma(V::set1(-4.0f), d[1], d[3]);
    const auto t3 = d[4] - d[2], t4 = two * (d[3] - d[1]);
    v[0] = V::fma(four, d[0], d[4]) - five * d[2];
    v[1] = t1 + t2;
    v[2] = t1 - t2;
    v[3] = t3 + t4;
    v[4] = t3 - t4;
    v[5] = V::fma(four, d[1], d[5]) - five * d[3];
  }
}

// One-dimensional A^T m: M + 2 values to M.
template <class V, int M>
[[gnu::always_inline]] inline void winograd_out_1d(const typename V::vec (&m)[M + 2], typename V::vec (&y)[M]) {
  if constexpr (M == 2) {
    y[0] = m[0] + m[1] + m[2];
    y[1] = m[1] - m[2] - m[3];
  } else {
    const auto a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    y[0] = m[0] + a + c;
    y[1] = V::fma(V::set1(2.0f), d, b);
    y[2] = V::fma(V::set1(4.0f), c, a);
    y[3] = V::fma(V::set1(8.0f), d, b) + m[5];
  }
}

}  // namespace detail

// `scratch` holds `threads` blocks of `scratch_floats` (at least
// winograd_scratch_floats<Arch, M>); `zeros` is 2 * B zero floats (the
// products carry no bias).
template <class Arch, int M>
void run_winograd(const ConvSpec& c, const float* arena, const float* zeros, const Layout& in, const Layout& out,
                  const Layout* res, float* scratch, std::size_t scratch_floats, const Parallel& par) {
  using V = simd<Arch>;
  using vec = typename V::vec;
  constexpr int B = V::width;
  constexpr int P = conv_max_pixels<Arch>;
  constexpr int T = M + 2;
  constexpr int positions = winograd_positions<M>;
  const int in_blocks = static_cast<int>(in.blocks()), out_blocks = static_cast<int>(out.blocks());
  const int out_h = static_cast<int>(out.h), out_w = static_cast<int>(out.w);
  const int tiles_h = (out_h + M - 1) / M, tiles_w = (out_w + M - 1) / M;
  const long tiles = static_cast<long>(out.n) * tiles_h * tiles_w;
  const std::size_t per_position = packed_conv_floats<Arch>(c.in_channels, c.out_channels, 1, B);
  const std::size_t group_floats = per_position / static_cast<std::size_t>(c.groups);
  const int pair_blocks = 2 * c.groups;  // M has whole pairs of blocks

  // Chunks of at most the cache-sized maximum, in a multiple of the thread
  // count and of equal size, so that no thread waits for a last short one.
  const long max_chunk = winograd_max_chunk<Arch, M>(c.in_channels, c.out_channels);
  const long rounds = (tiles + max_chunk * par.threads - 1) / (max_chunk * par.threads);
  const int chunk = static_cast<int>((tiles + rounds * par.threads - 1) / (rounds * par.threads));
  const long chunks = (tiles + chunk - 1) / chunk;

  ConvTileArgs gemm;
  gemm.bias = zeros;
  gemm.in_block = static_cast<std::ptrdiff_t>(chunk) * B;
  gemm.in_row = 0;
  gemm.in_blocks = in_blocks;
  gemm.kernel = 1;
  const std::ptrdiff_t row = in.row();
  const std::size_t v_step = static_cast<std::size_t>(in_blocks) * chunk * B;     // floats between V positions
  const std::size_t m_step = static_cast<std::size_t>(pair_blocks) * chunk * B;   // floats between M positions

  const long borders = out.border ? static_cast<long>(out.n) * out_blocks : 0;
  par(borders + chunks, [&](long task, int participant) {
    if (task < borders) {
      clear_border<Arch>(out, static_cast<std::size_t>(task / out_blocks),
                         static_cast<std::size_t>(task % out_blocks));
      return;
    }
    float* vbuf = scratch + static_cast<std::size_t>(participant) * scratch_floats;
    float* mbuf = vbuf + positions * v_step;
    {
      const long ck = task - borders;
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
          const float* d = in.at(n, static_cast<std::size_t>(ib), M * ty - 1, M * tx - 1);
          vec u[T][T];  // u[r][s] = (B^T d)[r][s]
          for (int s = 0; s < T; ++s) {
            vec col[T], tcol[T];
            for (int r = 0; r < T; ++r) col[r] = V::load(d + r * row + s * B);
            detail::winograd_in_1d<V, M>(col, tcol);
            for (int r = 0; r < T; ++r) u[r][s] = tcol[r];
          }
          float* v = vbuf + (static_cast<std::size_t>(ib) * chunk + static_cast<std::size_t>(k)) * B;
          for (int r = 0; r < T; ++r) {
            vec rowv[T];
            detail::winograd_in_1d<V, M>(u[r], rowv);
            for (int s = 0; s < T; ++s) V::store(v + static_cast<std::size_t>(r * T + s) * v_step, rowv[s]);
          }
        }

      // The products: M[x] = U[x] V[x], a 1x1 convolution over tiles.
      const detail::conv_tile_fn tile_fn = &conv_tile<Arch, P, 1, B>;
      for (int x = 0; x < positions; ++x) {
        const float* vx = vbuf + static_cast<std::size_t>(x) * v_step;
        float* mx = mbuf + static_cast<std::size_t>(x) * m_step;
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
          vec s[M][T];  // s = A^T M, column by column
          for (int j = 0; j < T; ++j) {
            vec col[T], ycol[M];
            for (int r = 0; r < T; ++r) col[r] = V::load(m + static_cast<std::size_t>(r * T + j) * m_step);
            detail::winograd_out_1d<V, M>(col, ycol);
            for (int i = 0; i < M; ++i) s[i][j] = ycol[i];
          }
          for (int i = 0; i < M; ++i) {
            const int oy = M * ty + i;
            if (oy >= out_h) break;
            vec y[M];
            detail::winograd_out_1d<V, M>(s[i], y);
            for (int j = 0; j < M; ++j) {
              const int ox = M * tx + j;
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
  });
}

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu

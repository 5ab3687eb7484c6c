// Direct convolution on the channel-blocked layout (oneDNN's nChw16c idea):
// activations are [n][c / B][h][w][B] with B = one vector of floats, weights
// are packed per pair of output blocks as [ib][kh][kw][l][2][B]. A register
// tile holds 2 output blocks x P output pixels of one row (1 block x about
// 2P for the lone last block of an odd count, so that a 16-channel layer
// does not spend half its FMAs on the pair's zero padding); the whole
// reduction over input channels and kernel taps stays in registers, and the
// epilogue (bias, residual add, ReLU) runs once on the registers before the
// single store. Each output element is produced by exactly one tile with a
// fixed summation order, so results do not depend on the thread count.
//
// Padding is physical: every activation carries a zero border at least as
// wide as its consumers' padding, so the inner loops have no bounds checks.
#pragma once

#include <cstddef>
#include <utility>

#include "ctnn/backend/cpu/simd.hpp"

namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

// Output blocks per register tile. Two keeps the load:FMA ratio at
// (P + 2) : 2P while leaving room for P up to 14 on AVX-512.
inline constexpr int conv_tile_blocks = 2;

// The largest P that fits the register file: Blocks x P accumulators,
// Blocks weight vectors, 1 broadcast, and a temporary when a*b+c is not fused.
template <class Arch, int Blocks = conv_tile_blocks>
inline constexpr int conv_max_pixels =
    (simd<Arch>::registers - Blocks - 1 - (simd<Arch>::native_fma ? 0 : 1)) / Blocks;

// Per-convolution arguments shared by all tiles of one step.
struct ConvTileArgs {
  const float* weights = nullptr;  // packed weights of this tile's output-block pair
  const float* bias = nullptr;     // 2 * B folded biases of the pair
  std::ptrdiff_t in_block = 0;     // floats between input channel blocks
  std::ptrdiff_t in_row = 0;       // floats between input rows
  int in_blocks = 0;               // input channel blocks (the reduction's outer loop)
  int kernel = 1;
  int stride = 1;                  // only read by the generic (S == 0) kernel
  int lanes = 1;                   // input channels per block; only read when L == 0
  bool relu = false;
  // Weights the next tiles will need, pulled towards L2 a few cache lines per
  // input block while this tile computes (weight-bound late layers).
  const char* prefetch = nullptr;
  int prefetch_lines = 0;  // per input block
};

namespace detail {
// Calls f(integral_constant<int, I>) for I = 0 .. N-1: a guaranteed unroll,
// so that register-tile arrays indexed by I become registers.
template <class F, int... I>
[[gnu::always_inline]] inline void unroll_each(F& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
[[gnu::always_inline]] inline void unroll(F&& f) {
  unroll_each(f, std::make_integer_sequence<int, N>{});
}
}  // namespace detail

// One register tile: P consecutive output pixels of one row, `Blocks` (2, or
// 1 for a pair whose second block is only padding) output blocks. `in`
// points at the input pixel under the tile's first output pixel and first
// kernel tap (border included); out0/out1 (and res0/res1, if non-null) at the
// tile's first output pixel in blocks 0 and 1; out1 is not written by a
// one-block tile. Only the first `valid` pixels are stored (rows narrower
// than P). S and L are compile-time stride and lanes; 0 means "read from
// args". `flatten` inlines every helper and lambda into the kernel: one call
// left out of line (the compiler's choice, which varies with the translation
// unit) would send the accumulators through memory and cost 5x.
template <class Arch, int P, int S, int L, int Blocks = conv_tile_blocks>
[[gnu::flatten]] void conv_tile(const ConvTileArgs& a, const float* in, float* out0, float* out1, const float* res0,
                                const float* res1, int valid) noexcept {
  static_assert(Blocks == 1 || Blocks == 2, "weights are packed per pair of output blocks");
  using V = simd<Arch>;
  using vec = typename V::vec;
  constexpr int B = V::width;
  const int lanes = L ? L : a.lanes;
  const std::ptrdiff_t px = static_cast<std::ptrdiff_t>(S ? S : a.stride) * lanes;  // input floats per output pixel

  // Two flat accumulator arrays (the second unused by a one-block tile):
  // g++ keeps them in registers, where a 2-D array went through the stack in
  // one of the kernel's clones.
  vec acc0[P], acc1[P];
  detail::unroll<P>([&](auto j) {
    acc0[j] = V::zero();
    if constexpr (Blocks > 1) acc1[j] = V::zero();
  });

  const float* w = a.weights;
  for (int ib = 0; ib < a.in_blocks; ++ib) {
    if (a.prefetch)
      for (int q = 0; q < a.prefetch_lines; ++q) __builtin_prefetch(a.prefetch + (ib * a.prefetch_lines + q) * 64, 0, 2);
    const float* in_b = in + ib * a.in_block;
    for (int kh = 0; kh < a.kernel; ++kh) {
      const float* in_r = in_b + kh * a.in_row;
      for (int kw = 0; kw < a.kernel; ++kw) {
        const float* x = in_r + kw * lanes;
        // Per input lane: the blocks' weight vectors, then every pixel's
        // input value broadcast once into every block. (Written out twice
        // rather than through a shared lambda: g++ then spills the RGB
        // stem's accumulators.)
        if constexpr (L != 0) {
#pragma GCC unroll 4
          for (int l = 0; l < L; ++l) {
            const vec w0 = V::load(w), w1 = Blocks > 1 ? V::load(w + B) : w0;
            w += 2 * B;
            detail::unroll<P>([&](auto j) {
              const vec xb = V::set1(x[j * px + l]);
              acc0[j] = V::fma(w0, xb, acc0[j]);
              if constexpr (Blocks > 1) acc1[j] = V::fma(w1, xb, acc1[j]);
            });
          }
        } else {
          for (int l = 0; l < lanes; ++l) {
            const vec w0 = V::load(w), w1 = Blocks > 1 ? V::load(w + B) : w0;
            w += 2 * B;
            detail::unroll<P>([&](auto j) {
              const vec xb = V::set1(x[j * px + l]);
              acc0[j] = V::fma(w0, xb, acc0[j]);
              if constexpr (Blocks > 1) acc1[j] = V::fma(w1, xb, acc1[j]);
            });
          }
        }
      }
    }
  }

  // Epilogue: bias (BatchNorm folded in), residual, ReLU, one store.
  const vec zero = V::zero();
  const vec b0 = V::load(a.bias);
  detail::unroll<P>([&](auto j) {
    if (j >= valid) return;
    vec y0 = acc0[j] + b0;
    if (res0) y0 = y0 + V::load(res0 + j * B);
    if (a.relu) y0 = V::max(y0, zero);
    V::store(out0 + j * B, y0);
  });
  if constexpr (Blocks > 1)
    if (out1) {
      const vec b1 = V::load(a.bias + B);
      detail::unroll<P>([&](auto j) {
        if (j >= valid) return;
        vec y1 = acc1[j] + b1;
        if (res1) y1 = y1 + V::load(res1 + j * B);
        if (a.relu) y1 = V::max(y1, zero);
        V::store(out1 + j * B, y1);
      });
    }
}

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu

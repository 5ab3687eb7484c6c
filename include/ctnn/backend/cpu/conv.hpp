// One convolution step of the CPU backend: weight packing (done once, when the
// executor is built) and the driver that covers the output with register
// tiles (conv_kernel.hpp) across OpenMP threads.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

#include "ctnn/backend/cpu/conv_kernel.hpp"
#include "ctnn/backend/cpu/layout.hpp"
#include "ctnn/backend/cpu/thread_pool.hpp"

namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

// A convolution after BatchNorm folding, with its fused epilogue.
struct ConvSpec {
  int in_channels = 0, out_channels = 0, kernel = 1, stride = 1, padding = 0;
  int in_lanes = 1;              // lanes of the input value's layout
  int groups = 0;                // pairs of output blocks
  std::size_t group_floats = 0;  // packed weight floats per pair
  std::size_t weights = 0;       // offset of the packed weights in the executor's arena
  std::size_t bias = 0;          // offset of groups * 2 * B folded biases
  bool relu = false;
  int winograd = 0;              // 2 or 4: F(MxM, 3x3) instead of direct (winograd.hpp)
  // A max pooling fused after the epilogue (the ResNet stem): 0 = none.
  int pool_kernel = 0, pool_stride = 1, pool_padding = 0;
};

template <class Arch>
constexpr std::size_t packed_conv_floats(int in_channels, int out_channels, int kernel, int in_lanes) {
  constexpr std::size_t B = static_cast<std::size_t>(block_width<Arch>);
  const std::size_t out_blocks = (static_cast<std::size_t>(out_channels) + B - 1) / B;
  const std::size_t groups = (out_blocks + 1) / 2;
  const std::size_t in_blocks = (static_cast<std::size_t>(in_channels) + in_lanes - 1) / in_lanes;
  return groups * in_blocks * static_cast<std::size_t>(kernel * kernel * in_lanes) * 2 * B;
}

// Packs PyTorch weights [out][in][k][k], each output row multiplied by
// scale[o] (the folded BatchNorm; computed in double and rounded once; an
// empty `scale` packs the weights as they are, as training does), into
// [pair][in block][kh][kw][lane][2][B]. Padding channels get zero weights.
template <class Arch>
void pack_conv_weights(const float* w, std::span<const double> scale, int in_channels, int out_channels, int kernel,
                       int in_lanes, float* dst) {
  constexpr int B = block_width<Arch>;
  const int out_blocks = (out_channels + B - 1) / B;
  const int groups = (out_blocks + 1) / 2;
  const int in_blocks = (in_channels + in_lanes - 1) / in_lanes;
  std::size_t at = 0;
  for (int g = 0; g < groups; ++g)
    for (int ib = 0; ib < in_blocks; ++ib)
      for (int kh = 0; kh < kernel; ++kh)
        for (int kw = 0; kw < kernel; ++kw)
          for (int l = 0; l < in_lanes; ++l)
            for (int r = 0; r < 2; ++r)
              for (int b = 0; b < B; ++b, ++at) {
                const int o = (2 * g + r) * B + b, i = ib * in_lanes + l;
                float v = 0.0f;
                if (o < out_channels && i < in_channels) {
                  const std::size_t src =
                      ((static_cast<std::size_t>(o) * in_channels + i) * kernel + kh) * kernel + kw;
                  v = scale.empty() ? w[src]
                                    : static_cast<float>(static_cast<double>(w[src]) * scale[static_cast<std::size_t>(o)]);
                }
                dst[at] = v;
              }
}

namespace detail {

using conv_tile_fn = void (*)(const ConvTileArgs&, const float*, float*, float*, const float*, const float*, int);

// The register-tile widths compiled for each instruction set and block
// count: the widest that fits, and roughly its half and quarter for narrow
// rows (one-block tiles: twice the pair's widest, capped by the registers,
// then the pair's widths). Few variants keep the backend cheap to compile;
// the tile planner overlaps or masks the last tile of a row instead.
template <class Arch, int Blocks = conv_tile_blocks>
inline constexpr std::array<int, 3> tile_pixels =
    Blocks == 1 ? std::array<int, 3>{std::min(conv_max_pixels<Arch, 1>, 2 * conv_max_pixels<Arch>),
                                     conv_max_pixels<Arch>, (conv_max_pixels<Arch> + 1) / 2}
                : std::array<int, 3>{conv_max_pixels<Arch>, (conv_max_pixels<Arch> + 1) / 2,
                                     std::max(1, (conv_max_pixels<Arch> + 3) / 4)};

// Relative throughput of each tile width (a pair's load:FMA ratio is (P+2):2P).
inline constexpr std::array<double, 3> tile_efficiency = {1.0, 0.95, 0.8};

template <class Arch, int S, int L, int Blocks>
conv_tile_fn tile_kernel(int which) {
  constexpr auto P = tile_pixels<Arch, Blocks>;
  switch (which) {
    case 0: return &conv_tile<Arch, P[0], S, L, Blocks>;
    case 1: return &conv_tile<Arch, P[1], S, L, Blocks>;
    default: return &conv_tile<Arch, P[2], S, L, Blocks>;
  }
}

}  // namespace detail

// How one row of output pixels is covered with tiles of one width.
struct RowTiling {
  int which = 0;  // index into tile_pixels
  int pixels = 1;
  int tiles = 1;
};

template <class Arch, int Blocks = conv_tile_blocks>
RowTiling plan_row(int out_w) {
  RowTiling best{};
  double best_cost = 0;
  for (int k = 0; k < 3; ++k) {
    const int p = detail::tile_pixels<Arch, Blocks>[static_cast<std::size_t>(k)];
    const int tiles = (out_w + p - 1) / p;
    const double cost = tiles * p / detail::tile_efficiency[static_cast<std::size_t>(k)];
    if (k == 0 || cost < best_cost) {
      best = {k, p, tiles};
      best_cost = cost;
    }
  }
  return best;
}

// Floats a consumer convolution may read past the end of its input's last
// row: a tile wider than the row reads whole tile widths (the widest tile
// is a one-block tile's).
template <class Arch>
constexpr std::size_t conv_read_slack(int stride, int lanes, int kernel) {
  return static_cast<std::size_t>((detail::tile_pixels<Arch, 1>[0] * stride + kernel) * lanes);
}

namespace detail {

// The tile kernel for a convolution and the tile width it uses on rows of
// `out_w` pixels, for tiles of `Blocks` output blocks. Specialised kernels
// for the blocked layout at stride 1 and 2 and for an RGB stem; anything else
// (other strides, plain or other narrow inputs) takes the generic kernel,
// which reads stride and lanes at run time.
template <class Arch, int Blocks = conv_tile_blocks>
conv_tile_fn select_kernel(const ConvSpec& c, int out_w, int& pixels) {
  constexpr int B = block_width<Arch>;
  const RowTiling tiling = plan_row<Arch, Blocks>(out_w);
  conv_tile_fn kernel = nullptr;
  if (c.in_lanes == B && c.stride == 1) {
    kernel = tile_kernel<Arch, 1, B, Blocks>(tiling.which);
  } else if (c.in_lanes == B && c.stride == 2) {
    kernel = tile_kernel<Arch, 2, B, Blocks>(tiling.which);
  } else if constexpr (B > 3) {
    if (c.in_lanes == 3 && c.stride == 2) kernel = tile_kernel<Arch, 2, 3, Blocks>(tiling.which);
  }
  if (kernel) {
    pixels = tiling.pixels;
    return kernel;
  }
  pixels = tile_pixels<Arch, Blocks>[2];
  return tile_kernel<Arch, 0, 0, Blocks>(2);
}

inline ConvTileArgs tile_args(const ConvSpec& c, const Layout& in) {
  ConvTileArgs a;
  a.in_block = in.plane();
  a.in_row = in.row();
  a.in_blocks = static_cast<int>(in.blocks());
  a.kernel = c.kernel;
  a.stride = c.stride;
  a.lanes = in.lanes;
  a.relu = c.relu;
  return a;
}

}  // namespace detail

// Runs one convolution over all items: out = act(conv(in) + bias [+ res]).
// `res` is null without a fused residual. Each output element is computed by
// one tile in a fixed order, so any thread count gives bit-identical results.
template <class Arch>
void run_conv(const ConvSpec& c, const float* arena, const Layout& in, const Layout& out, const Layout* res,
              const Parallel& par) {
  constexpr int B = block_width<Arch>;
  const int out_h = static_cast<int>(out.h), out_w = static_cast<int>(out.w);
  const int items = static_cast<int>(out.n);
  const int out_blocks = static_cast<int>(out.blocks());

  // Pairs of output blocks, and the lone last block of an odd count.
  int pair_pixels = 1, single_pixels = 1;
  const detail::conv_tile_fn pair_kernel = detail::select_kernel<Arch>(c, out_w, pair_pixels);
  const detail::conv_tile_fn single_kernel = detail::select_kernel<Arch, 1>(c, out_w, single_pixels);
  const ConvTileArgs base = detail::tile_args(c, in);

  // One output row of one item and one output-block pair; `prefetch` (or
  // null) is weights to pull towards L2 meanwhile.
  const auto row = [&](int n, int g, int oh, const char* prefetch, int prefetch_lines) {
    ConvTileArgs a = base;
    a.weights = arena + c.weights + static_cast<std::size_t>(g) * c.group_floats;
    a.bias = arena + c.bias + static_cast<std::size_t>(g) * 2 * B;
    a.prefetch = prefetch;
    a.prefetch_lines = prefetch_lines;
    const std::size_t b0 = static_cast<std::size_t>(2 * g), b1 = b0 + 1;
    const bool second = static_cast<int>(b1) < out_blocks;
    const detail::conv_tile_fn kernel = second ? pair_kernel : single_kernel;
    const int pixels = second ? pair_pixels : single_pixels, tiles = (out_w + pixels - 1) / pixels;
    const std::ptrdiff_t iy = static_cast<std::ptrdiff_t>(oh) * c.stride - c.padding;
    const auto i = static_cast<std::size_t>(n);
    for (int tile = 0; tile < tiles; ++tile) {
      // The last tile is shifted left to end at the row's end; where the
      // row is narrower than a tile, it is stored partially instead.
      const int ow = std::max(0, std::min(tile * pixels, out_w - pixels));
      const std::ptrdiff_t ix = static_cast<std::ptrdiff_t>(ow) * c.stride - c.padding;
      kernel(a, in.at(i, 0, iy, ix), out.at(i, b0, oh, ow), second ? out.at(i, b1, oh, ow) : nullptr,
             res ? res->at(i, b0, oh, ow) : nullptr, res && second ? res->at(i, b1, oh, ow) : nullptr,
             std::min(pixels, out_w));
      a.prefetch = nullptr;
    }
  };

  const long borders = out.border ? static_cast<long>(items) * out_blocks : 0;
  const auto clear = [&](long t) {
    clear_border<Arch>(out, static_cast<std::size_t>(t / out_blocks), static_cast<std::size_t>(t % out_blocks));
  };

  // Late layers (weights outweigh one item's input): pairs outermost, so a
  // pair's weights stay in L2 across all its rows and items, each thread
  // taking one contiguous range of pairs and prefetching the next pair's
  // weights while the current one computes. Early layers: one task per
  // output row, all pairs, so the input rows stay in cache across pairs.
  const bool pairs_outer = c.group_floats * static_cast<std::size_t>(c.groups) > static_cast<std::size_t>(in.item());
  if (pairs_outer) {
    const long units = static_cast<long>(c.groups) * items;  // (pair, item), pair-major
    const long ranges = std::min<long>(units, par.threads);
    const long lines = static_cast<long>(c.group_floats * sizeof(float) / 64);
    const long rows_per_pair = static_cast<long>(items) * out_h;
    const long per_row = (lines + rows_per_pair - 1) / rows_per_pair;
    par(borders + ranges, [&](long t, int) {
      if (t < borders) return clear(t);
      const long r = t - borders, first = r * units / ranges, last = (r + 1) * units / ranges;
      for (long u = first; u < last; ++u) {
        const int g = static_cast<int>(u / items), n = static_cast<int>(u % items);
        const bool prefetch = g + 1 < c.groups && (static_cast<long>(g) + 1) * items < last;
        for (int oh = 0; oh < out_h; ++oh) {
          const long begin = std::min(lines, per_row * (static_cast<long>(n) * out_h + oh));
          const int count = static_cast<int>((std::min(per_row, lines - begin) + base.in_blocks - 1) / base.in_blocks);
          const float* next = arena + c.weights + static_cast<std::size_t>(g + 1) * c.group_floats;
          row(n, g, oh, prefetch ? reinterpret_cast<const char*>(next) + begin * 64 : nullptr, count);
        }
      }
    });
  } else {
    par(borders + static_cast<long>(items) * out_h, [&](long t, int) {
      if (t < borders) return clear(t);
      const long r = t - borders;
      for (int g = 0; g < c.groups; ++g)
        row(static_cast<int>(r / out_h), g, static_cast<int>(r % out_h), nullptr, 0);
    });
  }
}

// Floats of one thread's ring of convolution rows for a fused max pooling.
template <class Arch>
constexpr std::size_t conv_pool_scratch_floats(const ConvSpec& c, std::size_t conv_w) {
  return static_cast<std::size_t>(c.pool_kernel) * 2 * conv_w * static_cast<std::size_t>(block_width<Arch>);
}

// Convolution (with its epilogue) followed by max pooling, without storing
// the convolution's output: each task owns a band of pooled rows of one
// output-block pair and keeps the last `pool_kernel` convolution rows in a
// ring in its thread's scratch, so every convolution row is computed once
// per band (and once more at a band's first window). At batch 8 the ResNet
// stem's output is 26 MB, which this keeps out of memory. `conv_h`/`conv_w`
// are the convolution's output size, `res` (if any) has that size.
template <class Arch>
void run_conv_pool(const ConvSpec& c, const float* arena, const Layout& in, int conv_h, int conv_w, const Layout& out,
                   const Layout* res, float* scratch, std::size_t scratch_floats, const Parallel& par) {
  using V = simd<Arch>;
  constexpr int B = V::width;
  const int items = static_cast<int>(out.n);
  const int out_blocks = static_cast<int>(out.blocks());
  const int pool_h = static_cast<int>(out.h), pool_w = static_cast<int>(out.w);
  const int pk = c.pool_kernel, ps = c.pool_stride, pp = c.pool_padding;

  int pixels = 1;
  const detail::conv_tile_fn kernel = detail::select_kernel<Arch>(c, conv_w, pixels);
  const int tiles = (conv_w + pixels - 1) / pixels;
  const ConvTileArgs base = detail::tile_args(c, in);
  const std::size_t row_floats = 2 * static_cast<std::size_t>(conv_w) * B;  // both blocks of a pair

  // Bands of pooled rows: enough tasks for every thread, few band starts.
  const long per_band_set = static_cast<long>(items) * c.groups;
  const int bands =
      static_cast<int>(std::clamp<long>((4L * par.threads + per_band_set - 1) / per_band_set, 1, pool_h));
  const int band_rows = (pool_h + bands - 1) / bands;
  const long band_count = (pool_h + band_rows - 1) / band_rows;
  const long tasks = per_band_set * band_count;

  const long borders = out.border ? static_cast<long>(items) * out_blocks : 0;
  par(borders + tasks, [&](long task, int participant) {
    if (task < borders) {
      clear_border<Arch>(out, static_cast<std::size_t>(task / out_blocks),
                         static_cast<std::size_t>(task % out_blocks));
      return;
    }
    {
      const long t = task - borders;
      float* ring = scratch + static_cast<std::size_t>(participant) * scratch_floats;
      const auto n = static_cast<std::size_t>(t / (c.groups * band_count));
      const int g = static_cast<int>(t / band_count % c.groups);
      const int band = static_cast<int>(t % band_count);
      ConvTileArgs a = base;
      a.weights = arena + c.weights + static_cast<std::size_t>(g) * c.group_floats;
      a.bias = arena + c.bias + static_cast<std::size_t>(g) * 2 * B;
      const std::size_t b0 = static_cast<std::size_t>(2 * g), b1 = b0 + 1;
      const bool second = static_cast<int>(b1) < out_blocks;

      const auto conv_row = [&](int cy) {
        float* r = ring + static_cast<std::size_t>(cy % pk) * row_floats;
        const std::ptrdiff_t iy = static_cast<std::ptrdiff_t>(cy) * c.stride - c.padding;
        for (int tile = 0; tile < tiles; ++tile) {
          const int ow = std::max(0, std::min(tile * pixels, conv_w - pixels));
          const std::ptrdiff_t ix = static_cast<std::ptrdiff_t>(ow) * c.stride - c.padding;
          float* o = r + static_cast<std::size_t>(ow) * B;
          kernel(a, in.at(n, 0, iy, ix), o, o + static_cast<std::size_t>(conv_w) * B,
                 res ? res->at(n, b0, cy, ow) : nullptr, res && second ? res->at(n, b1, cy, ow) : nullptr,
                 std::min(pixels, conv_w));
        }
      };

      int next_row = 0;  // first convolution row not yet in the ring
      const int py_end = std::min(pool_h, (band + 1) * band_rows);
      for (int py = band * band_rows; py < py_end; ++py) {
        const int lo = std::max(0, py * ps - pp), hi = std::min(conv_h - 1, py * ps - pp + pk - 1);
        for (int cy = std::max(next_row, lo); cy <= hi; ++cy) conv_row(cy);
        next_row = std::max(next_row, hi + 1);
        for (int ox = 0; ox < pool_w; ++ox) {
          const int x0 = ox * ps - pp;
          const int kx0 = std::max(0, -x0), kx1 = std::min(pk, conv_w - x0);
          for (int r = 0; r < (second ? 2 : 1); ++r) {
            auto m = V::set1(-std::numeric_limits<float>::infinity());
            for (int cy = lo; cy <= hi; ++cy) {
              const float* row = ring + static_cast<std::size_t>(cy % pk) * row_floats +
                                 static_cast<std::size_t>(r) * conv_w * B + static_cast<std::ptrdiff_t>(x0) * B;
              for (int kx = kx0; kx < kx1; ++kx) m = V::max(m, V::load(row + kx * B));
            }
            V::store(out.at(n, b0 + static_cast<std::size_t>(r), py, ox), m);
          }
        }
      }
    }
  });
}

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu

// Where one activation lives in the CPU backend's workspace, and the reorders
// between it and the caller's NCHW tensors.
//
// Every value is stored as [n][c / lanes][h + 2b][w + 2b][lanes]: lanes = the
// vector width B between convolutions (nChw16c on AVX-512), lanes = C for a
// narrow network input (C < B, e.g. RGB, so the stem does not multiply 13 zero
// channels), and lanes = 1 for plain NCHW (pooled features, logits). The zero
// border b is the largest padding of the value's convolution consumers, which
// keeps bounds checks out of the conv kernels. Channels beyond C in the last
// block are zero or at least finite; packed weights ignore them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "ctnn/core/tensor.hpp"

// The loops here are templates on the instruction set only so that each -m
// flag set gets its own symbols (see simd.hpp).
namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

struct Layout {
  float* data = nullptr;
  std::size_t n = 0, c = 0, h = 0, w = 0;
  int lanes = 1;
  int border = 0;

  Layout() = default;
  Layout(float* data_, std::size_t n_, std::size_t c_, std::size_t h_, std::size_t w_, int lanes_, int border_)
      : data(data_), n(n_), c(c_), h(h_), w(w_), lanes(lanes_), border(border_) {
    // Strides are cached: kernels address pixels in their inner loops.
    const std::size_t l = static_cast<std::size_t>(lanes), b = static_cast<std::size_t>(border);
    blocks_ = (c + l - 1) / l;
    row_ = static_cast<std::ptrdiff_t>((w + 2 * b) * l);
    plane_ = static_cast<std::ptrdiff_t>(h + 2 * b) * row_;
    item_ = static_cast<std::ptrdiff_t>(blocks_) * plane_;
  }

  std::size_t blocks() const { return blocks_; }
  std::ptrdiff_t row() const { return row_; }
  std::ptrdiff_t plane() const { return plane_; }
  std::ptrdiff_t item() const { return item_; }
  std::size_t floats() const { return n * static_cast<std::size_t>(item_); }
  // True when the storage is exactly the NCHW tensor the caller expects.
  bool is_nchw() const { return lanes == 1 && border == 0; }

  // Address of lane 0 of block `cb` at interior pixel (y, x) of item `i`;
  // y and x may be negative down to -border.
  // `channels` channels from block `first_block` on, in this layout's memory
  // (same strides): one slice of a grouped convolution's input or output.
  Layout channel_slice(std::size_t first_block, std::size_t channels) const {
    Layout s = *this;
    s.data = data + static_cast<std::ptrdiff_t>(first_block) * plane_;
    s.c = channels;
    s.blocks_ = (channels + static_cast<std::size_t>(lanes) - 1) / static_cast<std::size_t>(lanes);
    return s;
  }

  float* at(std::size_t i, std::size_t cb, std::ptrdiff_t y, std::ptrdiff_t x) const {
    return data + static_cast<std::ptrdiff_t>(i) * item() + static_cast<std::ptrdiff_t>(cb) * plane() +
           (y + border) * row() + (x + border) * lanes;
  }
  float& operator()(std::size_t i, std::size_t ch, std::size_t y, std::size_t x) const {
    return at(i, ch / static_cast<std::size_t>(lanes), static_cast<std::ptrdiff_t>(y),
              static_cast<std::ptrdiff_t>(x))[ch % static_cast<std::size_t>(lanes)];
  }

 private:
  std::size_t blocks_ = 0;
  std::ptrdiff_t row_ = 0, plane_ = 0, item_ = 0;
};

// Zeroes the border of block `cb` of item `i`, so that convolutions read
// zeros outside the image.
template <class Arch>
void clear_border(const Layout& l, std::size_t i, std::size_t cb) {
  const std::size_t b = static_cast<std::size_t>(l.border);
  if (!b) return;
  float* p = l.data + static_cast<std::ptrdiff_t>(i) * l.item() + static_cast<std::ptrdiff_t>(cb) * l.plane();
  const std::size_t row = static_cast<std::size_t>(l.row());
  std::memset(p, 0, b * row * sizeof(float));
  std::memset(p + (b + l.h) * row, 0, b * row * sizeof(float));
  const std::size_t side = b * static_cast<std::size_t>(l.lanes);
  for (std::size_t y = 0; y < l.h; ++y) {
    float* r = p + (b + y) * row;
    std::memset(r, 0, side * sizeof(float));
    std::memset(r + side + l.w * static_cast<std::size_t>(l.lanes), 0, side * sizeof(float));
  }
}

// Zeroes the lanes past the last channel in the last block of item `i`
// (values whose producer does not write them, such as the network input).
template <class Arch>
void clear_unused_lanes(const Layout& l, std::size_t i) {
  const std::size_t lanes = static_cast<std::size_t>(l.lanes);
  const std::size_t used = l.c - (l.blocks() - 1) * lanes;
  if (used == lanes) return;
  for (std::size_t y = 0; y < l.h; ++y)
    for (std::size_t x = 0; x < l.w; ++x) {
      float* v = l.at(i, l.blocks() - 1, static_cast<std::ptrdiff_t>(y), static_cast<std::ptrdiff_t>(x));
      std::fill(v + used, v + lanes, 0.0f);
    }
}

// Copies row `y` of item `i` of an NCHW tensor into `dst` (interior only).
template <class Arch>
void nchw_row_to_layout(ConstTensorView src, std::size_t i, std::size_t y, const Layout& dst) {
  const std::size_t lanes = static_cast<std::size_t>(dst.lanes);
  for (std::size_t ch = 0; ch < dst.c; ++ch) {
    const float* s = src.data + ((i * src.shape.c + ch) * src.shape.h + y) * src.shape.w;
    float* d = dst.at(i, ch / lanes, static_cast<std::ptrdiff_t>(y), 0) + ch % lanes;
    if (lanes == 1) {
      std::memcpy(d, s, dst.w * sizeof(float));
    } else {
      for (std::size_t x = 0; x < dst.w; ++x) d[x * lanes] = s[x];
    }
  }
}

// Copies item `i` of `src` into a dense NCHW buffer.
template <class Arch>
void layout_to_nchw(const Layout& src, std::size_t i, float* dst) {
  const std::size_t lanes = static_cast<std::size_t>(src.lanes);
  for (std::size_t ch = 0; ch < src.c; ++ch) {
    float* d = dst + (i * src.c + ch) * src.h * src.w;
    for (std::size_t y = 0; y < src.h; ++y) {
      const float* s = src.at(i, ch / lanes, static_cast<std::ptrdiff_t>(y), 0) + ch % lanes;
      for (std::size_t x = 0; x < src.w; ++x) d[y * src.w + x] = s[x * lanes];
    }
  }
}

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu

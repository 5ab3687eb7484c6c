// torchvision's ImageNet preprocessing for ResNets, on 8-bit RGB images:
//
//   transforms.Compose([Resize(256), CenterCrop(224), ToTensor(),
//                       Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
//
// applied to a PIL image, as every torchvision classification preset does
// (transforms/_presets.py, ImageClassification; ResNet-50 IMAGENET1K_V2
// resizes to 232 instead of 256).
//
// Resize on a PIL image is PIL's own resampler (Pillow's libImaging/Resample.c)
// with the bilinear filter: a triangle whose support grows with the downscale
// factor (antialiasing), separable, horizontal pass first, each pass rounded
// to 8 bits with 22-bit fixed-point weights. resize_bilinear reproduces that
// arithmetic step by step (written from the algorithm's description, not from
// Pillow's code), so on identical decoded pixels the result is bit-identical
// to Pillow's; docs/interop.md has the measured agreement with torchvision.
// stb_image_resize is not used: its default filters (Mitchell down, Catmull-
// Rom up) and float pipeline differ from PIL by several grey levels.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ctnn/core/tensor.hpp"
#include "ctnn/io/image.hpp"

namespace ctnn::io {

struct Normalization {
  std::array<float, 3> mean, std;
};
inline constexpr Normalization imagenet_normalization{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};

// Resize(resize) -> CenterCrop(crop) -> ToTensor -> Normalize.
struct ImageTransform {
  int resize = 256;  // shorter side after resizing (0: no resize)
  int crop = 224;    // square centre crop (0: no crop)
  Normalization normalization = imagenet_normalization;
};

namespace detail::resample {

// Pillow keeps 22 fractional bits: 8 bits of pixel, 2 bits of headroom for
// negative lobes of other filters, 22 of weight in a 32-bit accumulator.
inline constexpr int precision_bits = 32 - 8 - 2;

// Rounds through memory. Compilers may fuse a multiply and an add into one FMA
// (GCC does by default, even across statements); Pillow, compiled for baseline
// x86-64, rounds each product, and a one-ulp shift of a sample position can
// move a filter bound or a weight's last bit.
inline double rounded(double x) {
  volatile double v = x;
  return v;
}

inline double triangle(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// For each output sample along one axis: the first input index, the number of
// inputs, and their fixed-point weights (ksize slots each).
struct Kernel {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<std::int32_t> weights;
};

inline Kernel make_kernel(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;  // the triangle's support is 1 at scale 1
  Kernel k;
  k.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  const auto ks = static_cast<std::size_t>(k.ksize);
  k.first.resize(static_cast<std::size_t>(out_size));
  k.count.resize(static_cast<std::size_t>(out_size));
  k.weights.assign(static_cast<std::size_t>(out_size) * ks, 0);
  std::vector<double> w(ks);
  const double ss = 1.0 / filterscale;
  for (int o = 0; o < out_size; ++o) {
    const double center = rounded((o + 0.5) * scale);
    // (int) truncates towards zero, as in C; the clamp handles the negatives.
    int lo = static_cast<int>(center - support + 0.5);
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int n = hi - lo;
    double total = 0.0;
    for (int i = 0; i < n; ++i) {
      w[static_cast<std::size_t>(i)] = triangle(rounded((i + lo - center + 0.5) * ss));
      total += w[static_cast<std::size_t>(i)];
    }
    const auto base = static_cast<std::size_t>(o) * ks;
    for (int i = 0; i < n; ++i) {
      double v = w[static_cast<std::size_t>(i)];
      if (total != 0.0) v /= total;
      const double scaled = v * (1 << precision_bits);
      k.weights[base + static_cast<std::size_t>(i)] =
          static_cast<std::int32_t>(v < 0 ? -0.5 + scaled : 0.5 + scaled);
    }
    k.first[static_cast<std::size_t>(o)] = lo;
    k.count[static_cast<std::size_t>(o)] = n;
  }
  return k;
}

inline std::uint8_t clip8(std::int32_t acc) {
  const std::int32_t v = acc >> precision_bits;
  return static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

}  // namespace detail::resample

// PIL's Image.resize((width, height), Image.BILINEAR) on an RGB image.
inline RgbImage resize_bilinear(const RgbImage& in, int width, int height) {
  namespace r = detail::resample;
  if (width <= 0 || height <= 0)
    throw std::invalid_argument("ctnn: resize to " + std::to_string(width) + "x" + std::to_string(height) +
                                " pixels: sizes must be positive");
  if (in.width <= 0 || in.height <= 0 ||
      in.pixels.size() != static_cast<std::size_t>(in.width) * static_cast<std::size_t>(in.height) * 3)
    throw std::invalid_argument("ctnn: resize of an empty or inconsistent image");
  if (width == in.width && height == in.height) return in;

  // Horizontal pass (skipped when the width does not change: the kernel would
  // be the identity).
  RgbImage tmp;
  const RgbImage* src = &in;
  if (width != in.width) {
    const r::Kernel k = r::make_kernel(in.width, width);
    tmp.width = width;
    tmp.height = in.height;
    tmp.pixels.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(in.height) * 3);
    for (int y = 0; y < in.height; ++y) {
      const std::uint8_t* row = in.pixels.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(in.width) * 3;
      std::uint8_t* out = tmp.pixels.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(width) * 3;
      for (int x = 0; x < width; ++x) {
        const std::int32_t* w = k.weights.data() + static_cast<std::size_t>(x) * static_cast<std::size_t>(k.ksize);
        const std::uint8_t* p = row + static_cast<std::size_t>(k.first[static_cast<std::size_t>(x)]) * 3;
        std::int32_t a0 = 1 << (r::precision_bits - 1), a1 = a0, a2 = a0;
        for (int i = 0, n = k.count[static_cast<std::size_t>(x)]; i < n; ++i, p += 3) {
          a0 += p[0] * w[i];
          a1 += p[1] * w[i];
          a2 += p[2] * w[i];
        }
        out[3 * x] = r::clip8(a0);
        out[3 * x + 1] = r::clip8(a1);
        out[3 * x + 2] = r::clip8(a2);
      }
    }
    src = &tmp;
  }
  if (height == src->height) return tmp;  // only the width changed

  const r::Kernel k = r::make_kernel(src->height, height);
  RgbImage out;
  out.width = width;
  out.height = height;
  const std::size_t stride = static_cast<std::size_t>(width) * 3;
  out.pixels.resize(stride * static_cast<std::size_t>(height));
  std::vector<std::int32_t> acc(stride);
  for (int y = 0; y < height; ++y) {
    std::fill(acc.begin(), acc.end(), std::int32_t{1} << (r::precision_bits - 1));
    const std::int32_t* w = k.weights.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(k.ksize);
    const int first = k.first[static_cast<std::size_t>(y)];
    for (int i = 0, n = k.count[static_cast<std::size_t>(y)]; i < n; ++i) {
      const std::uint8_t* row = src->pixels.data() + static_cast<std::size_t>(first + i) * stride;
      for (std::size_t j = 0; j < stride; ++j) acc[j] += row[j] * w[i];
    }
    std::uint8_t* dst = out.pixels.data() + static_cast<std::size_t>(y) * stride;
    for (std::size_t j = 0; j < stride; ++j) dst[j] = r::clip8(acc[j]);
  }
  return out;
}

// torchvision's Resize(size) output size: the shorter side becomes `size`,
// the longer one int(size * long / short) (truncated, as Python's int()).
inline std::pair<int, int> shorter_side_size(int width, int height, int size) {
  const bool portrait = width <= height;
  const long long shorter = portrait ? width : height, longer = portrait ? height : width;
  const double scaled = static_cast<double>(static_cast<long long>(size) * longer) / static_cast<double>(shorter);
  if (!(scaled < 2147483647.0))
    throw std::invalid_argument("ctnn: resizing a " + std::to_string(width) + "x" + std::to_string(height) +
                                " image to a shorter side of " + std::to_string(size) + " overflows");
  const int other = static_cast<int>(scaled);
  return portrait ? std::pair{size, other} : std::pair{other, size};
}

inline RgbImage resize_shorter_side(const RgbImage& in, int size) {
  if (size <= 0) throw std::invalid_argument("ctnn: resize size must be positive, got " + std::to_string(size));
  const auto [w, h] = shorter_side_size(in.width, in.height, size);
  if (w <= 0 || h <= 0)
    throw std::invalid_argument("ctnn: a " + std::to_string(in.width) + "x" + std::to_string(in.height) +
                                " image resized to a shorter side of " + std::to_string(size) + " would be empty");
  return resize_bilinear(in, w, h);
}

// torchvision's CenterCrop: offsets round((size - crop) / 2) with Python's
// round-half-to-even (std::nearbyint in the default rounding mode does the
// same; std::lround would not: 117/2 -> 58 in Python, 59 with lround). An
// image smaller than the crop is first padded with zeros, (d // 2) before
// and ((d + 1) // 2) after, as torchvision does.
inline RgbImage center_crop(const RgbImage& in, int crop_height, int crop_width) {
  if (crop_height <= 0 || crop_width <= 0)
    throw std::invalid_argument("ctnn: crop sizes must be positive");
  int pad_left = 0, pad_top = 0, width = in.width, height = in.height;
  if (crop_width > width) {
    pad_left = (crop_width - width) / 2;
    width = crop_width;
  }
  if (crop_height > height) {
    pad_top = (crop_height - height) / 2;
    height = crop_height;
  }
  const int top = static_cast<int>(std::nearbyint((height - crop_height) / 2.0)) - pad_top;
  const int left = static_cast<int>(std::nearbyint((width - crop_width) / 2.0)) - pad_left;
  RgbImage out;
  out.width = crop_width;
  out.height = crop_height;
  out.pixels.assign(static_cast<std::size_t>(crop_width) * static_cast<std::size_t>(crop_height) * 3, 0);
  for (int y = 0; y < crop_height; ++y) {
    const int sy = y + top;
    if (sy < 0 || sy >= in.height) continue;
    for (int x = 0; x < crop_width; ++x) {
      const int sx = x + left;
      if (sx < 0 || sx >= in.width) continue;
      for (int c = 0; c < 3; ++c)
        out.pixels[(static_cast<std::size_t>(y) * static_cast<std::size_t>(crop_width) + static_cast<std::size_t>(x)) * 3 +
                   static_cast<std::size_t>(c)] = in.at(sy, sx, c);
    }
  }
  return out;
}

// ToTensor (v / 255 in float32) then Normalize ((x - mean) / std, float32),
// into a 3 x height x width planar span.
inline void to_normalized_chw(const RgbImage& img, std::span<float> out, const Normalization& norm = imagenet_normalization) {
  const std::size_t plane = static_cast<std::size_t>(img.width) * static_cast<std::size_t>(img.height);
  if (out.size() != 3 * plane) throw std::invalid_argument("ctnn: to_normalized_chw: output size mismatch");
  for (std::size_t c = 0; c < 3; ++c) {
    const float mean = norm.mean[c], std = norm.std[c];
    float* dst = out.data() + c * plane;
    for (std::size_t i = 0; i < plane; ++i) dst[i] = (static_cast<float>(img.pixels[3 * i + c]) / 255.0f - mean) / std;
  }
}

// One image through the whole transform, as an RGB image before ToTensor.
inline RgbImage transform_pixels(const RgbImage& img, const ImageTransform& t) {
  RgbImage r = t.resize > 0 ? resize_shorter_side(img, t.resize) : img;
  if (t.crop > 0) r = center_crop(r, t.crop, t.crop);
  return r;
}

// A batch (N x 3 x H x W). All images must come out the same size, which the
// centre crop guarantees; without a crop they must already agree.
inline Tensor preprocess(std::span<const RgbImage> images, const ImageTransform& t = {}) {
  if (images.empty()) throw std::invalid_argument("ctnn: preprocess needs at least one image");
  Tensor batch;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const RgbImage r = transform_pixels(images[i], t);
    if (i == 0) batch = Tensor(images.size(), 3, static_cast<std::size_t>(r.height), static_cast<std::size_t>(r.width));
    if (static_cast<std::size_t>(r.height) != batch.shape().h || static_cast<std::size_t>(r.width) != batch.shape().w)
      throw std::invalid_argument("ctnn: image " + std::to_string(i) + " is " + std::to_string(r.width) + "x" +
                                  std::to_string(r.height) + " after preprocessing, the first is " +
                                  std::to_string(batch.shape().w) + "x" + std::to_string(batch.shape().h) +
                                  "; use a centre crop to batch images of different sizes");
    to_normalized_chw(r, batch.view().item(i), t.normalization);
  }
  return batch;
}

}  // namespace ctnn::io

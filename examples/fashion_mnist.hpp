// Fashion-MNIST for the demo: the test set read from Debian's
// dataset-fashion-mnist package (gzip'd IDX), and the preprocessing that
// turns its 28x28 grey images into what an ImageNet-style ResNet takes:
// bilinear resize, replication to 3 channels, normalisation.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <ctnn/core/tensor.hpp>
#include <ctnn/io/idx.hpp>

namespace fashion_mnist {

inline constexpr std::string_view default_dir = "/usr/share/datasets/fashion-mnist";
inline constexpr std::array<std::string_view, 10> label_names = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
// Over the 60000 training images, pixel values scaled to [0, 1].
inline constexpr float mean = 0.2860f, stddev = 0.3530f;

struct TestSet {
  ctnn::io::IdxArray images;  // u8 [count, rows, cols]
  ctnn::io::IdxArray labels;  // u8 [count]

  std::size_t count() const { return images.shape[0]; }
  std::size_t rows() const { return images.shape[1]; }
  std::size_t cols() const { return images.shape[2]; }
  std::span<const std::uint8_t> image(std::size_t i) const { return images.u8().subspan(i * rows() * cols(), rows() * cols()); }
  int label(std::size_t i) const { return labels.u8()[i]; }
};

// Reads and cross-checks the two test-set files: image and label counts
// agree, every label names a class.
inline TestSet load_test_set(const std::filesystem::path& dir) {
  TestSet t{ctnn::io::read_idx(dir / "t10k-images-idx3-ubyte.gz"), ctnn::io::read_idx(dir / "t10k-labels-idx1-ubyte.gz")};
  t.images.expect(ctnn::io::IdxType::u8, 3);
  t.labels.expect(ctnn::io::IdxType::u8, 1);
  if (t.labels.shape[0] != t.images.shape[0])
    throw ctnn::io::LoadError(t.labels.source + ": " + std::to_string(t.labels.shape[0]) + " labels for " +
                              std::to_string(t.images.shape[0]) + " images in " + t.images.source);
  if (t.count() == 0 || t.rows() == 0 || t.cols() == 0) throw ctnn::io::LoadError(t.images.source + ": no images");
  for (std::uint8_t l : t.labels.u8())
    if (l >= label_names.size())
      throw ctnn::io::LoadError(t.labels.source + ": label " + std::to_string(l) + " is not one of the 10 classes");
  return t;
}

// Bilinear resize with PyTorch's align_corners=False convention (pixel
// centres line up; edges clamp), for one grey plane.
inline void resize_bilinear(std::span<const std::uint8_t> src, std::size_t sh, std::size_t sw, float* dst,
                            std::size_t dh, std::size_t dw) {
  const float sy = static_cast<float>(sh) / static_cast<float>(dh), sx = static_cast<float>(sw) / static_cast<float>(dw);
  for (std::size_t y = 0; y < dh; ++y) {
    const float fy = std::clamp((static_cast<float>(y) + 0.5f) * sy - 0.5f, 0.f, static_cast<float>(sh - 1));
    const std::size_t y0 = static_cast<std::size_t>(fy), y1 = std::min(y0 + 1, sh - 1);
    const float wy = fy - static_cast<float>(y0);
    for (std::size_t x = 0; x < dw; ++x) {
      const float fx = std::clamp((static_cast<float>(x) + 0.5f) * sx - 0.5f, 0.f, static_cast<float>(sw - 1));
      const std::size_t x0 = static_cast<std::size_t>(fx), x1 = std::min(x0 + 1, sw - 1);
      const float wx = fx - static_cast<float>(x0);
      const float top = src[y0 * sw + x0] * (1 - wx) + src[y0 * sw + x1] * wx;
      const float bottom = src[y1 * sw + x0] * (1 - wx) + src[y1 * sw + x1] * wx;
      dst[y * dw + x] = top * (1 - wy) + bottom * wy;
    }
  }
}

// Images [first, first + n) as an n x 3 x size x size batch: resized, scaled
// to [0, 1], normalised, and the grey plane copied into all three channels.
inline ctnn::Tensor make_batch(const TestSet& t, std::size_t first, std::size_t n, std::size_t size) {
  ctnn::Tensor batch(n, 3, size, size);
  const std::size_t plane = size * size;
  for (std::size_t i = 0; i < n; ++i) {
    float* grey = &batch(i, 0);
    resize_bilinear(t.image(first + i), t.rows(), t.cols(), grey, size, size);
    for (std::size_t p = 0; p < plane; ++p) grey[p] = (grey[p] / 255.f - mean) / stddev;
    std::copy(grey, grey + plane, &batch(i, 1));
    std::copy(grey, grey + plane, &batch(i, 2));
  }
  return batch;
}

// A grey image as text, two pixel rows per line, without the blank rows
// above and below the object.
inline std::string ascii_art(std::span<const std::uint8_t> img, std::size_t rows, std::size_t cols,
                             std::string_view indent = "  ") {
  constexpr std::string_view ramp = " .:-=+*#%@";
  std::vector<std::string> lines;
  for (std::size_t y = 0; y + 1 < rows; y += 2) {
    std::string line;
    for (std::size_t x = 0; x < cols; ++x) {
      const unsigned v = (img[y * cols + x] + img[(y + 1) * cols + x]) / 2u;
      line += ramp[v * ramp.size() / 256];
    }
    lines.push_back(std::move(line));
  }
  const auto blank = [](const std::string& l) { return l.find_first_not_of(' ') == std::string::npos; };
  std::size_t first = 0, last = lines.size();
  while (first < last && blank(lines[first])) ++first;
  while (last > first && blank(lines[last - 1])) --last;
  std::string s;
  for (std::size_t i = first; i < last; ++i) s += std::string(indent) + lines[i] + "\n";
  return s;
}

}  // namespace fashion_mnist

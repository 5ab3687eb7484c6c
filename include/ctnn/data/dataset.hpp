// An in-memory image classification data set: raw 8-bit images (N x C x H x W,
// as stored by IDX files and image folders) and one class label per image.
// Kept as bytes, so augmentation works on the raw pixels exactly as
// torchvision's transforms do on a PIL image, and normalisation comes last.
//
//   auto train = ctnn::data::ImageDataset::from_idx(dir / "train-images-idx3-ubyte.gz",
//                                                  dir / "train-labels-idx1-ubyte.gz");
//
// from_idx needs <ctnn/io/idx.hpp>, hence zlib (ZLIB::ZLIB).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ctnn/io/idx.hpp"

namespace ctnn::data {

class ImageDataset {
 public:
  ImageDataset() = default;
  // `pixels` holds count x channels x height x width bytes, `labels` count classes.
  ImageDataset(std::vector<std::uint8_t> pixels, std::vector<int> labels, std::size_t channels, std::size_t height,
               std::size_t width, int classes)
      : pixels_(std::move(pixels)), labels_(std::move(labels)), c_(channels), h_(height), w_(width), classes_(classes) {
    if (c_ == 0 || h_ == 0 || w_ == 0) throw std::invalid_argument("ctnn: a data set needs non-empty images");
    if (pixels_.size() != labels_.size() * image_bytes())
      throw std::invalid_argument("ctnn: " + std::to_string(pixels_.size()) + " pixel bytes for " +
                                  std::to_string(labels_.size()) + " images of " + std::to_string(c_) + "x" +
                                  std::to_string(h_) + "x" + std::to_string(w_));
    for (int l : labels_)
      if (l < 0 || l >= classes_)
        throw std::invalid_argument("ctnn: label " + std::to_string(l) + " outside [0, " + std::to_string(classes_) + ")");
  }

  // The MNIST-family layout: u8 images [N, H, W] (one channel) and u8 labels [N].
  static ImageDataset from_idx(const std::filesystem::path& images, const std::filesystem::path& labels,
                               int classes = 10) {
    const io::IdxArray im = io::read_idx(images), lb = io::read_idx(labels);
    im.expect(io::IdxType::u8, 3);
    lb.expect(io::IdxType::u8, 1);
    if (lb.shape[0] != im.shape[0])
      throw io::LoadError(lb.source + ": " + std::to_string(lb.shape[0]) + " labels for " +
                          std::to_string(im.shape[0]) + " images in " + im.source);
    std::vector<int> l(lb.u8().begin(), lb.u8().end());
    for (int v : l)
      if (v >= classes)
        throw io::LoadError(lb.source + ": label " + std::to_string(v) + " is not one of the " +
                            std::to_string(classes) + " classes");
    return ImageDataset(std::vector<std::uint8_t>(im.u8().begin(), im.u8().end()), std::move(l), 1,
                        static_cast<std::size_t>(im.shape[1]), static_cast<std::size_t>(im.shape[2]), classes);
  }

  std::size_t size() const { return labels_.size(); }
  std::size_t channels() const { return c_; }
  std::size_t height() const { return h_; }
  std::size_t width() const { return w_; }
  int classes() const { return classes_; }
  std::size_t image_bytes() const { return c_ * h_ * w_; }
  std::span<const std::uint8_t> image(std::size_t i) const { return {pixels_.data() + i * image_bytes(), image_bytes()}; }
  int label(std::size_t i) const { return labels_[i]; }
  std::span<const int> labels() const { return labels_; }

  // The images [first, first + count) as a data set of their own (a validation split, a slice for tests).
  ImageDataset slice(std::size_t first, std::size_t count) const {
    if (first > size() || count > size() - first)
      throw std::out_of_range("ctnn: slice [" + std::to_string(first) + ", " + std::to_string(first + count) +
                              ") of a data set of " + std::to_string(size()));
    return ImageDataset({pixels_.begin() + static_cast<long>(first * image_bytes()),
                         pixels_.begin() + static_cast<long>((first + count) * image_bytes())},
                        {labels_.begin() + static_cast<long>(first), labels_.begin() + static_cast<long>(first + count)},
                        c_, h_, w_, classes_);
  }

 private:
  std::vector<std::uint8_t> pixels_;
  std::vector<int> labels_;
  std::size_t c_ = 0, h_ = 0, w_ = 0;
  int classes_ = 0;
};

}  // namespace ctnn::data

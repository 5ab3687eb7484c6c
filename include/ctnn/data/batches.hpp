// Batches of an ImageDataset for training and evaluation: a seeded permutation
// per epoch, augmentation on the raw 8-bit pixels, then torchvision's
// ToTensor + Normalize, into one NCHW float tensor.
//
//   ctnn::data::Batches batches(train, 128, /*seed=*/1,
//                               {.augment = {.crop_padding = 2, .horizontal_flip = true},
//                                .normalize = {{0.2860f}, {0.3530f}}});
//   for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
//     batches.start_epoch(epoch);
//     for (std::size_t b = 0; b < batches.count(); ++b) {
//       const auto batch = batches.get(b);
//       trainer.step(batch.images, {.classes = batch.labels});
//     }
//   }
//
// Everything random is a function of (seed, epoch, position in the epoch):
// the permutation and each image's crop and flip. A run resumed at an epoch
// and batch sees exactly the images the uninterrupted run saw.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctnn/core/init.hpp"
#include "ctnn/core/tensor.hpp"
#include "ctnn/data/dataset.hpp"

namespace ctnn::data {

// torchvision's RandomCrop(size, padding=crop_padding) (zero fill, the
// image's own size) followed by RandomHorizontalFlip(0.5).
struct Augment {
  int crop_padding = 0;
  bool horizontal_flip = false;
};

// Per channel, on pixel values scaled to [0, 1]; empty: mean 0, std 1.
struct Normalize {
  std::vector<float> mean{}, std{};
};

struct BatchOptions {
  bool shuffle = true;
  Augment augment{};
  Normalize normalize{};
  bool drop_last = false;  // drop a last batch smaller than the others
  // Data-parallel training: this process's share of every epoch, as PyTorch's
  // DistributedSampler draws it: the epoch's permutation padded with its own
  // first images to a multiple of `shards`, then every shards-th image from
  // position `shard`. Every process draws the same permutation (same seed).
  std::size_t shard = 0, shards = 1;
};

struct Batch {
  ConstTensorView images;     // B x C x H x W
  std::span<const int> labels;
  std::span<const std::size_t> indices;  // which images of the data set
};

class Batches {
 public:
  Batches(const ImageDataset& data, std::size_t batch, std::uint64_t seed, BatchOptions options = {})
      : data_(data), batch_(batch), seed_(seed), options_(std::move(options)),
        images_(Extents{batch, data.channels(), data.height(), data.width()}) {
    if (batch == 0) throw std::invalid_argument("ctnn: a batch needs at least one image");
    if (data.size() == 0) throw std::invalid_argument("ctnn: the data set is empty");
    const std::size_t c = data.channels();
    auto& n = options_.normalize;
    if (n.mean.empty()) n.mean.assign(c, 0.f);
    if (n.std.empty()) n.std.assign(c, 1.f);
    if (n.mean.size() != c || n.std.size() != c)
      throw std::invalid_argument("ctnn: normalisation has " + std::to_string(n.mean.size()) + " means and " +
                                  std::to_string(n.std.size()) + " deviations for " + std::to_string(c) + " channels");
    for (float s : n.std)
      if (!(s > 0)) throw std::invalid_argument("ctnn: a normalisation deviation must be positive");
    if (options_.augment.crop_padding < 0) throw std::invalid_argument("ctnn: crop padding must be >= 0");
    if (options_.shards == 0 || options_.shard >= options_.shards)
      throw std::invalid_argument("ctnn: shard " + std::to_string(options_.shard) + " of " +
                                  std::to_string(options_.shards));
    permutation_.resize(data.size());
    order_.resize((data.size() + options_.shards - 1) / options_.shards);
    labels_.resize(batch);
    start_epoch(0);
  }

  // Draws the epoch's order (the identity without shuffling).
  void start_epoch(std::size_t epoch) {
    epoch_ = epoch;
    std::iota(permutation_.begin(), permutation_.end(), std::size_t{0});
    if (options_.shuffle) {
      SplitMix64 rng(mix(seed_, epoch, 0x5EED));
      for (std::size_t i = permutation_.size(); i > 1; --i) {  // Fisher-Yates
        const auto j = static_cast<std::size_t>(rng.next() % i);
        std::swap(permutation_[i - 1], permutation_[j]);
      }
    }
    for (std::size_t i = 0; i < order_.size(); ++i)  // position shard + i * shards of the padded permutation
      order_[i] = permutation_[(options_.shard + i * options_.shards) % permutation_.size()];
  }

  std::size_t count() const {
    return options_.drop_last ? order_.size() / batch_ : (order_.size() + batch_ - 1) / batch_;
  }
  std::size_t epoch() const { return epoch_; }
  std::span<const std::size_t> order() const { return order_; }

  // Batch `b` of the current epoch, in buffers this object owns (valid until the next get()).
  Batch get(std::size_t b) {
    if (b >= count())
      throw std::out_of_range("ctnn: batch " + std::to_string(b) + " of an epoch of " + std::to_string(count()));
    const std::size_t first = b * batch_, n = std::min(batch_, order_.size() - first);
    const std::size_t c = data_.channels(), h = data_.height(), w = data_.width();
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t index = order_[first + i];
      labels_[i] = data_.label(index);
      // Augmentation keyed by the position in the whole (padded) epoch, so shards draw independently.
      SplitMix64 rng(mix(seed_, epoch_, (first + i) * options_.shards + options_.shard + 1));
      const int p = options_.augment.crop_padding;
      const long dy = p ? static_cast<long>(rng.next() % static_cast<std::uint64_t>(2 * p + 1)) - p : 0;
      const long dx = p ? static_cast<long>(rng.next() % static_cast<std::uint64_t>(2 * p + 1)) - p : 0;
      const bool flip = options_.augment.horizontal_flip && (rng.next() >> 63) != 0;
      const std::span<const std::uint8_t> src = data_.image(index);
      for (std::size_t ch = 0; ch < c; ++ch) {
        const float scale = 1.f / (255.f * options_.normalize.std[ch]);
        const float shift = -options_.normalize.mean[ch] / options_.normalize.std[ch];
        float* dst = images_.data() + ((i * c) + ch) * h * w;
        const std::uint8_t* plane = src.data() + ch * h * w;
        for (std::size_t y = 0; y < h; ++y)
          for (std::size_t x = 0; x < w; ++x) {
            // The crop's pixel (y, x) is the padded image's (y + p + dy, x + p + dx).
            const std::size_t xo = flip ? w - 1 - x : x;
            const long sy = static_cast<long>(y) + dy, sx = static_cast<long>(xo) + dx;
            const bool inside = sy >= 0 && sx >= 0 && sy < static_cast<long>(h) && sx < static_cast<long>(w);
            const float v = inside ? plane[static_cast<std::size_t>(sy) * w + static_cast<std::size_t>(sx)] : 0.f;
            dst[y * w + x] = v * scale + shift;
          }
      }
    }
    return {{images_.data(), {n, c, h, w}}, {labels_.data(), n}, {order_.data() + first, n}};
  }

 private:
  static std::uint64_t mix(std::uint64_t seed, std::uint64_t epoch, std::uint64_t position) {
    SplitMix64 r(seed ^ (epoch * 0x9E3779B97F4A7C15ull) ^ (position * 0xD1B54A32D192ED03ull));
    return r.next();
  }

  const ImageDataset& data_;
  std::size_t batch_;
  std::uint64_t seed_;
  BatchOptions options_;
  std::size_t epoch_ = 0;
  std::vector<std::size_t> permutation_;  // the epoch's order of the whole data set
  std::vector<std::size_t> order_;        // this shard's part of it
  Tensor images_;
  std::vector<int> labels_;
};

}  // namespace ctnn::data

// The training data pipeline: data sets from IDX files, seeded epoch
// permutations, batching, torchvision's RandomCrop(padding) + RandomHorizontalFlip
// on raw pixels and ToTensor + Normalize, against hand-computed images.
#include <doctest/doctest.h>

#include <ctnn/data/batches.hpp>
#include <ctnn/data/prefetch.hpp>
#include <ctnn/data/dataset.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <vector>

#include "temp_path.hpp"

using namespace ctnn;
using namespace ctnn::data;

namespace {
// `count` one-channel h x w images whose pixel (y, x) of image i is 10 * i + y * w + x (mod 256), label i % 3.
ImageDataset numbered(std::size_t count, std::size_t h, std::size_t w) {
  std::vector<std::uint8_t> px(count * h * w);
  std::vector<int> labels(count);
  for (std::size_t i = 0; i < count; ++i) {
    labels[i] = static_cast<int>(i % 3);
    for (std::size_t j = 0; j < h * w; ++j) px[i * h * w + j] = static_cast<std::uint8_t>((10 * i + j) % 256);
  }
  return ImageDataset(std::move(px), std::move(labels), 1, h, w, 3);
}

void write_idx(const std::filesystem::path& p, std::vector<std::uint32_t> dims, const std::vector<std::uint8_t>& data) {
  std::ofstream f(p, std::ios::binary);
  const unsigned char head[4] = {0, 0, 0x08, static_cast<unsigned char>(dims.size())};
  f.write(reinterpret_cast<const char*>(head), 4);
  for (std::uint32_t d : dims) {
    const unsigned char be[4] = {static_cast<unsigned char>(d >> 24), static_cast<unsigned char>(d >> 16),
                                 static_cast<unsigned char>(d >> 8), static_cast<unsigned char>(d)};
    f.write(reinterpret_cast<const char*>(be), 4);
  }
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}
}  // namespace

TEST_CASE("a data set from IDX files, checked") {
  const auto dir = ctnn_test::temp_path("pipeline_idx");
  std::filesystem::create_directories(dir);
  std::vector<std::uint8_t> px(3 * 2 * 4);
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>(i);
  write_idx(dir / "images", {3, 2, 4}, px);
  write_idx(dir / "labels", {3}, {7, 0, 9});
  write_idx(dir / "bad_labels", {3}, {7, 0, 10});
  write_idx(dir / "two_labels", {2}, {1, 2});
  const ImageDataset d = ImageDataset::from_idx(dir / "images", dir / "labels");
  CHECK(d.size() == 3);
  CHECK(d.channels() == 1);
  CHECK(d.height() == 2);
  CHECK(d.width() == 4);
  CHECK(d.label(2) == 9);
  CHECK(d.image(1)[3] == 11);
  CHECK_THROWS_WITH_AS(ImageDataset::from_idx(dir / "images", dir / "bad_labels"),
                       doctest::Contains("label 10 is not one of the 10 classes"), io::LoadError);
  CHECK_THROWS_WITH_AS(ImageDataset::from_idx(dir / "images", dir / "two_labels"),
                       doctest::Contains("2 labels for 3 images"), io::LoadError);
  CHECK_THROWS_WITH_AS(ImageDataset::from_idx(dir / "labels", dir / "labels"),
                       doctest::Contains("expected a rank-3 u8 IDX array"), io::LoadError);
  const ImageDataset s = d.slice(1, 2);
  CHECK(s.size() == 2);
  CHECK(s.label(0) == 0);
  CHECK(s.image(0)[0] == 8);
  std::filesystem::remove_all(dir);
  CHECK_THROWS_WITH_AS(ImageDataset({1, 2, 3}, {0}, 1, 2, 2, 2), doctest::Contains("3 pixel bytes for 1 images"),
                       std::invalid_argument);
}

TEST_CASE("each epoch is a seeded permutation, and batching covers it") {
  const ImageDataset d = numbered(10, 2, 2);
  Batches a(d, 4, 7), b(d, 4, 7), other(d, 4, 8);
  CHECK(a.count() == 3);
  std::vector<std::size_t> e0(a.order().begin(), a.order().end());
  std::vector<std::size_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < 10; ++i) CHECK(sorted[i] == i);
  CHECK(std::equal(e0.begin(), e0.end(), b.order().begin()));
  CHECK(!std::equal(e0.begin(), e0.end(), other.order().begin()));
  a.start_epoch(1);
  CHECK(!std::equal(e0.begin(), e0.end(), a.order().begin()));
  a.start_epoch(0);  // back to epoch 0: the same order (what resuming needs)
  CHECK(std::equal(e0.begin(), e0.end(), a.order().begin()));
  std::multiset<std::size_t> seen;
  for (std::size_t k = 0; k < a.count(); ++k) {
    const Batch batch = a.get(k);
    CHECK(batch.images.shape.n == (k < 2 ? 4u : 2u));  // the last batch is partial
    for (std::size_t i = 0; i < batch.indices.size(); ++i) {
      seen.insert(batch.indices[i]);
      CHECK(batch.labels[i] == d.label(batch.indices[i]));
    }
  }
  CHECK(seen.size() == 10);
  CHECK(std::set<std::size_t>(seen.begin(), seen.end()).size() == 10);
  Batches dropped(d, 4, 7, {.drop_last = true});
  CHECK(dropped.count() == 2);
  CHECK_THROWS_AS(dropped.get(2), std::out_of_range);
  Batches in_order(d, 3, 7, {.shuffle = false});
  CHECK(in_order.get(1).indices[0] == 3);
}

TEST_CASE("ToTensor + Normalize without augmentation") {
  const ImageDataset d = numbered(3, 2, 3);
  Batches b(d, 3, 1, {.shuffle = false, .normalize = {{0.25f}, {0.5f}}});
  const Batch batch = b.get(0);
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = 0; j < 6; ++j)
      CHECK(batch.images.data[i * 6 + j] == doctest::Approx((d.image(i)[j] / 255.0 - 0.25) / 0.5).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(Batches(d, 2, 1, {.normalize = {{0.1f, 0.2f}, {1.f, 1.f}}}),
                       doctest::Contains("2 means and 2 deviations for 1 channels"), std::invalid_argument);
}

TEST_CASE("RandomCrop with zero padding and RandomHorizontalFlip, against every candidate image") {
  const std::size_t h = 4, w = 5;
  const int p = 2;
  const ImageDataset d = numbered(6, h, w);
  Batches b(d, 6, 3, {.augment = {.crop_padding = p, .horizontal_flip = true}});
  std::set<std::tuple<long, long, bool>> drawn;
  for (std::size_t epoch = 0; epoch < 60; ++epoch) {
    b.start_epoch(epoch);
    const Batch batch = b.get(0);
    for (std::size_t i = 0; i < 6; ++i) {
      const auto src = d.image(batch.indices[i]);
      const float* got = batch.images.data + i * h * w;
      // The crop with offset (dy, dx) of the zero-padded image, flipped or not.
      bool matched = false;
      for (long dy = -p; dy <= p && !matched; ++dy)
        for (long dx = -p; dx <= p && !matched; ++dx)
          for (bool flip : {false, true}) {
            bool same = true;
            for (std::size_t y = 0; y < h && same; ++y)
              for (std::size_t x = 0; x < w && same; ++x) {
                const long sy = static_cast<long>(y) + dy, sx = static_cast<long>(flip ? w - 1 - x : x) + dx;
                const bool inside = sy >= 0 && sx >= 0 && sy < static_cast<long>(h) && sx < static_cast<long>(w);
                const float want = inside ? src[static_cast<std::size_t>(sy) * w + static_cast<std::size_t>(sx)] / 255.f : 0.f;
                same = std::abs(got[y * w + x] - want) < 1e-6f;
              }
            if (same) {
              matched = true;
              drawn.insert({dy, dx, flip});
              break;
            }
          }
      CHECK(matched);
    }
  }
  CHECK(drawn.size() >= 45);  // of the 25 offsets x 2 flips, nearly all appear in 360 draws
  // The same epoch and position give the same augmentation.
  b.start_epoch(5);
  const std::vector<float> first(b.get(0).images.data, b.get(0).images.data + 6 * h * w);
  b.start_epoch(6);
  b.start_epoch(5);
  const Batch again = b.get(0);
  CHECK(std::equal(first.begin(), first.end(), again.images.data));
}

TEST_CASE("shards split each epoch as PyTorch's DistributedSampler does") {
  const ImageDataset d = numbered(10, 2, 2);
  Batches whole(d, 4, 7);
  const std::vector<std::size_t> perm(whole.order().begin(), whole.order().end());
  // 10 images over 3 shards: the permutation padded with its first 2 to 12, then perm[r], perm[r + 3], ...
  std::multiset<std::size_t> seen;
  for (std::size_t r = 0; r < 3; ++r) {
    Batches part(d, 2, 7, {.shard = r, .shards = 3});
    REQUIRE(part.order().size() == 4);
    CHECK(part.count() == 2);
    for (std::size_t i = 0; i < 4; ++i) {
      CHECK(part.order()[i] == perm[(r + 3 * i) % 10]);
      seen.insert(part.order()[i]);
    }
    part.start_epoch(1);
    whole.start_epoch(1);
    CHECK(part.order()[1] == whole.order()[r + 3]);  // every epoch draws the shared permutation
    whole.start_epoch(0);
  }
  CHECK(seen.size() == 12);
  CHECK(seen.count(perm[0]) == 2);
  CHECK(seen.count(perm[1]) == 2);
  CHECK(seen.count(perm[2]) == 1);
  // One shard is the whole epoch, augmentation draws included (what single-process runs had before shards).
  Batches single(d, 4, 7, {.augment = {.crop_padding = 1, .horizontal_flip = true}, .shard = 0, .shards = 1});
  Batches plain(d, 4, 7, {.augment = {.crop_padding = 1, .horizontal_flip = true}});
  const Batch x = single.get(1), y = plain.get(1);
  CHECK(std::equal(x.images.data, x.images.data + x.images.size(), y.images.data));
  CHECK_THROWS_AS(Batches(d, 4, 7, {.shard = 3, .shards = 3}), std::invalid_argument);
  CHECK_THROWS_AS(Batches(d, 4, 7, {.shards = 0}), std::invalid_argument);
}

TEST_CASE("prefetched batches are the same batches, prepared ahead") {
  const ImageDataset d = numbered(23, 5, 6);
  const BatchOptions opts{.augment = {.crop_padding = 2, .horizontal_flip = true}, .normalize = {{0.5f}, {0.25f}}};
  Batches plain(d, 4, 9, opts);
  PrefetchedBatches ahead(d, 4, 9, opts);
  REQUIRE(ahead.count() == plain.count());
  for (std::size_t epoch = 0; epoch < 3; ++epoch) {
    plain.start_epoch(epoch);
    ahead.start_epoch(epoch);
    // In order (each one prepared ahead), then two out of order (served on the caller's thread).
    std::vector<std::size_t> sequence(plain.count());
    std::iota(sequence.begin(), sequence.end(), std::size_t{0});
    sequence.push_back(2);
    sequence.push_back(0);
    for (std::size_t b : sequence) {
      CAPTURE(epoch);
      CAPTURE(b);
      const Batch x = plain.get(b), y = ahead.get(b);
      REQUIRE(x.images.shape == y.images.shape);
      CHECK(std::equal(x.images.data, x.images.data + x.images.size(), y.images.data));
      CHECK(std::equal(x.labels.begin(), x.labels.end(), y.labels.begin(), y.labels.end()));
      CHECK(std::equal(x.indices.begin(), x.indices.end(), y.indices.begin(), y.indices.end()));
    }
  }
  CHECK_THROWS_AS(ahead.get(ahead.count()), std::out_of_range);
}

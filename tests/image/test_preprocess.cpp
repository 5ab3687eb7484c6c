// The preprocessing steps one by one, against values printed by Python /
// torchvision 0.14 (quoted next to each check) or worked out by hand.
#include <doctest/doctest.h>

#include <ctnn/io/preprocess.hpp>

#include <cmath>
#include <utility>

using namespace ctnn::io;

namespace {

RgbImage pattern(int w, int h) {
  RgbImage img{w, h, {}};
  img.pixels.resize(static_cast<std::size_t>(w) * static_cast<std::size_t>(h) * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        img.pixels[static_cast<std::size_t>((y * w + x) * 3 + c)] = static_cast<std::uint8_t>((x * 7 + y * 13 + c * 50) % 256);
  return img;
}

}  // namespace

TEST_CASE("preprocess: Resize(int) output sizes match torchvision") {
  // F._compute_resized_output_size((h, w), [s]) -> [h, w]; ours is (w, h).
  CHECK(shorter_side_size(339, 300, 256) == std::pair{289, 256});
  CHECK(shorter_side_size(300, 339, 256) == std::pair{256, 289});
  CHECK(shorter_side_size(97, 131, 256) == std::pair{256, 345});
  CHECK(shorter_side_size(250, 61, 50) == std::pair{204, 50});
  CHECK(shorter_side_size(640, 480, 232) == std::pair{309, 232});
  CHECK(shorter_side_size(333, 500, 256) == std::pair{256, 384});
  CHECK(shorter_side_size(224, 224, 256) == std::pair{256, 256});
  CHECK(shorter_side_size(1, 1000, 256) == std::pair{256, 256000});
  CHECK_THROWS_AS(shorter_side_size(1, 100000, 100000), std::invalid_argument);
}

TEST_CASE("preprocess: centre crop offsets round half to even, like Python's round") {
  // int(round((W - 224) / 2.0)) for W = 289, 290, 291, 225, 227: 32, 33, 34, 0, 2.
  const std::pair<int, int> cases[] = {{289, 32}, {290, 33}, {291, 34}, {225, 0}, {227, 2}, {341, 58}};
  for (const auto& [w, left] : cases) {
    const RgbImage img = pattern(w, 230);
    const RgbImage c = center_crop(img, 224, 224);
    INFO("width ", w);
    REQUIRE(c.width == 224);
    REQUIRE(c.height == 224);
    CHECK(c.at(0, 0, 0) == img.at(3, left, 0));  // (230 - 224) / 2 = 3 rows
    CHECK(c.at(223, 223, 2) == img.at(226, left + 223, 2));
  }
}

TEST_CASE("preprocess: a crop larger than the image pads with zeros as torchvision does") {
  // torchvision pads ((crop - w) // 2) before and ((crop - w + 1) // 2) after.
  const RgbImage img = pattern(2, 3);
  const RgbImage c = center_crop(img, 4, 5);  // height 4 (pad 0 + 1), width 5 (pad 1 + 2)
  REQUIRE(c.width == 5);
  REQUIRE(c.height == 4);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        const bool inside = y < 3 && x >= 1 && x < 3;
        CHECK(c.at(y, x, ch) == (inside ? img.at(y, x - 1, ch) : 0));
      }
}

TEST_CASE("preprocess: the bilinear resampler by hand") {
  SUBCASE("same size is the identity") {
    const RgbImage img = pattern(13, 7);
    CHECK(resize_bilinear(img, 13, 7).pixels == img.pixels);
  }
  SUBCASE("a constant image stays constant at any scale") {
    RgbImage img{37, 23, std::vector<std::uint8_t>(37 * 23 * 3, 201)};
    for (const auto& [w, h] : {std::pair{5, 4}, std::pair{101, 3}, std::pair{37, 80}, std::pair{1, 1}}) {
      const RgbImage r = resize_bilinear(img, w, h);
      CHECK(r.pixels == std::vector<std::uint8_t>(static_cast<std::size_t>(w * h * 3), 201));
    }
  }
  SUBCASE("halving: interior weights 1/8, 3/8, 3/8, 1/8") {
    // A 2x downscale widens the triangle to support 2: output o is centred at
    // 2o + 1 and reads inputs 2o-1 .. 2o+2 at distances 1.5, 0.5, 0.5, 1.5
    // (before scaling by 1/2), i.e. weights .25 .75 .75 .25, normalised.
    RgbImage img{8, 1, {}};
    const int row[8] = {0, 80, 160, 240, 16, 96, 176, 255};
    for (int v : row)
      for (int c = 0; c < 3; ++c) img.pixels.push_back(static_cast<std::uint8_t>(v));
    const RgbImage r = resize_bilinear(img, 4, 1);
    const double o1 = (80 + 3 * 160 + 3 * 240 + 16) / 8.0;  // 162
    const double o2 = (240 + 3 * 16 + 3 * 96 + 176) / 8.0;  // 94
    CHECK(r.at(0, 1, 0) == static_cast<int>(std::floor(o1 + 0.5)));
    CHECK(r.at(0, 2, 1) == static_cast<int>(std::floor(o2 + 0.5)));
    // At the border the taps outside the image are dropped and the rest renormalised.
    CHECK(r.at(0, 0, 0) == static_cast<int>(std::floor((0.75 * 0 + 0.75 * 80 + 0.25 * 160) / 1.75 + 0.5)));
  }
  SUBCASE("refuses empty sizes") {
    const RgbImage img = pattern(4, 4);
    CHECK_THROWS_AS(resize_bilinear(img, 0, 3), std::invalid_argument);
    CHECK_THROWS_AS(resize_shorter_side(img, -1), std::invalid_argument);
    CHECK_THROWS_AS(resize_bilinear(RgbImage{}, 3, 3), std::invalid_argument);
  }
}

TEST_CASE("preprocess: ToTensor + Normalize in float32, planar, batched") {
  RgbImage img{2, 1, {0, 128, 255, 255, 0, 7}};
  ctnn::Tensor t = preprocess(std::span(&img, 1), {0, 0, imagenet_normalization});
  REQUIRE(t.shape() == ctnn::Extents{1, 3, 1, 2});
  // torch: (torch.tensor([0.]) / 255 - 0.485) / 0.229 etc., in float32.
  CHECK(t(0, 0, 0, 0) == (0.0f / 255.0f - 0.485f) / 0.229f);
  CHECK(t(0, 1, 0, 0) == (128.0f / 255.0f - 0.456f) / 0.224f);
  CHECK(t(0, 2, 0, 0) == (255.0f / 255.0f - 0.406f) / 0.225f);
  CHECK(t(0, 0, 0, 1) == (255.0f / 255.0f - 0.485f) / 0.229f);
  CHECK(t(0, 2, 0, 1) == (7.0f / 255.0f - 0.406f) / 0.225f);

  SUBCASE("images of different sizes batch through the crop, and not without it") {
    const RgbImage imgs[] = {pattern(40, 30), pattern(31, 57)};
    const ctnn::Tensor b = preprocess(imgs, {32, 24, imagenet_normalization});
    CHECK(b.shape() == ctnn::Extents{2, 3, 24, 24});
    CHECK_THROWS_WITH_AS(preprocess(imgs, {32, 0, imagenet_normalization}),
                         doctest::Contains("use a centre crop to batch images of different sizes"),
                         std::invalid_argument);
  }
}

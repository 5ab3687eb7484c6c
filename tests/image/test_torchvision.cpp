// ctnn's decode + preprocessing against torchvision's transforms on the same
// files (tests/data/image/cases.txt, expected outputs computed by torchvision
// 0.14 / PIL 9.4 in make_image_fixtures.py).
//
// PNG decoding is lossless, so stb and PIL see the same pixels and ctnn's
// resampler must reproduce PIL's to the bit: the tolerance is zero. JPEG
// decoders differ (stb_image vs libjpeg-turbo: IDCT rounding and chroma
// upsampling), so JPEG cases get a tolerance measured here and stated in
// docs/interop.md.
#include <doctest/doctest.h>

#include <ctnn/io/image.hpp>
#include <ctnn/io/npy.hpp>
#include <ctnn/io/preprocess.hpp>

#include <algorithm>
#include <cmath>

#include "image_support.hpp"

using namespace ctnn::io;
using namespace ctnn_image_test;

namespace {

struct Diff {
  double max_abs = 0, mean_abs = 0;
  std::size_t differing = 0, total = 0;
};

Diff compare(std::span<const float> got, std::span<const float> want) {
  Diff d;
  d.total = want.size();
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double e = std::abs(static_cast<double>(got[i]) - want[i]);
    d.max_abs = std::max(d.max_abs, e);
    d.mean_abs += e;
    d.differing += e != 0;
  }
  d.mean_abs /= static_cast<double>(std::max<std::size_t>(d.total, 1));
  return d;
}

std::vector<float> pixels_as_float(const RgbImage& img) { return {img.pixels.begin(), img.pixels.end()}; }

// One grey level in normalised units, for the smallest std (0.224).
constexpr double level = 1.0 / 255.0 / 0.224;

}  // namespace

TEST_CASE("image: ctnn preprocessing vs torchvision on every case in cases.txt") {
  const auto rows = read_table(data_dir() / "cases.txt");
  REQUIRE(rows.size() >= 15);
  for (const auto& row : rows) {
    REQUIRE(row.size() == 5);
    const std::string& file = row[0];
    const int resize = std::stoi(row[1]), crop = std::stoi(row[2]);
    const std::string& kind = row[3];
    const bool png = file.ends_with(".png");
    INFO("case ", file, " resize ", resize, " crop ", crop, " (", kind, ")");
    const NpyArray want = read_npy(data_dir() / row[4]);
    const RgbImage img = read_image(data_dir() / file);

    std::vector<float> got;
    if (kind == "decoded") {
      REQUIRE(want.shape == std::vector<std::uint64_t>{std::uint64_t(img.height), std::uint64_t(img.width), 3});
      got = pixels_as_float(img);
    } else if (kind == "pixels") {
      const RgbImage t = transform_pixels(img, {resize, crop});
      REQUIRE(want.shape == std::vector<std::uint64_t>{std::uint64_t(t.height), std::uint64_t(t.width), 3});
      got = pixels_as_float(t);
    } else {
      REQUIRE(kind == "tensor");
      const ctnn::Tensor x = preprocess(std::span(&img, 1), {resize, crop});
      REQUIRE(want.shape == std::vector<std::uint64_t>{3, x.shape().h, x.shape().w});
      got.assign(x.data(), x.data() + x.size());
    }
    const Diff d = compare(got, want.data);
    MESSAGE(file << " r" << resize << " c" << crop << " " << kind << ": max |diff| " << d.max_abs << ", mean |diff| "
                 << d.mean_abs << ", " << d.differing << " of " << d.total << " values differ");
    if (png) {
      CHECK(d.max_abs == 0.0);  // bit-identical to PIL + torchvision
    } else if (kind == "decoded") {
      // stb_image vs libjpeg-turbo, in grey levels. Measured: at most 3
      // levels, 0.004-0.08 on average (docs/interop.md).
      CHECK(d.max_abs <= 3.0);
      CHECK(d.mean_abs <= 0.15);
    } else {
      // Resampling averages decoder differences: measured at most 2 levels,
      // under 0.1 level on average.
      CHECK(d.max_abs <= 3.0 * level);
      CHECK(d.mean_abs <= 0.15 * level);
    }
  }
}

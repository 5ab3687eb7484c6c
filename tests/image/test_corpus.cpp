// The hostile image corpus: every file in tests/data/image/bad/ must be
// refused with an io::LoadError that names the file and contains the
// expected message (bad/expected.txt), from disk and from memory alike.
#include <doctest/doctest.h>

#include <ctnn/io/image.hpp>

#include <filesystem>
#include <set>

#include "image_support.hpp"

using namespace ctnn::io;
using namespace ctnn_image_test;


TEST_CASE("image corpus: each bad file is refused with its expected message") {
  const auto dir = data_dir() / "bad";
  const auto table = read_table(dir / "expected.txt");
  std::set<std::string> listed;
  for (const auto& row : table) {
    REQUIRE(row.size() == 2);
    const std::string& file = row[0];
    INFO("file ", file, ", expected: ", row[1]);
    listed.insert(file);
    const auto path = dir / file;
    REQUIRE(std::filesystem::exists(path));
    const std::string from_file = error_of([&] { read_image(path); });
    INFO("got: ", from_file);
    CHECK(from_file.find(row[1]) != std::string::npos);
    CHECK(from_file.rfind(path.string() + ": ", 0) == 0);
    CHECK(from_file.find('\n') == std::string::npos);  // one line
    const std::string from_memory = error_of([&] { decode_image(file_bytes(path), file); });
    CHECK(from_memory == file + from_file.substr(path.string().size()));
  }
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename() == "expected.txt") continue;
    ++files;
    CHECK_MESSAGE(listed.count(e.path().filename().string()) == 1, e.path().filename().string());
  }
  CHECK(files == listed.size());
  CHECK(files >= 35);
}

TEST_CASE("image: limits are checked before decoding, and are the caller's to tighten") {
  const auto path = data_dir() / "rgb_339x300.png";
  CHECK_NOTHROW(read_image(path));
  ImageLimits side;
  side.max_side = 300;
  CHECK_THROWS_WITH_AS(read_image(path, side), doctest::Contains("claims 339x300 pixels, above the limit (300 per side"),
                       LoadError);
  ImageLimits pixels;
  pixels.max_pixels = 339 * 300 - 1;
  CHECK_THROWS_AS(read_image(path, pixels), LoadError);
  ImageLimits bytes;
  bytes.max_file_bytes = 1000;
  CHECK_THROWS_WITH_AS(read_image(path, bytes), doctest::Contains("bytes is above the limit of 1000"), LoadError);
  CHECK_THROWS_WITH_AS(read_image(data_dir() / "does_not_exist.png"), doctest::Contains("no such image file"),
                       LoadError);
}

TEST_CASE("image: every test image decodes to the size its header claims, grey and palette to RGB") {
  struct Case {
    const char* file;
    int w, h;
  };
  for (const Case c : {Case{"grey_64x48.png", 64, 48}, Case{"palette_80x60.png", 80, 60}, Case{"rgba_70x50.png", 70, 50},
                       Case{"rgb16_33x21.png", 33, 21}, Case{"progressive_120x90.jpg", 120, 90},
                       Case{"grey_75x103.jpg", 75, 103}}) {
    INFO(c.file);
    const RgbImage img = read_image(data_dir() / c.file);
    CHECK(img.width == c.w);
    CHECK(img.height == c.h);
    CHECK(img.pixels.size() == static_cast<std::size_t>(c.w * c.h * 3));
  }
  const RgbImage grey = read_image(data_dir() / "grey_64x48.png");
  bool replicated = true;
  for (std::size_t i = 0; i < grey.pixels.size(); i += 3)
    replicated &= grey.pixels[i] == grey.pixels[i + 1] && grey.pixels[i] == grey.pixels[i + 2];
  CHECK(replicated);
}

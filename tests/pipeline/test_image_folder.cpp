// data::load_image_folder against the decoder and torchvision's transforms
// applied by hand: classes in sorted order, files sorted, non-images skipped,
// RGB planes and PIL's grey conversion, and the refusals.
#include <doctest/doctest.h>

#include <ctnn/data/image_folder.hpp>

#include <cstdio>
#include <filesystem>

#include "temp_path.hpp"

namespace fs = std::filesystem;

namespace {
const fs::path images = fs::path(CTNN_TEST_DATA_DIR) / "image";

fs::path make_folder(const char* name) {
  const fs::path root = ctnn_test::temp_path(name);
  fs::remove_all(root);
  for (const auto& [cls, file] : {std::pair{"b_dog", "grey_64x48.png"}, {"a_cat", "photo_161x121.jpg"},
                                   {"a_cat", "palette_80x60.png"}}) {
    fs::create_directories(root / cls);
    fs::copy_file(images / file, root / cls / file);
  }
  std::FILE* f = std::fopen((root / "a_cat" / "README").c_str(), "w");
  std::fputs("skipped", f);
  std::fclose(f);
  return root;
}
}  // namespace

TEST_CASE("an image folder: sorted classes and files, resized and centre-cropped like torchvision") {
  const fs::path root = make_folder("ctnn_folder_test");
  const auto rgb = ctnn::data::load_image_folder(root, {.size = 20});
  REQUIRE(rgb.classes == std::vector<std::string>{"a_cat", "b_dog"});
  const auto& d = rgb.data;
  REQUIRE(d.size() == 3);
  CHECK(d.channels() == 3);
  CHECK(d.height() == 20);
  CHECK(d.width() == 20);
  CHECK(d.label(0) == 0);
  CHECK(d.label(1) == 0);
  CHECK(d.label(2) == 1);
  // Image 0 is palette_80x60.png (sorted before photo_...): the same transforms by hand.
  const ctnn::io::RgbImage want =
      ctnn::io::center_crop(ctnn::io::resize_shorter_side(ctnn::io::read_image(root / "a_cat" / "palette_80x60.png"), 20), 20, 20);
  const auto px = d.image(0);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 20; ++y)
      for (int x = 0; x < 20; ++x) REQUIRE(px[static_cast<std::size_t>(c * 400 + y * 20 + x)] == want.at(y, x, c));

  // Grey: PIL's L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
  const auto grey = ctnn::data::load_image_folder(root, {.size = 20, .channels = 1});
  CHECK(grey.data.channels() == 1);
  const auto g = grey.data.image(0);
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 20; ++x) {
      const unsigned l = (want.at(y, x, 0) * 19595u + want.at(y, x, 1) * 38470u + want.at(y, x, 2) * 7471u + 0x8000u) >> 16;
      REQUIRE(g[static_cast<std::size_t>(y * 20 + x)] == l);
    }
  fs::remove_all(root);
}

TEST_CASE("an image folder refuses what it cannot read, naming the file") {
  const fs::path root = make_folder("ctnn_folder_bad");
  // Mixed sizes without a size to bring them to.
  CHECK_THROWS_WITH_AS(ctnn::data::load_image_folder(root), doctest::Contains("give a size to resize them all"),
                       ctnn::io::LoadError);
  fs::create_directories(root / "c_empty");
  CHECK_THROWS_WITH_AS(ctnn::data::load_image_folder(root, {.size = 8}), doctest::Contains("c_empty: class folder without"),
                       ctnn::io::LoadError);
  fs::remove_all(root / "c_empty");
  std::FILE* f = std::fopen((root / "b_dog" / "broken.png").c_str(), "w");
  std::fputs("\x89PNG\r\n\x1a\n not really", f);
  std::fclose(f);
  CHECK_THROWS_WITH_AS(ctnn::data::load_image_folder(root, {.size = 8}), doctest::Contains("broken.png"), ctnn::io::LoadError);
  CHECK_THROWS_WITH_AS(ctnn::data::load_image_folder(root / "a_cat"), doctest::Contains("no class folders"),
                       ctnn::io::LoadError);
  CHECK_THROWS_AS(ctnn::data::load_image_folder(root, {.size = 8, .channels = 2}), std::invalid_argument);
  fs::remove_all(root);
}

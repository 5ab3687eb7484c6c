// A folder of PNG/JPEG images with one sub-folder per class, as torchvision's
// ImageFolder reads it: classes are the sub-folder names in sorted order,
// images the .png/.jpg/.jpeg files of each (sorted, other files skipped),
// loaded into an in-memory ImageDataset.
//
//   auto folder = ctnn::data::load_image_folder("flowers/train", {.size = 64});
//   // folder.data: N x 3 x 64 x 64 bytes; folder.classes: {"daisy", "rose", ...}
//
// Every image goes through ctnn's validating decoder (io/image.hpp) and
// torchvision's Resize(size) + CenterCrop(size) (io/preprocess.hpp), so a
// folder of mixed sizes becomes one square size; with size 0 every image
// must already have the size of the first. channels = 1 converts to grey
// as PIL's convert("L") does.
//
// Needs the image decoder's implementation in one translation unit of the
// program (#define CTNN_IMAGE_IMPLEMENTATION, see io/image.hpp).
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ctnn/data/dataset.hpp"
#include "ctnn/io/image.hpp"
#include "ctnn/io/preprocess.hpp"

namespace ctnn::data {

struct FolderOptions {
  std::size_t size = 0;      // > 0: shorter side resized to `size`, then centre-cropped to size x size
  std::size_t channels = 3;  // 3: RGB; 1: grey (PIL's L)
  io::ImageLimits limits{};
};

struct ImageFolder {
  ImageDataset data;
  std::vector<std::string> classes;  // data's label k is classes[k]
};

namespace detail {
inline bool is_image_file(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

template <class Pred>
std::vector<std::filesystem::path> sorted_entries(const std::filesystem::path& dir, Pred keep) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (keep(e)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace detail

inline ImageFolder load_image_folder(const std::filesystem::path& root, const FolderOptions& o = {}) {
  const std::string where = root.string();
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) throw io::LoadError(where + ": not a directory of class folders");
  if (o.channels != 1 && o.channels != 3)
    throw std::invalid_argument("ctnn: an image folder loads 1 or 3 channels, not " + std::to_string(o.channels));
  if (o.size > 1u << 14) throw std::invalid_argument("ctnn: image size " + std::to_string(o.size) + " is above 16384");
  const auto class_dirs =
      detail::sorted_entries(root, [](const std::filesystem::directory_entry& e) { return e.is_directory(); });
  if (class_dirs.empty()) throw io::LoadError(where + ": no class folders (expected one sub-folder per class)");

  ImageFolder out;
  std::vector<std::uint8_t> pixels;
  std::vector<int> labels;
  std::size_t height = o.size, width = o.size;
  for (const auto& dir : class_dirs) {
    const auto files = detail::sorted_entries(dir, [](const std::filesystem::directory_entry& e) {
      return e.is_regular_file() && detail::is_image_file(e.path());
    });
    if (files.empty())
      throw io::LoadError(dir.string() + ": class folder without .png/.jpg/.jpeg images");
    for (const auto& file : files) {
      io::RgbImage img = io::read_image(file, o.limits);
      if (o.size > 0) {
        const int s = static_cast<int>(o.size);
        img = io::center_crop(io::resize_shorter_side(img, s), s, s);
      } else if (height == 0) {
        height = static_cast<std::size_t>(img.height), width = static_cast<std::size_t>(img.width);
      } else if (static_cast<std::size_t>(img.height) != height || static_cast<std::size_t>(img.width) != width) {
        throw io::LoadError(file.string() + ": image of " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                            ", the folder's first image is " + std::to_string(width) + "x" + std::to_string(height) +
                            " (give a size to resize them all)");
      }
      const std::size_t plane = height * width;
      const std::size_t at = pixels.size();
      pixels.resize(at + o.channels * plane);
      for (std::size_t p = 0; p < plane; ++p) {  // interleaved RGB -> planar
        const std::uint8_t* rgb = img.pixels.data() + 3 * p;
        if (o.channels == 1)
          pixels[at + p] = static_cast<std::uint8_t>((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
        else
          for (std::size_t c = 0; c < 3; ++c) pixels[at + c * plane + p] = rgb[c];
      }
      labels.push_back(static_cast<int>(out.classes.size()));
    }
    out.classes.push_back(dir.filename().string());
  }
  out.data = ImageDataset(std::move(pixels), std::move(labels), o.channels, height, width,
                          static_cast<int>(out.classes.size()));
  return out;
}

}  // namespace ctnn::data

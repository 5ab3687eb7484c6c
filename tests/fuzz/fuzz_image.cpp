// libFuzzer target for the image loader (container checks + stb_image) and
// the preprocessing that follows it in ctnn-infer. Built and run by
// tests/fuzz/CMakeLists.txt (ctest -L fuzz); by hand:
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_image.cpp
//     tests/fuzz/fuzz_image_stb.cpp -o fuzz_image   (see CMakeLists.txt for the stb file's flags)
//   ./fuzz_image -dict=tests/fuzz/image.dict corpus tests/fuzz/corpus/image
// Any input must either decode or raise LoadError; what decodes has the
// size its header claims, and survives resize + crop + normalise.
#include <ctnn/io/image.hpp>
#include <ctnn/io/preprocess.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  // Lower limits than the defaults: the fuzzer's memory is bounded, and large
  // valid images only make each run slower without reaching new code.
  ctnn::io::ImageLimits limits;
  limits.max_side = 4096;
  limits.max_pixels = std::uint64_t{1} << 21;
  try {
    const ctnn::io::RgbImage img = ctnn::io::decode_image(bytes, "fuzz", limits);
    const auto header = ctnn::io::inspect_image(bytes, "fuzz");
    if (img.width <= 0 || img.height <= 0 || static_cast<std::uint64_t>(img.width) != header.width ||
        static_cast<std::uint64_t>(img.height) != header.height ||
        img.pixels.size() != static_cast<std::size_t>(img.width) * static_cast<std::size_t>(img.height) * 3)
      std::abort();
    // A size derived from the input, so that up- and downscaling, odd crops
    // and padding are all reached.
    const int resize = 1 + (img.width * 7 + img.height) % 45, crop = 1 + (img.width + img.height * 3) % 40;
    const ctnn::Tensor t = ctnn::io::preprocess(std::span(&img, 1), {resize, crop, ctnn::io::imagenet_normalization});
    if (t.shape() != ctnn::Extents{1, 3, static_cast<std::size_t>(crop), static_cast<std::size_t>(crop)}) std::abort();
    for (std::size_t i = 0; i < t.size(); ++i)
      if (!(t.data()[i] >= -2.2f && t.data()[i] <= 2.7f)) std::abort();  // (0..1 - mean) / std
  } catch (const ctnn::io::LoadError&) {
  }
  return 0;
}

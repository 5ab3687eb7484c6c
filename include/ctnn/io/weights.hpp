// Opens a weight file of either supported format, chosen by its content
// (looks_like_torch_save; anything else is read as safetensors, whose
// validator explains what is wrong if it is neither).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <filesystem>
#include <fstream>

#include "ctnn/io/pth.hpp"
#include "ctnn/io/safetensors.hpp"
#include "ctnn/io/tensor_file.hpp"

namespace ctnn::io {

// Tells the formats apart by structure, not by one byte: a torch.save zip
// starts with "PK\3\4"; a legacy (pre-1.6) torch.save pickle with the PROTO
// opcode 0x80, a protocol number 2..5 and torch's magic number pickled as a
// 10-byte LONG1; a safetensors file with an 8-byte little-endian header
// length (whose first byte may be anything, 0x80 included) and then '{'.
// read_pth explains how to re-save a legacy file.
inline bool looks_like_torch_save(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::array<unsigned char, 14> head{};
  f.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  const std::size_t got = static_cast<std::size_t>(f.gcount());
  if (got >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4) return true;
  static constexpr std::array<unsigned char, 12> legacy_magic{0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                                              0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  return got == head.size() && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5 &&
         std::equal(legacy_magic.begin(), legacy_magic.end(), head.begin() + 2);
}

inline TensorFile read_weights(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path))
    throw LoadError(path.string() + ": no such weight file (expected a .safetensors or .pth file)");
  return looks_like_torch_save(path) ? read_pth(path) : read_safetensors(path);
}

}  // namespace ctnn::io

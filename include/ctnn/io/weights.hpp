// Opens a weight file of either supported format, chosen by its content (a
// torch.save zip starts with "PK\3\4"; anything else is read as safetensors,
// whose validator explains what is wrong if it is neither).
#pragma once

#include <array>
#include <filesystem>
#include <fstream>

#include "ctnn/io/pth.hpp"
#include "ctnn/io/safetensors.hpp"
#include "ctnn/io/tensor_file.hpp"

namespace ctnn::io {

inline bool looks_like_zip(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::array<char, 4> magic{};
  return f.read(magic.data(), 4) && magic == std::array<char, 4>{'P', 'K', '\3', '\4'};
}

inline TensorFile read_weights(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path))
    throw LoadError(path.string() + ": no such weight file (expected a .safetensors or .pth file)");
  return looks_like_zip(path) ? read_pth(path) : read_safetensors(path);
}

}  // namespace ctnn::io

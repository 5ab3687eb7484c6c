// Opens a weight file of either supported format, chosen by its content (a
// torch.save file starts with "PK\3\4" or, in the legacy format, 0x80;
// anything else is read as safetensors, whose validator explains what is
// wrong if it is neither).
#pragma once

#include <array>
#include <filesystem>
#include <fstream>

#include "ctnn/io/pth.hpp"
#include "ctnn/io/safetensors.hpp"
#include "ctnn/io/tensor_file.hpp"

namespace ctnn::io {

// A torch.save zip, or a legacy (pre-1.6) torch.save pickle, which starts
// with the pickle PROTO opcode 0x80; read_pth explains how to re-save that one.
inline bool looks_like_torch_save(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::array<char, 4> magic{};
  if (!f.read(magic.data(), 4)) return false;
  return magic == std::array<char, 4>{'P', 'K', '\3', '\4'} || static_cast<unsigned char>(magic[0]) == 0x80;
}

inline TensorFile read_weights(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path))
    throw LoadError(path.string() + ": no such weight file (expected a .safetensors or .pth file)");
  return looks_like_torch_save(path) ? read_pth(path) : read_safetensors(path);
}

}  // namespace ctnn::io

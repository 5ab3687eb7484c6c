// Helpers shared by the io tests: fixture paths, file bytes and the
// tab-separated expectation tables written by tests/data/io/make_io_fixtures.py.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "test_files.hpp"

namespace ctnn_io_test {

inline std::filesystem::path data_dir() { return std::filesystem::path(CTNN_TEST_DATA_DIR) / "io"; }

using ctnn_test::file_bytes;
using ctnn_test::read_table;
using ctnn_test::split;
using ctnn_test::error_of;

inline std::vector<std::byte> from_hex(const std::string& hex) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<std::byte>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  return out;
}

inline std::vector<std::uint64_t> parse_shape(const std::string& s) {
  std::vector<std::uint64_t> out;
  for (const auto& d : split(s, ',')) out.push_back(std::stoull(d));
  return out;
}

// "3f800000,..." -> float bit patterns.
inline std::vector<std::uint32_t> parse_bits(const std::string& s) {
  std::vector<std::uint32_t> out;
  for (const auto& b : split(s, ',')) out.push_back(static_cast<std::uint32_t>(std::stoul(b, nullptr, 16)));
  return out;
}

inline std::vector<std::uint32_t> bits_of(const std::vector<float>& v) {
  std::vector<std::uint32_t> out;
  for (float f : v) out.push_back(std::bit_cast<std::uint32_t>(f));
  return out;
}

}  // namespace ctnn_io_test

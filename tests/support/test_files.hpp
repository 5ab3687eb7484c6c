// File helpers shared by the format tests: whole-file bytes, the tab-separated
// expectation tables that the fixture scripts write, and the message of the
// LoadError a reader throws.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <ctnn/io/tensor_file.hpp>

namespace ctnn_test {

inline std::vector<std::byte> file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  for (std::size_t i = 0; i < chars.size(); ++i) out[i] = static_cast<std::byte>(chars[i]);
  return out;
}

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

// Non-comment lines of a table, split at tabs.
inline std::vector<std::vector<std::string>> read_table(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') rows.push_back(split(line, '\t'));
  return rows;
}

// What `load` throws as a LoadError, or "<no LoadError>".
template <class Load>
std::string error_of(Load&& load) {
  try {
    load();
  } catch (const ctnn::io::LoadError& e) {
    return e.what();
  }
  return "<no LoadError>";
}

}  // namespace ctnn_test

// A path in the temporary directory that belongs to this test process.
// ctest runs test cases as parallel processes (one per case, and one per
// backend of a TEST_CASE_TEMPLATE), so fixed names would let one case delete
// or overwrite another's file.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace ctnn_test {

inline std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("ctnn-" + std::to_string(::getpid()) + "-" + name);
}

}  // namespace ctnn_test

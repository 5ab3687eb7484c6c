// Fixture paths and tables for the image tests (tests/data/image/, written by
// make_image_fixtures.py).
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "test_files.hpp"

namespace ctnn_image_test {

inline std::filesystem::path data_dir() { return std::filesystem::path(CTNN_TEST_DATA_DIR) / "image"; }

using ctnn_test::error_of;
using ctnn_test::file_bytes;
using ctnn_test::read_table;

}  // namespace ctnn_image_test

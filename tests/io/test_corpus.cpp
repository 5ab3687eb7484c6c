// The hostile corpus: every file in tests/data/io/bad/ must be refused with a
// LoadError naming the file and containing its expected message, by both the
// file reader and the in-memory reader.
#include <doctest/doctest.h>

#include <ctnn/io/npy.hpp>
#include <ctnn/io/safetensors.hpp>

#include <filesystem>
#include <set>

#include "io_test_support.hpp"

using namespace ctnn::io;
using namespace ctnn_io_test;


TEST_CASE("hostile corpus: each file is refused with its expected message") {
  const auto dir = data_dir() / "bad";
  const auto table = read_table(dir / "expected.txt");
  std::set<std::string> listed;
  for (const auto& row : table) {
    REQUIRE(row.size() == 2);
    const std::string& file = row[0];
    const std::string& expected = row[1];
    INFO("file ", file, ", expected substring: ", expected);
    listed.insert(file);
    const auto path = dir / file;
    REQUIRE(std::filesystem::exists(path));
    const bool is_npy = path.extension() == ".npy";
    const auto bytes = file_bytes(path);

    const std::string from_file = is_npy ? error_of([&] { read_npy(path); }) : error_of([&] { read_safetensors(path); });
    CHECK(from_file.find(expected) != std::string::npos);
    CHECK(from_file.rfind(path.string() + ": ", 0) == 0);  // names the source first

    const std::string from_memory = is_npy ? error_of([&] { read_npy(bytes, file); })
                                           : error_of([&] { read_safetensors(bytes, file); });
    CHECK(from_memory == file + from_file.substr(path.string().size()));
  }
  // The manifest covers the whole folder, so a new file cannot go unchecked.
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto ext = e.path().extension();
    if (ext != ".safetensors" && ext != ".npy") continue;
    ++files;
    CHECK_MESSAGE(listed.count(e.path().filename().string()) == 1, e.path().filename().string());
  }
  CHECK(files == listed.size());
  CHECK(files >= 100);
}

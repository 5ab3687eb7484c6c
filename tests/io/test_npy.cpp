#include <doctest/doctest.h>

#include <ctnn/io/npy.hpp>

#include <cmath>
#include <filesystem>

#include "io_test_support.hpp"
#include "temp_path.hpp"

using namespace ctnn::io;
using namespace ctnn_io_test;

TEST_CASE("npy: files written by numpy load with numpy's float32 conversion") {
  const auto table = read_table(data_dir() / "npy.expected.txt");
  REQUIRE(table.size() == 16);
  for (const auto& row : table) {
    INFO("file ", row[0]);
    REQUIRE(row.size() >= 2);
    const NpyArray a = read_npy(data_dir() / row[0]);
    CHECK(a.shape == parse_shape(row[1]));
    CHECK(bits_of(a.data) == parse_bits(row.size() > 2 ? row[2] : ""));
  }
}

TEST_CASE("npy: the writer is byte-identical to numpy.save for float32") {
  for (const char* name : {"f4_2x3.npy", "f4_scalar.npy", "f4_0x3.npy", "f4_4d.npy"}) {
    INFO("file ", std::string(name));
    const auto bytes = file_bytes(data_dir() / name);
    const NpyArray a = read_npy(bytes);
    CHECK(write_npy_to_memory(a.data, a.shape) == bytes);
  }
}

TEST_CASE("npy: write/read round trip keeps shape and bits, header aligned to 64") {
  std::vector<float> v(1000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(static_cast<float>(i)) * 1e3f;
  v[3] = NAN;
  v[4] = -0.f;
  const auto tmp = ctnn_test::temp_path("io_roundtrip.npy");
  for (const std::vector<std::uint64_t>& shape :
       std::vector<std::vector<std::uint64_t>>{{1000}, {10, 100}, {2, 5, 10, 10}, {1, 1, 1000}}) {
    write_npy(tmp, v, shape);
    const auto bytes = file_bytes(tmp);
    CHECK((bytes.size() - v.size() * 4) % 64 == 0);
    const NpyArray a = read_npy(tmp);
    CHECK(a.shape == shape);
    CHECK(bits_of(a.data) == bits_of(v));
  }
  std::filesystem::remove(tmp);
  CHECK_THROWS_WITH_AS(write_npy_to_memory(v, {3, 3}), doctest::Contains("shape [3, 3] has 9 elements but 1000"),
                       std::invalid_argument);
  CHECK_THROWS_AS(write_npy("/nonexistent-dir/x.npy", v, {1000}), std::runtime_error);
}

TEST_CASE("npy: messages name the source and what was wrong") {
  auto bytes = write_npy_to_memory(std::vector<float>(6), {2, 3});
  bytes.pop_back();
  CHECK_THROWS_WITH_AS(read_npy(bytes, "x.npy"),
                       "x.npy: shape [2, 3] of '<f4' needs 24 data bytes, but the file has 23", LoadError);
  CHECK_THROWS_WITH_AS(read_npy(data_dir() / "missing.npy"), doctest::Contains("missing.npy: cannot read file"),
                       LoadError);
  const auto good = file_bytes(data_dir() / "f4_2x3.npy");
  for (std::size_t n = 0; n < good.size(); ++n) {
    INFO("prefix length ", n);
    CHECK_THROWS_AS(read_npy(std::span(good).first(n)), LoadError);
  }
}

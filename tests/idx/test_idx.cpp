// IDX reader: values against fixtures written by Python's struct/gzip
// (tests/data/idx/make_idx_fixtures.py), every validation rule against
// hand-built malformed inputs, and the real Fashion-MNIST files when the
// dataset-fashion-mnist package is installed (facts checked with Python).
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "ctnn/io/idx.hpp"

namespace {

const std::filesystem::path data_dir = std::filesystem::path(CTNN_TEST_DATA_DIR) / "idx";

std::vector<std::byte> bytes(std::initializer_list<int> values) {
  std::vector<std::byte> out;
  for (int v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

// An IDX header built by hand: big-endian dimensions after the magic.
std::vector<std::byte> header(int type, std::vector<std::uint32_t> dims) {
  std::vector<std::byte> out = bytes({0, 0, type, static_cast<int>(dims.size())});
  for (std::uint32_t d : dims)
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<std::byte>((d >> shift) & 0xFF));
  return out;
}

std::string error_of(const std::vector<std::byte>& b) {
  try {
    ctnn::io::read_idx(b, "case.idx");
  } catch (const ctnn::io::LoadError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string error_of(const std::filesystem::path& p) {
  try {
    ctnn::io::read_idx(p);
  } catch (const ctnn::io::LoadError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("u8 arrays read identically from plain, gzip and two-member gzip files") {
  for (const char* name : {"u8_2x3x4.idx", "u8_2x3x4.idx.gz", "u8_2x3x4_two_members.idx.gz"}) {
    CAPTURE(name);
    const ctnn::io::IdxArray a = ctnn::io::read_idx(data_dir / name);
    CHECK(a.type == ctnn::io::IdxType::u8);
    CHECK(a.shape == std::vector<std::uint64_t>{2, 3, 4});
    CHECK(a.elements() == 24);
    const auto v = a.u8();
    REQUIRE(v.size() == 24);
    for (std::size_t i = 0; i < v.size(); ++i) CHECK(v[i] == (i * 7) % 256);
    CHECK(a.source.find(name) != std::string::npos);
  }
}

TEST_CASE("multi-byte element types are big-endian on disk") {
  using ctnn::io::IdxType;
  const auto i16 = ctnn::io::read_idx(data_dir / "i16.idx");
  CHECK(i16.type == IdxType::i16);
  CHECK(i16.to_f32() == std::vector<float>{-2, -1, 0, 1, 300});

  const auto i32 = ctnn::io::read_idx(data_dir / "i32.idx");
  CHECK(i32.to_f32() == std::vector<float>{-100000.f, 123456789.f});

  const auto f32 = ctnn::io::read_idx(data_dir / "f32.idx");
  CHECK(f32.shape == std::vector<std::uint64_t>{2, 2});
  const auto f = f32.to_f32();
  CHECK(f == std::vector<float>{1.5f, -2.25f, 300000.f, -0.f});
  CHECK(std::signbit(f[3]));

  const auto f64 = ctnn::io::read_idx(data_dir / "f64.idx");
  CHECK(f64.to_f32() == std::vector<float>{0.1f, -1e10f, 2.5f});

  const auto i8 = ctnn::io::read_idx(data_dir / "i8.idx");
  CHECK(i8.to_f32() == std::vector<float>{-128, -1, 127});
  CHECK_THROWS_WITH_AS(i8.u8(), doctest::Contains("expected IDX elements of type u8, found i8"), ctnn::io::LoadError);
}

TEST_CASE("expect() names the file, the wanted and the found rank and type") {
  const auto labels = ctnn::io::read_idx(data_dir / "labels_10.idx.gz");
  CHECK_NOTHROW(labels.expect(ctnn::io::IdxType::u8, 1));
  try {
    labels.expect(ctnn::io::IdxType::u8, 3);
    FAIL("expect must throw");
  } catch (const ctnn::io::LoadError& e) {
    const std::string m = e.what();
    CHECK(m.find("labels_10.idx.gz") != std::string::npos);
    CHECK(m.find("expected a rank-3 u8 IDX array, found rank 1 u8 [10]") != std::string::npos);
  }
}

TEST_CASE("malformed headers are refused with a message saying what is wrong") {
  CHECK(error_of(bytes({})).find("0 bytes, too short for an IDX header") != std::string::npos);
  CHECK(error_of(bytes({0, 0, 8})).find("3 bytes, too short") != std::string::npos);
  CHECK(error_of(bytes({0, 1, 8, 1, 0, 0, 0, 0})).find("first two bytes must be 0x00 0x00, found 0x00 0x01") !=
        std::string::npos);
  CHECK(error_of(bytes({0, 0, 7, 1, 0, 0, 0, 0})).find("unknown IDX type code 0x07") != std::string::npos);
  CHECK(error_of(bytes({0, 0, 0x0A, 1, 0, 0, 0, 0})).find("unknown IDX type code 0x0a") != std::string::npos);
  CHECK(error_of(bytes({0, 0, 8, 0})).find("IDX rank is 0") != std::string::npos);
  // Three dimensions announced, two present.
  CHECK(error_of(bytes({0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1})).find("shorter than its IDX header (4 + 4 x 3 dimensions "
                                                                     "= 16 bytes)") != std::string::npos);
  // Source names appear in every message.
  CHECK(error_of(bytes({})).rfind("case.idx: ", 0) == 0);
}

TEST_CASE("data sizes must match the header exactly") {
  auto b = header(0x08, {2, 3});
  b.resize(b.size() + 5);  // 6 needed
  const std::string truncated = error_of(b);
  CHECK(truncated.find("IDX data is truncated: shape [2, 3] of u8 needs 6 bytes after the 12-byte header, the file "
                       "has 5") != std::string::npos);

  b.resize(b.size() + 3);  // 8 present
  CHECK(error_of(b).find("2 unexpected bytes after its data") != std::string::npos);

  auto i32 = header(0x0C, {3});
  i32.resize(i32.size() + 11);  // 12 needed
  CHECK(error_of(i32).find("shape [3] of i32 needs 12 bytes") != std::string::npos);

  // Dimensions whose product overflows 64 bits are refused, not wrapped.
  auto huge = header(0x0E, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu});
  CHECK(error_of(huge).find("needs more than 2^64 bytes") != std::string::npos);

  // A zero dimension is an empty array, valid when no data follows.
  const auto empty = ctnn::io::read_idx(header(0x08, {0, 28}), "empty");
  CHECK(empty.elements() == 0);
  CHECK(empty.data.empty());
}

TEST_CASE("broken gzip streams are refused") {
  CHECK(error_of(data_dir / "bad_truncated.idx.gz").find("gzip stream is truncated") != std::string::npos);
  CHECK(error_of(data_dir / "bad_crc.idx.gz").find("corrupt gzip data") != std::string::npos);
  CHECK(error_of(data_dir / "bad_crc.idx.gz").find("incorrect data check") != std::string::npos);
  CHECK(error_of(data_dir / "bad_trailing.idx.gz").find("4 unexpected bytes after the gzip stream") !=
        std::string::npos);
  CHECK(error_of(data_dir / "bad_not_idx.gz").find("not an IDX file") != std::string::npos);
  CHECK(error_of(data_dir / "no_such_file.idx.gz").find("cannot read file") != std::string::npos);
}

TEST_CASE("parse_idx points at read_idx for compressed input, and gunzip honours its size cap") {
  const auto gz = [] {
    std::ifstream in(data_dir / "u8_2x3x4.idx.gz", std::ios::binary);
    std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> b(c.size());
    std::memcpy(b.data(), c.data(), c.size());
    return b;
  }();
  CHECK_THROWS_WITH_AS(ctnn::io::parse_idx(gz, "x.gz"), doctest::Contains("a gzip stream: read the file with read_idx"),
                       ctnn::io::LoadError);
  CHECK(ctnn::io::gunzip(gz, "x.gz").size() == 40);
  CHECK(ctnn::io::gunzip(gz, "x.gz", 40).size() == 40);
  CHECK_THROWS_WITH_AS(ctnn::io::gunzip(gz, "x.gz", 39), doctest::Contains("inflates to more than 39 bytes"),
                       ctnn::io::LoadError);
}

TEST_CASE("Fashion-MNIST test set from Debian's dataset-fashion-mnist") {
  const std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir / "t10k-labels-idx1-ubyte.gz")) {
    MESSAGE("dataset-fashion-mnist is not installed; skipped");
    return;
  }
  const auto labels = ctnn::io::read_idx(dir / "t10k-labels-idx1-ubyte.gz");
  labels.expect(ctnn::io::IdxType::u8, 1);
  CHECK(labels.shape == std::vector<std::uint64_t>{10000});
  const auto l = labels.u8();
  CHECK(std::vector<int>(l.begin(), l.begin() + 10) == std::vector<int>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7});
  std::array<int, 10> per_class{};
  for (auto v : l) {
    REQUIRE(v < 10);
    ++per_class[v];
  }
  for (int count : per_class) CHECK(count == 1000);

  const auto images = ctnn::io::read_idx(dir / "t10k-images-idx3-ubyte.gz");
  images.expect(ctnn::io::IdxType::u8, 3);
  CHECK(images.shape == std::vector<std::uint64_t>{10000, 28, 28});
  const auto px = images.u8();
  long first = 0, last = 0;
  for (std::size_t i = 0; i < 784; ++i) {
    first += px[i];
    last += px[9999 * 784 + i];
  }
  CHECK(first == 33456);
  CHECK(last == 24390);
  CHECK(px[14 * 28 + 14] == 110);
}

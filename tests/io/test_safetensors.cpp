#include <doctest/doctest.h>

#include <ctnn/io/safetensors.hpp>
#include <ctnn/io/weights.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "io_test_support.hpp"
#include "temp_path.hpp"

using namespace ctnn::io;
using namespace ctnn_io_test;

namespace {

std::span<const std::byte> as_bytes_of(const std::vector<float>& v) { return std::as_bytes(std::span(v)); }

std::vector<float> to_f32(const TensorRecord& r) {
  std::vector<float> out(r.elements());
  convert_to_f32(r, out, "test");
  return out;
}

// Independent decoding of an IEEE binary16 bit pattern (by its definition,
// in double arithmetic) for the exhaustive F16 check.
float half_by_definition(std::uint16_t h) {
  const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exp == 0) return static_cast<float>(sign * std::ldexp(mant, -24));
  if (exp == 31) return mant == 0 ? static_cast<float>(sign * INFINITY) : NAN;
  return static_cast<float>(sign * std::ldexp(1024 + mant, exp - 25));
}

std::string load_error(const std::vector<std::byte>& bytes) {
  try {
    read_safetensors(bytes);
  } catch (const LoadError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("safetensors: file from the stdlib writer matches numpy's values") {
  const auto path = data_dir() / "mixed.safetensors";
  const TensorFile f = read_safetensors(path);
  CHECK(f.source == path.string());
  REQUIRE(f.metadata.size() == 1);
  CHECK(f.metadata[0] == std::pair<std::string, std::string>{"format", "pt"});

  const auto table = read_table(data_dir() / "mixed.expected.txt");
  REQUIRE(table.size() == 14);
  REQUIRE(f.tensors.size() == table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& row = table[i];
    REQUIRE(row.size() == 5);
    const auto name_bytes = from_hex(row[0]);
    const std::string name(reinterpret_cast<const char*>(name_bytes.data()), name_bytes.size());
    INFO("tensor ", name);
    const TensorRecord& t = f.tensors[i];  // header order is preserved
    CHECK(t.name == name);
    CHECK(dtype_name(t.dtype) == row[1]);
    CHECK(t.shape == parse_shape(row[2]));
    const auto raw = from_hex(row[3]);
    REQUIRE(t.bytes.size() == raw.size());
    CHECK(std::equal(raw.begin(), raw.end(), t.bytes.begin()));
    if (row[4] != "int") CHECK(bits_of(to_f32(t)) == parse_bits(row[4]));
  }
  CHECK(f.find("poids.\xc3\xa9t\xc3\xa9.\xf0\x9f\x98\x80") != nullptr);
  CHECK(f.find("quote\"back\\slash/tab\t") != nullptr);
  CHECK(f.find("missing") == nullptr);
}

TEST_CASE("safetensors: padding, leading whitespace and empty files") {
  const TensorFile p = read_safetensors(data_dir() / "padded.safetensors");
  REQUIRE(p.tensors.size() == 1);
  CHECK(to_f32(p.tensors[0]) == std::vector<float>{1.5f, -0.25f});
  CHECK(p.metadata.empty());

  const TensorFile e = read_safetensors(data_dir() / "no_tensors.safetensors");
  CHECK(e.tensors.empty());
  CHECK(e.storage.empty());
}

TEST_CASE("safetensors: the in-memory reader copies and agrees with the file reader") {
  const auto path = data_dir() / "mixed.safetensors";
  std::vector<std::byte> bytes = file_bytes(path);
  const TensorFile a = read_safetensors(path);
  TensorFile b = read_safetensors(bytes);
  std::fill(bytes.begin(), bytes.end(), std::byte{0xAB});  // the result must not alias the input
  CHECK(b.source == "<memory>");
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    CHECK(a.tensors[i].name == b.tensors[i].name);
    CHECK(std::equal(a.tensors[i].bytes.begin(), a.tensors[i].bytes.end(), b.tensors[i].bytes.begin(),
                     b.tensors[i].bytes.end()));
  }
  // Moving the file keeps the records valid (they point into storage).
  TensorFile moved = std::move(b);
  CHECK(to_f32(*moved.find("scalar")) == std::vector<float>{42.5f});
}

TEST_CASE("safetensors: the writer is byte-identical to the reference (Rust) writer") {
  const auto ref_bytes = file_bytes(data_dir() / "reference_writer.safetensors");
  const TensorFile ref = read_safetensors(ref_bytes);
  REQUIRE(ref.tensors.size() == 12);
  std::vector<TensorToWrite> in;
  for (const auto& t : ref.tensors) in.push_back({t.name, t.dtype, t.shape, t.bytes});
  std::reverse(in.begin(), in.end());  // the writer must impose the order itself
  const auto ours = write_safetensors_to_memory(in);
  CHECK(ours.size() == ref_bytes.size());
  CHECK(ours == ref_bytes);
}

TEST_CASE("safetensors: write/read round trip, file and memory, with alignment") {
  const std::vector<float> w = {1.f, -2.f, 3.5f, 1e-30f, -0.f, INFINITY};
  const std::vector<std::uint16_t> h = {0x3c00, 0x8001, 0x7bff};
  const std::vector<std::uint8_t> mask = {1, 0, 1};
  const std::vector<double> d = {0.1};
  std::vector<TensorToWrite> in = {
      {"mask", DType::boolean, {3}, std::as_bytes(std::span(mask))},
      {"layer.weight", DType::f32, {2, 3}, as_bytes_of(w)},
      {"h", DType::f16, {3}, std::as_bytes(std::span(h))},
      {"d", DType::f64, {}, std::as_bytes(std::span(d))},
      {"nothing", DType::f32, {0, 7}, {}},
  };
  const auto tmp = ctnn_test::temp_path("io_roundtrip.safetensors");
  write_safetensors(tmp, in, {{"format", "pt"}, {"note", "caf\xc3\xa9 \"q\"\n"}});
  const TensorFile f = read_safetensors(tmp);
  std::filesystem::remove(tmp);
  CHECK(f.metadata == SafetensorsMetadata{{"format", "pt"}, {"note", "caf\xc3\xa9 \"q\"\n"}});
  REQUIRE(f.tensors.size() == in.size());
  std::vector<std::string> names;
  for (const auto& t : f.tensors) names.push_back(t.name);
  // Reference order: F64, F32 by name, F16, BOOL.
  CHECK(names == std::vector<std::string>{"d", "layer.weight", "nothing", "h", "mask"});
  for (const auto& t : in) {
    const TensorRecord* r = f.find(t.name);
    REQUIRE(r != nullptr);
    CHECK(r->dtype == t.dtype);
    CHECK(r->shape == t.shape);
    CHECK(std::equal(r->bytes.begin(), r->bytes.end(), t.bytes.begin(), t.bytes.end()));
  }
  // Every tensor starts at a multiple of its element size from the start of
  // the file (8 + header is a multiple of 8).
  const auto mem = write_safetensors_to_memory(in, {});
  std::uint64_t n = 0;
  std::memcpy(&n, mem.data(), 8);
  CHECK(n % 8 == 0);
  const TensorFile m = read_safetensors(mem);
  CHECK(m.metadata.empty());
  for (const auto& t : m.tensors)
    CHECK((8 + n + static_cast<std::uint64_t>(t.bytes.data() - m.storage.data())) % dtype_size(t.dtype) == 0);
  CHECK(to_f32(*m.find("layer.weight")) == w);
}

TEST_CASE("safetensors: the writer refuses inconsistent input") {
  const std::vector<float> w(6);
  const auto bytes = as_bytes_of(w);
  auto write = [](std::vector<TensorToWrite> in, SafetensorsMetadata md = {}) { write_safetensors_to_memory(in, md); };
  CHECK_THROWS_WITH_AS(write({{"a", DType::f32, {2, 3}, bytes}, {"a", DType::f32, {6}, bytes}}),
                       doctest::Contains("duplicate tensor 'a'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(write({{"a", DType::f32, {2, 2}, bytes}}),
                       doctest::Contains("has 24 bytes, but F32 [2, 2] needs 4 x 4"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(write({{"a", DType::f16, {1ull << 32, 1ull << 32}, bytes}}),
                       doctest::Contains("shape overflows"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(write({{"__metadata__", DType::f32, {6}, bytes}}), doctest::Contains("__metadata__"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(write({{"a\xff", DType::f32, {6}, bytes}}), doctest::Contains("not valid UTF-8"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(write({}, {{"k", "1"}, {"k", "2"}}), doctest::Contains("duplicate metadata key 'k'"),
                       std::invalid_argument);
  CHECK_THROWS_AS(write_safetensors("/nonexistent-dir/x.safetensors", std::vector<TensorToWrite>{}),
                  std::runtime_error);
}

TEST_CASE("safetensors: F16 conversion is exact for all 65536 bit patterns") {
  std::vector<std::uint16_t> all(65536);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
  const TensorToWrite t{"h", DType::f16, {65536}, std::as_bytes(std::span(all))};
  const TensorFile f = read_safetensors(write_safetensors_to_memory(std::span(&t, 1)));
  const auto got = to_f32(f.tensors[0]);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const float want = half_by_definition(all[i]);
    if (std::isnan(want)) {
      // IEEE widening keeps sign and payload (as numpy does).
      const std::uint32_t bits = ((i & 0x8000u) << 16) | 0x7f800000u | ((i & 0x3ffu) << 13);
      mismatches += std::bit_cast<std::uint32_t>(got[i]) != bits;
    } else {
      mismatches += std::bit_cast<std::uint32_t>(got[i]) != std::bit_cast<std::uint32_t>(want);
    }
#if defined(__FLT16_MAX__) && !defined(__clang__)
    if (!std::isnan(want)) mismatches += static_cast<float>(std::bit_cast<_Float16>(all[i])) != got[i];
#endif
  }
  CHECK(mismatches == 0);
}

TEST_CASE("safetensors: BF16 conversion is exact (upper half of float32)") {
  std::vector<std::uint16_t> all(65536);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
  const TensorToWrite t{"b", DType::bf16, {256, 256}, std::as_bytes(std::span(all))};
  const TensorFile f = read_safetensors(write_safetensors_to_memory(std::span(&t, 1)));
  const auto got = to_f32(f.tensors[0]);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    // By value: sign * mantissa * 2^exponent, built without bit manipulation.
    const int exp = static_cast<int>((i >> 7) & 0xff), mant = static_cast<int>(i & 0x7f);
    const double sign = (i & 0x8000) ? -1.0 : 1.0;
    const double v = exp == 0 ? sign * std::ldexp(mant, -133) : sign * std::ldexp(128 + mant, exp - 134);
    if (exp == 255) mismatches += mant ? !std::isnan(got[i]) : got[i] != static_cast<float>(sign * INFINITY);
    else mismatches += got[i] != static_cast<float>(v) || std::signbit(got[i]) != (sign < 0);
  }
  CHECK(mismatches == 0);
}

TEST_CASE("safetensors: messages name the source, tensor, expectation and finding") {
  const std::vector<float> w(3);
  const TensorToWrite t{"layer1.0.conv1.weight", DType::f32, {3}, as_bytes_of(w)};
  auto bytes = write_safetensors_to_memory(std::span(&t, 1), {});
  bytes.push_back(std::byte{0});
  CHECK(load_error(bytes) ==
        "<memory>: the data buffer has 13 bytes but the tensors cover 12; trailing bytes are not allowed");
  bytes.resize(bytes.size() - 2);
  CHECK(load_error(bytes) == "<memory>: tensor 'layer1.0.conv1.weight': data_offsets end at 12, past the end of "
                             "the data buffer (11 bytes)");
  try {
    read_safetensors(std::vector<std::byte>(4), "weights.bin");
    FAIL("no error");
  } catch (const LoadError& e) {
    CHECK(std::string(e.what()) ==
          "weights.bin: file too small for a safetensors header: expected at least 8 bytes, found 4");
  }
  CHECK_THROWS_WITH_AS(read_safetensors(data_dir() / "does-not-exist.safetensors"),
                       doctest::Contains("does-not-exist.safetensors: cannot read file"), LoadError);
}

TEST_CASE("safetensors: every prefix of a valid file is refused with a LoadError") {
  const auto bytes = file_bytes(data_dir() / "mixed.safetensors");
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO("prefix length ", n);
    CHECK_THROWS_AS(read_safetensors(std::span(bytes).first(n)), LoadError);
  }
  CHECK_NOTHROW(read_safetensors(bytes));
}

TEST_CASE("safetensors: single-byte corruption never crashes") {
  // Flipping each byte of the header must give either a LoadError or a file
  // that still validates (e.g. a changed name); the sanitizer build and the
  // fuzz target cover the rest.
  const auto original = file_bytes(data_dir() / "mixed.safetensors");
  std::uint64_t n = 0;
  std::memcpy(&n, original.data(), 8);
  std::size_t refused = 0;
  for (std::size_t i = 0; i < 8 + n; ++i) {
    auto bytes = original;
    bytes[i] ^= std::byte{0x5A};
    try {
      const TensorFile f = read_safetensors(bytes);
      for (const auto& t : f.tensors) CHECK(t.bytes.data() + t.bytes.size() <= f.storage.data() + f.storage.size());
    } catch (const LoadError&) {
      ++refused;
    }
  }
  CHECK(refused > 8 + n / 2);
}

TEST_CASE("read_weights tells safetensors from torch.save by structure, for every low byte of the header length") {
  const auto dir = ctnn_test::temp_path("format_sniff");
  std::filesystem::create_directories(dir);
  const std::string json = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  for (std::uint64_t low = 0; low < 256; ++low) {
    const std::uint64_t length = 256 + low;  // the file's first byte is `low`, 0x80 included
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>(length >> (8 * i) & 0xff);
    std::string header = json;
    header.resize(length, ' ');  // safetensors allows trailing spaces in the header
    bytes += header;
    const float value = 2.5f;
    bytes.append(reinterpret_cast<const char*>(&value), sizeof value);
    const auto path = dir / "w.safetensors";
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    INFO("header length ", length);
    const TensorFile f = ctnn::io::read_weights(path);
    REQUIRE(f.tensors.size() == 1);
    CHECK(to_f32(f.tensors[0]) == std::vector<float>{2.5f});
  }
  // A legacy torch.save pickle (PROTO 2, then torch's magic number) is still
  // recognised as one, and refused with advice.
  const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
  const auto path = dir / "legacy.pth";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(legacy), sizeof legacy);
  CHECK_THROWS_WITH_AS(ctnn::io::read_weights(path), doctest::Contains("legacy (non-zip) torch.save"), LoadError);
  std::filesystem::remove_all(dir);
}

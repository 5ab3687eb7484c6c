// IDX reader: the container of MNIST and Fashion-MNIST, plain or gzip'd.
//
// Layout: two zero bytes, a type code, the number of dimensions, then one
// big-endian u32 per dimension, then the elements in C order, big-endian.
// Data sets usually ship gzip-compressed (Debian's dataset-fashion-mnist:
// /usr/share/datasets/fashion-mnist/*-idx?-ubyte.gz); read_idx recognises
// gzip by its magic bytes and inflates it with zlib, so this header, unlike
// the rest of ctnn, needs zlib: link ZLIB::ZLIB (find_package(ZLIB)).
//
// Everything read is validated before it is used: the magic, the type code,
// the rank, that the header fits, that the dimensions' product neither
// overflows nor disagrees with the bytes present, and that the gzip stream is
// intact (zlib checks its CRC and length) and within a size cap.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <zlib.h>

#include "ctnn/io/tensor_file.hpp"

namespace ctnn::io {

enum class IdxType : std::uint8_t { u8 = 0x08, i8 = 0x09, i16 = 0x0B, i32 = 0x0C, f32 = 0x0D, f64 = 0x0E };

constexpr std::string_view idx_type_name(IdxType t) {
  switch (t) {
    case IdxType::u8: return "u8";
    case IdxType::i8: return "i8";
    case IdxType::i16: return "i16";
    case IdxType::i32: return "i32";
    case IdxType::f32: return "f32";
    case IdxType::f64: return "f64";
  }
  return "?";
}

constexpr std::size_t idx_type_size(IdxType t) {
  switch (t) {
    case IdxType::i16: return 2;
    case IdxType::i32: case IdxType::f32: return 4;
    case IdxType::f64: return 8;
    default: return 1;
  }
}

namespace idx_limits {
// Inflated size cap: a few kilobytes of gzip can claim gigabytes. The largest
// file of the MNIST family (train images) is 47 MB.
inline constexpr std::uint64_t max_bytes = std::uint64_t{2} << 30;
}  // namespace idx_limits

namespace detail::idx {
[[noreturn]] inline void fail(std::string_view source, const std::string& message) {
  throw LoadError(std::string(source) + ": " + message);
}

inline std::string hex_byte(std::byte b) {
  constexpr char digits[] = "0123456789abcdef";
  const auto v = std::to_integer<unsigned>(b);
  return std::string("0x") + digits[v >> 4] + digits[v & 15];
}

inline std::uint32_t big_endian_u32(const std::byte* p) {
  return std::to_integer<std::uint32_t>(p[0]) << 24 | std::to_integer<std::uint32_t>(p[1]) << 16 |
         std::to_integer<std::uint32_t>(p[2]) << 8 | std::to_integer<std::uint32_t>(p[3]);
}

inline bool known_type(std::byte code) {
  switch (std::to_integer<unsigned>(code)) {
    case 0x08: case 0x09: case 0x0B: case 0x0C: case 0x0D: case 0x0E: return true;
    default: return false;
  }
}
}  // namespace detail::idx

// One IDX array. Elements are stored in host byte order, C order.
struct IdxArray {
  std::string source;  // path or "<memory>"
  IdxType type = IdxType::u8;
  std::vector<std::uint64_t> shape;
  std::vector<std::byte> data;

  std::uint64_t elements() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }

  // Refuses (naming the file, what was expected and what was found) anything
  // but a `rank`-dimensional array of `want`: a labels file passed where
  // images are expected fails here, not as a garbled picture.
  const IdxArray& expect(IdxType want, std::size_t rank) const {
    if (type != want || shape.size() != rank)
      detail::idx::fail(source, "expected a rank-" + std::to_string(rank) + " " + std::string(idx_type_name(want)) +
                                    " IDX array, found rank " + std::to_string(shape.size()) + " " +
                                    std::string(idx_type_name(type)) + " " + shape_string(shape));
    return *this;
  }

  // The elements of a u8 array (MNIST images and labels).
  std::span<const std::uint8_t> u8() const {
    expect_type(IdxType::u8);
    return {reinterpret_cast<const std::uint8_t*>(data.data()), data.size()};
  }

  // Every element converted to float, whatever the stored type.
  std::vector<float> to_f32() const {
    const std::size_t n = data.size() / idx_type_size(type);
    std::vector<float> out(n);
    const std::byte* p = data.data();
    for (std::size_t i = 0; i < n; ++i) out[i] = element_as_float(p + i * idx_type_size(type));
    return out;
  }

 private:
  void expect_type(IdxType want) const {
    if (type != want)
      detail::idx::fail(source, "expected IDX elements of type " + std::string(idx_type_name(want)) + ", found " +
                                    std::string(idx_type_name(type)));
  }
  float element_as_float(const std::byte* p) const {
    switch (type) {
      case IdxType::u8: return static_cast<float>(std::to_integer<std::uint8_t>(*p));
      case IdxType::i8: return static_cast<float>(static_cast<std::int8_t>(std::to_integer<std::uint8_t>(*p)));
      case IdxType::i16: { std::int16_t v; std::memcpy(&v, p, 2); return static_cast<float>(v); }
      case IdxType::i32: { std::int32_t v; std::memcpy(&v, p, 4); return static_cast<float>(v); }
      case IdxType::f32: { float v; std::memcpy(&v, p, 4); return v; }
      case IdxType::f64: { double v; std::memcpy(&v, p, 8); return static_cast<float>(v); }
    }
    return 0.f;
  }
};

inline bool is_gzip(std::span<const std::byte> bytes) {
  return bytes.size() >= 2 && bytes[0] == std::byte{0x1f} && bytes[1] == std::byte{0x8b};
}

// Parses an uncompressed IDX image held in memory.
inline IdxArray parse_idx(std::span<const std::byte> bytes, std::string source = "<memory>") {
  namespace d = detail::idx;
  if (bytes.size() < 4)
    d::fail(source, "file is " + std::to_string(bytes.size()) + " bytes, too short for an IDX header (at least 4)");
  if (bytes[0] != std::byte{0} || bytes[1] != std::byte{0}) {
    std::string msg = "not an IDX file: the first two bytes must be 0x00 0x00, found " + d::hex_byte(bytes[0]) + " " +
                      d::hex_byte(bytes[1]);
    if (is_gzip(bytes)) msg += " (a gzip stream: read the file with read_idx, which inflates it)";
    d::fail(source, msg);
  }
  if (!d::known_type(bytes[2]))
    d::fail(source, "unknown IDX type code " + d::hex_byte(bytes[2]) +
                        " (expected 0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32 or 0x0e f64)");
  const auto type = static_cast<IdxType>(std::to_integer<std::uint8_t>(bytes[2]));
  const std::size_t rank = std::to_integer<std::size_t>(bytes[3]);
  if (rank == 0) d::fail(source, "IDX rank is 0; an IDX array has at least one dimension");
  const std::size_t header = 4 + 4 * rank;
  if (bytes.size() < header)
    d::fail(source, "file is " + std::to_string(bytes.size()) + " bytes, shorter than its IDX header (4 + 4 x " +
                        std::to_string(rank) + " dimensions = " + std::to_string(header) + " bytes)");

  IdxArray out;
  out.source = std::move(source);
  out.type = type;
  const std::size_t width = idx_type_size(type);
  std::uint64_t need = width;
  bool overflow = false;
  for (std::size_t i = 0; i < rank; ++i) {
    const std::uint64_t dim = d::big_endian_u32(bytes.data() + 4 + 4 * i);
    out.shape.push_back(dim);
    if (dim != 0 && need > std::numeric_limits<std::uint64_t>::max() / dim) overflow = true;
    need *= dim;
  }
  const std::uint64_t have = bytes.size() - header;
  if (overflow || need > have)
    d::fail(out.source, "IDX data is truncated: shape " + shape_string(out.shape) + " of " +
                            std::string(idx_type_name(type)) + " needs " +
                            (overflow ? std::string("more than 2^64") : std::to_string(need)) + " bytes after the " +
                            std::to_string(header) + "-byte header, the file has " + std::to_string(have));
  if (need < have)
    d::fail(out.source, "IDX file has " + std::to_string(have - need) + " unexpected bytes after its data (shape " +
                            shape_string(out.shape) + " of " + std::string(idx_type_name(type)) + " takes " +
                            std::to_string(need) + " bytes after the " + std::to_string(header) + "-byte header)");

  out.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  if constexpr (std::endian::native == std::endian::little) {
    if (width > 1)
      for (std::size_t i = 0; i < out.data.size(); i += width)
        std::reverse(out.data.begin() + static_cast<std::ptrdiff_t>(i),
                     out.data.begin() + static_cast<std::ptrdiff_t>(i + width));
  }
  return out;
}

// Inflates a gzip file (one or more members, as gzip(1) allows) held in
// memory. Refuses corrupt or truncated streams, trailing bytes, and output
// beyond `max_bytes`.
inline std::vector<std::byte> gunzip(std::span<const std::byte> bytes, std::string_view source,
                                     std::uint64_t max_bytes = idx_limits::max_bytes) {
  namespace d = detail::idx;
  if (!is_gzip(bytes)) d::fail(source, "not a gzip stream (it must start with 0x1f 0x8b)");
  z_stream zs{};
  // 16 + MAX_WBITS: accept the gzip wrapper only (zlib then checks CRC-32 and length).
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) d::fail(source, "zlib could not start inflating");
  struct Guard {
    z_stream* zs;
    ~Guard() { inflateEnd(zs); }
  } guard{&zs};

  std::vector<std::byte> out;
  std::size_t consumed = 0;
  std::byte chunk[1 << 16];
  // zlib counts in 32-bit uInt: feed large inputs in slices.
  constexpr std::size_t max_slice = std::size_t{1} << 30;
  while (true) {
    if (zs.avail_in == 0 && consumed < bytes.size()) {
      const std::size_t slice = std::min(bytes.size() - consumed, max_slice);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(bytes.data() + consumed));
      zs.avail_in = static_cast<uInt>(slice);
      consumed += slice;
    }
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const std::size_t produced = sizeof chunk - zs.avail_out;
    if (out.size() + produced > max_bytes)
      d::fail(source, "gzip stream inflates to more than " + std::to_string(max_bytes) + " bytes; refusing it");
    out.insert(out.end(), chunk, chunk + produced);
    const std::size_t position = consumed - zs.avail_in;  // compressed bytes used so far
    if (rc == Z_STREAM_END) {
      if (position == bytes.size()) return out;
      if (!is_gzip(bytes.subspan(position)))
        d::fail(source, std::to_string(bytes.size() - position) + " unexpected bytes after the gzip stream (at offset " +
                            std::to_string(position) + ")");
      inflateReset(&zs);  // another gzip member follows
      continue;
    }
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT)
      d::fail(source, std::string("corrupt gzip data at or before compressed byte ") + std::to_string(position) +
                          " (zlib: " + (zs.msg ? zs.msg : "invalid data") + ")");
    if (rc == Z_MEM_ERROR) d::fail(source, "zlib ran out of memory");
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && consumed == bytes.size())
      d::fail(source, "gzip stream is truncated: its " + std::to_string(bytes.size()) +
                          " bytes end before the end-of-stream marker");
    if (rc != Z_OK && rc != Z_BUF_ERROR) d::fail(source, "zlib failed with code " + std::to_string(rc));
  }
}

// Parses IDX bytes that may be gzip-compressed (recognised by content).
inline IdxArray read_idx(std::span<const std::byte> bytes, std::string source = "<memory>") {
  if (is_gzip(bytes)) return parse_idx(gunzip(bytes, source), std::move(source));
  return parse_idx(bytes, std::move(source));
}

// Reads an IDX file, plain or gzip'd.
inline IdxArray read_idx(const std::filesystem::path& path) {
  const std::string source = path.string();
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) detail::idx::fail(source, "cannot read file: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::idx::fail(source, "cannot open file for reading");
  std::vector<std::byte> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size || in.peek() != std::ifstream::traits_type::eof())
    detail::idx::fail(source, "file changed size while it was being read");
  return read_idx(bytes, source);
}

}  // namespace ctnn::io

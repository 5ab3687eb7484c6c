// NumPy .npy reader (to float32) and float32 writer.
//
// Layout: "\x93NUMPY", major, minor, header length (u16 for 1.0, u32 for 2.0
// and 3.0, little-endian), then a Python dict literal
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and a newline, then the raw array. The header is parsed
// by a small grammar of its own (strings, True/False, tuples of integers)
// rather than anything resembling eval: it is the only part of the format
// that is code-like, and it is attacker-controlled.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ctnn/io/tensor_file.hpp"

namespace ctnn::io {

struct NpyArray {
  std::vector<std::uint64_t> shape;  // C order; [] is a scalar
  std::vector<float> data;
};

namespace npy_limits {
// numpy.load refuses headers above 10000 bytes by default (max_header_size)
// because literal_eval on a large input is a denial-of-service vector.
inline constexpr std::uint64_t max_header_bytes = 10000;
inline constexpr std::size_t max_rank = 64;  // numpy 2's NPY_MAXDIMS
}  // namespace npy_limits

namespace detail::npy {

inline constexpr std::array<unsigned char, 6> magic = {0x93, 'N', 'U', 'M', 'P', 'Y'};

[[noreturn]] inline void fail(std::string_view source, const std::string& message) {
  throw LoadError(std::string(source) + ": " + message);
}

// The element types read_npy converts, by their numpy descr string.
enum class Element { f4, f8, f2, i8, i4, i2, i1, u1 };

struct ElementInfo {
  std::string_view descr;
  Element element;
  std::size_t size;
};

inline constexpr std::array<ElementInfo, 10> element_table{{
    {"<f4", Element::f4, 4}, {"<f8", Element::f8, 8}, {"<f2", Element::f2, 2}, {"<i8", Element::i8, 8},
    {"<i4", Element::i4, 4}, {"<i2", Element::i2, 2}, {"|i1", Element::i1, 1}, {"|u1", Element::u1, 1},
    // numpy never writes a byte order for one-byte types, but accepts one.
    {"<i1", Element::i1, 1}, {"<u1", Element::u1, 1},
}};

inline constexpr std::string_view supported_descrs = "<f4, <f8, <f2, <i8, <i4, <i2, |i1, |u1";

struct Header {
  ElementInfo element;
  std::vector<std::uint64_t> shape;
  std::size_t data_offset = 0;  // where the array starts in the file
};

// Parser for the header dict. Everything outside numpy's own output grammar
// (plus the whitespace and trailing-comma freedom of a Python literal) is an
// error.
class DictParser {
 public:
  DictParser(std::string_view text, std::string_view source) : text_(text), source_(source) {}

  [[noreturn]] void fail(const std::string& message) const {
    npy::fail(source_, "malformed header: " + message + " at character " + std::to_string(pos_) + " of \"" +
                           printable(text_) + "\"");
  }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n')) ++pos_;
  }
  bool at(char c) {
    skip_space();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  void expect(char c) {
    if (!at(c)) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  bool at_end() {
    skip_space();
    return pos_ == text_.size();
  }

  // 'text' or "text"; no escapes, which numpy never needs for these keys.
  std::string read_string() {
    skip_space();
    if (pos_ == text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) fail("expected a quoted string");
    const char quote = text_[pos_++];
    const std::size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' || text_[pos_] == '\n') fail("unsupported character in string");
      ++pos_;
    }
    if (pos_ == text_.size()) fail("unterminated string");
    return std::string(text_.substr(start, pos_++ - start));
  }

  bool read_bool() {
    skip_space();
    for (const bool value : {true, false}) {
      const std::string_view word = value ? "True" : "False";
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    fail("expected True or False");
  }

  std::uint64_t read_uint() {
    skip_space();
    const std::size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '-') fail("negative dimension");
    std::uint64_t v = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const auto digit = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (v > (UINT64_MAX - digit) / 10) fail("dimension does not fit in 64 bits");
      v = v * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) fail("expected a non-negative integer");
    if (text_[start] == '0' && pos_ - start > 1) fail("integer with a leading zero");
    return v;
  }

  // A Python tuple of ints: (), (n,), (a, b), (a, b,). "(n)" is an int in
  // Python, not a tuple, and numpy refuses it; so do we.
  std::vector<std::uint64_t> read_shape() {
    expect('(');
    std::vector<std::uint64_t> shape;
    bool trailing_comma = false;
    while (!at(')')) {
      if (shape.size() == npy_limits::max_rank)
        fail("more than " + std::to_string(npy_limits::max_rank) + " dimensions");
      shape.push_back(read_uint());
      trailing_comma = at(',');
      if (trailing_comma) ++pos_;
      else if (!at(')')) fail("expected ',' or ')' in shape");
    }
    ++pos_;
    if (shape.size() == 1 && !trailing_comma) fail("shape (n) is not a tuple; expected (n,)");
    return shape;
  }

 private:
  // The header for messages: padding dropped, control bytes as '?', long
  // headers cut.
  static std::string printable(std::string_view s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.remove_suffix(1);
    std::string out;
    for (char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7F) ? c : '?';
    return s.size() > 200 ? out + "..." : out;
  }

  std::string_view text_;
  std::string_view source_;
  std::size_t pos_ = 0;
};

inline ElementInfo parse_descr(const std::string& descr, std::string_view source) {
  for (const auto& e : element_table)
    if (e.descr == descr) return e;
  if (!descr.empty() && descr[0] == '>')
    fail(source, "big-endian data ('" + descr + "') is not supported; expected little-endian, one of " +
                     std::string(supported_descrs));
  fail(source, "unsupported dtype '" + descr + "'; expected one of " + std::string(supported_descrs));
}

// Element order equals C order when at most one dimension exceeds 1, so
// fortran_order=True is harmless there (numpy writes it for 1-D arrays saved
// from Fortran-ordered views).
inline bool fortran_equals_c(const std::vector<std::uint64_t>& shape) {
  std::size_t big = 0;
  for (auto d : shape) big += d > 1;
  return big <= 1;
}

// Parses the dict: exactly the keys descr, fortran_order and shape, once each.
inline Header parse_dict(std::string_view text, std::string_view source) {
  DictParser p(text, source);
  std::optional<std::string> descr;
  std::optional<bool> fortran;
  std::optional<std::vector<std::uint64_t>> shape;
  p.expect('{');
  while (!p.at('}')) {
    const std::string key = p.read_string();
    p.expect(':');
    if (key == "descr") {
      if (descr) p.fail("duplicate key 'descr'");
      if (p.at('[')) fail(source, "structured dtypes (a list 'descr') are not supported");
      descr = p.read_string();
    } else if (key == "fortran_order") {
      if (fortran) p.fail("duplicate key 'fortran_order'");
      fortran = p.read_bool();
    } else if (key == "shape") {
      if (shape) p.fail("duplicate key 'shape'");
      shape = p.read_shape();
    } else {
      p.fail("unexpected key '" + key + "'; expected only 'descr', 'fortran_order' and 'shape'");
    }
    if (p.at(',')) p.expect(',');
    else if (!p.at('}')) p.fail("expected ',' or '}'");
  }
  p.expect('}');
  if (!p.at_end()) p.fail("unexpected text after the dict");
  if (!descr) p.fail("missing key 'descr'");
  if (!fortran) p.fail("missing key 'fortran_order'");
  if (!shape) p.fail("missing key 'shape'");

  Header h{parse_descr(*descr, source), std::move(*shape), 0};
  if (*fortran && !fortran_equals_c(h.shape))
    fail(source, "fortran_order=True with shape " + shape_string(h.shape) +
                     " is not supported; save a C-ordered array (numpy.ascontiguousarray)");
  return h;
}

// Magic, version and header length; returns the parsed header.
inline Header parse_preamble(std::span<const std::byte> bytes, std::string_view source) {
  const auto byte = [&](std::size_t i) { return std::to_integer<unsigned>(bytes[i]); };
  if (bytes.size() < 10) fail(source, "file too small for a .npy header: " + std::to_string(bytes.size()) + " bytes");
  for (std::size_t i = 0; i < magic.size(); ++i)
    if (byte(i) != magic[i]) fail(source, "not a .npy file: expected the magic string \\x93NUMPY");
  const unsigned major = byte(6), minor = byte(7);
  if (!((major == 1 || major == 2 || major == 3) && minor == 0))
    fail(source, "unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                     "; expected 1.0, 2.0 or 3.0");
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + length_bytes) fail(source, "file ends inside the header length");
  std::uint64_t header_len = 0;
  for (std::size_t i = length_bytes; i-- > 0;) header_len = (header_len << 8) | byte(8 + i);
  if (header_len > npy_limits::max_header_bytes)
    fail(source, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                     std::to_string(npy_limits::max_header_bytes) + " bytes");
  const std::size_t start = 8 + length_bytes;
  if (bytes.size() - start < header_len)
    fail(source, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                     std::to_string(bytes.size()) + " bytes)");
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()) + start, header_len);
  // Versions 1.0 and 2.0 are latin-1; 3.0 is UTF-8. The grammar we accept is
  // ASCII in both, so anything else is refused by the dict parser.
  Header h = parse_dict(text, source);
  h.data_offset = start + header_len;
  return h;
}

// Checked element and byte counts; the data must fill the rest exactly.
inline std::uint64_t check_data_size(const Header& h, std::uint64_t available, std::string_view source) {
  std::uint64_t elements = 1;
  for (auto d : h.shape) {
    if (d != 0 && elements > UINT64_MAX / d)
      fail(source, "shape " + shape_string(h.shape) + " has more elements than fit in 64 bits");
    elements *= d;
  }
  if (elements > UINT64_MAX / h.element.size)
    fail(source, "shape " + shape_string(h.shape) + " needs more bytes than fit in 64 bits");
  const std::uint64_t nbytes = elements * h.element.size;
  if (nbytes != available)
    fail(source, "shape " + shape_string(h.shape) + " of '" + std::string(h.element.descr) + "' needs " +
                     std::to_string(nbytes) + " data bytes, but the file has " + std::to_string(available));
  return elements;
}

template <class T>
T load_le(const std::byte* p) {
  static_assert(std::endian::native == std::endian::little, "ctnn's readers assume a little-endian host");
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

inline void convert(Element e, const std::byte* src, std::span<float> out) {
  const std::size_t n = out.size();
  switch (e) {
    case Element::f4:
      if (n) std::memcpy(out.data(), src, n * 4);
      return;
    case Element::f8:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_le<double>(src + 8 * i));
      return;
    case Element::f2:
      for (std::size_t i = 0; i < n; ++i) out[i] = io::detail::half_to_float(load_le<std::uint16_t>(src + 2 * i));
      return;
    case Element::i8:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_le<std::int64_t>(src + 8 * i));
      return;
    case Element::i4:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_le<std::int32_t>(src + 4 * i));
      return;
    case Element::i2:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_le<std::int16_t>(src + 2 * i));
      return;
    case Element::i1:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_le<std::int8_t>(src + i));
      return;
    case Element::u1:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(load_le<std::uint8_t>(src + i));
      return;
  }
}

// numpy's own header text for a C-ordered float32 array, byte for byte
// (numpy/lib/format.py: sorted keys, repr() values, 21 spare characters so
// the first dimension can grow in place, then spaces and '\n' up to a
// multiple of 64 bytes for the whole preamble).
inline std::string header_text(const std::vector<std::uint64_t>& shape) {
  std::string shape_repr = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) shape_repr += (i ? ", " : "") + std::to_string(shape[i]);
  shape_repr += shape.size() == 1 ? ",)" : ")";
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_repr + ", }";
  constexpr std::size_t growth_axis_max_digits = 21;
  if (!shape.empty()) h.append(growth_axis_max_digits - std::to_string(shape[0]).size(), ' ');
  constexpr std::size_t preamble = 10, align = 64;  // magic + version + u16 length
  const std::size_t pad = align - (preamble + h.size() + 1) % align;
  h.append(pad, ' ');
  h += '\n';
  return h;
}

}  // namespace detail::npy

// Parses a .npy image held in memory into float32.
inline NpyArray read_npy(std::span<const std::byte> bytes, std::string_view source = "<memory>") {
  namespace npy = detail::npy;
  const npy::Header h = npy::parse_preamble(bytes, source);
  const std::uint64_t elements = npy::check_data_size(h, bytes.size() - h.data_offset, source);
  NpyArray out;
  out.shape = h.shape;
  out.data.resize(elements);
  npy::convert(h.element.element, bytes.data() + h.data_offset, out.data);
  return out;
}

inline NpyArray read_npy(const std::filesystem::path& path) {
  const std::string source = path.string();
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) detail::npy::fail(source, "cannot read file: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::npy::fail(source, "cannot open file for reading");
  std::vector<std::byte> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size || in.peek() != std::ifstream::traits_type::eof())
    detail::npy::fail(source, "file changed size while it was being read");
  return read_npy(bytes, source);
}

// A version 1.0, C-ordered little-endian float32 image, identical to what
// numpy.save writes for the same array. Throws std::invalid_argument when
// the shape does not match the element count.
inline std::vector<std::byte> write_npy_to_memory(std::span<const float> data, const std::vector<std::uint64_t>& shape) {
  std::uint64_t elements = 1;
  for (auto d : shape) {
    if (d != 0 && elements > UINT64_MAX / d) throw std::invalid_argument("npy: shape overflows");
    elements *= d;
  }
  if (elements != data.size())
    throw std::invalid_argument("npy: shape " + shape_string(shape) + " has " + std::to_string(elements) +
                                " elements but " + std::to_string(data.size()) + " values were given");
  const std::string header = detail::npy::header_text(shape);
  if (header.size() > 0xFFFF) throw std::invalid_argument("npy: header too long for format 1.0");
  std::vector<std::byte> out;
  out.reserve(10 + header.size() + data.size_bytes());
  const auto append = [&out](const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  };
  const std::array<unsigned char, 10> preamble = {
      0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
      static_cast<unsigned char>(header.size() & 0xFF), static_cast<unsigned char>(header.size() >> 8)};
  append(preamble.data(), preamble.size());
  append(header.data(), header.size());
  append(data.data(), data.size_bytes());
  return out;
}

inline void write_npy(const std::filesystem::path& path, std::span<const float> data,
                      const std::vector<std::uint64_t>& shape) {
  const std::vector<std::byte> bytes = write_npy_to_memory(data, shape);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(path.string() + ": cannot open for writing");
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error(path.string() + ": write failed");
}

}  // namespace ctnn::io

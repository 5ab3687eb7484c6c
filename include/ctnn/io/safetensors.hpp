// safetensors reader and writer.
//
// Layout: u64 little-endian N, N bytes of UTF-8 JSON header, then the data
// buffer that every header offset is relative to. The reader enforces every
// rule of the reference implementation (huggingface/safetensors tensor.rs:
// read_metadata + Metadata::validate) and refuses a little more: unknown
// keys in a tensor entry and dtypes that ctnn cannot convert. Loading a file
// that another reader would interpret differently is how weight files get
// smuggled, so nothing ambiguous is accepted.
#pragma once

#include <algorithm>
#include <array>
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
#include <unordered_set>
#include <utility>
#include <vector>

#include "ctnn/io/json_lite.hpp"
#include "ctnn/io/replace_file.hpp"
#include "ctnn/io/tensor_file.hpp"

namespace ctnn::io {

namespace safetensors_limits {
// The reference reader's MAX_HEADER_SIZE.
inline constexpr std::uint64_t max_header_bytes = 100'000'000;
// Far above any real checkpoint (ResNet-152: ~1000 tensors); bounds memory
// spent on a header that is nothing but tiny entries.
inline constexpr std::size_t max_tensors = 1'000'000;
// numpy 2's NPY_MAXDIMS; a rank beyond this is not a weight.
inline constexpr std::size_t max_rank = 64;
// Top-level object -> tensor entry -> shape array.
inline constexpr std::size_t max_depth = 3;
}  // namespace safetensors_limits

namespace detail::safetensors {

inline constexpr std::string_view metadata_key = "__metadata__";

// Every dtype name the reference defines, with its size in bits, and the
// ctnn DType it maps to where ctnn can represent it.
struct DTypeInfo {
  std::string_view name;
  unsigned bits;
  std::optional<DType> dtype;
};

inline constexpr std::array<DTypeInfo, 22> dtype_table{{
    {"BOOL", 8, DType::boolean},   {"F4", 4, std::nullopt},        {"F6_E2M3", 6, std::nullopt},
    {"F6_E3M2", 6, std::nullopt},  {"U8", 8, DType::u8},           {"I8", 8, DType::i8},
    {"F8_E5M2", 8, std::nullopt},  {"F8_E4M3", 8, std::nullopt},   {"F8_E8M0", 8, std::nullopt},
    {"F8_E4M3FNUZ", 8, std::nullopt}, {"F8_E5M2FNUZ", 8, std::nullopt}, {"I16", 16, DType::i16},
    {"U16", 16, std::nullopt},     {"F16", 16, DType::f16},        {"BF16", 16, DType::bf16},
    {"I32", 32, DType::i32},       {"U32", 32, std::nullopt},      {"F32", 32, DType::f32},
    {"C64", 64, std::nullopt},     {"F64", 64, DType::f64},        {"I64", 64, DType::i64},
    {"U64", 64, std::nullopt},
}};

// Position in the reference's Dtype enum (the table's order).
constexpr std::size_t dtype_rank(DType d) {
  for (std::size_t i = 0; i < dtype_table.size(); ++i)
    if (dtype_table[i].dtype == d) return i;
  return 0;
}

inline constexpr std::string_view supported_dtypes = "F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL";

// One tensor entry as the header states it, before layout checks.
struct Entry {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0, end = 0;
};

struct Header {
  std::vector<Entry> entries;  // header order
  std::vector<std::pair<std::string, std::string>> metadata;
};

[[noreturn]] inline void fail(std::string_view source, const std::string& message) {
  throw LoadError(std::string(source) + ": " + message);
}

[[noreturn]] inline void fail_tensor(std::string_view source, std::string_view tensor, const std::string& message) {
  fail(source, "tensor '" + std::string(tensor) + "': " + message);
}

// Rules 1-2: the 8-byte prefix exists and announces a header that is within
// the cap and fits inside the file. Returns N.
inline std::uint64_t check_header_length(std::span<const std::byte> prefix, std::uint64_t file_size,
                                         std::string_view source) {
  if (file_size < 8)
    fail(source, "file too small for a safetensors header: expected at least 8 bytes, found " +
                     std::to_string(file_size));
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | std::to_integer<std::uint64_t>(prefix[static_cast<std::size_t>(i)]);
  if (n > safetensors_limits::max_header_bytes)
    fail(source, "header length " + std::to_string(n) + " exceeds the limit of " +
                     std::to_string(safetensors_limits::max_header_bytes) + " bytes");
  // n <= 1e8, so 8 + n cannot overflow.
  if (8 + n > file_size)
    fail(source, "header length " + std::to_string(n) + " runs past the end of the file: expected at most " +
                     std::to_string(file_size - 8) + " bytes after the length prefix");
  return n;
}

// Maps a dtype name to ctnn's DType; a valid safetensors name that ctnn
// cannot represent is refused as clearly as a misspelt one.
inline DType parse_dtype(std::string_view name, std::string_view source, std::string_view tensor) {
  for (const auto& d : dtype_table) {
    if (d.name != name) continue;
    if (d.dtype) return *d.dtype;
    fail_tensor(source, tensor, "dtype " + std::string(name) + " is not supported; expected one of " +
                                    std::string(supported_dtypes));
  }
  fail_tensor(source, tensor, "unknown dtype \"" + std::string(name) + "\"; expected one of " +
                                  std::string(supported_dtypes));
}

inline void require_kind(json_lite::Reader& r, json_lite::Kind want, const std::string& what) {
  if (r.peek() != want)
    r.fail("expected " + what + " to be " + std::string(json_lite::describe(want)) + ", found " + r.found());
}

inline std::vector<std::uint64_t> parse_shape(json_lite::Reader& r) {
  require_kind(r, json_lite::Kind::array, "\"shape\"");
  r.begin_array();
  std::vector<std::uint64_t> shape;
  while (r.next_element()) {
    if (shape.size() == safetensors_limits::max_rank)
      r.fail("shape has more than " + std::to_string(safetensors_limits::max_rank) + " dimensions");
    shape.push_back(r.read_u64());
  }
  return shape;
}

inline std::pair<std::uint64_t, std::uint64_t> parse_offsets(json_lite::Reader& r) {
  require_kind(r, json_lite::Kind::array, "\"data_offsets\"");
  r.begin_array();
  std::uint64_t v[2] = {0, 0};
  std::size_t count = 0;
  while (r.next_element()) {
    if (count == 2) r.fail("expected \"data_offsets\" to be [BEGIN, END], found more than 2 entries");
    v[count++] = r.read_u64();
  }
  if (count != 2)
    r.fail("expected \"data_offsets\" to be [BEGIN, END], found " + std::to_string(count) +
           (count == 1 ? " entry" : " entries"));
  return {v[0], v[1]};
}

// Rule 3 for one tensor: exactly dtype, shape and data_offsets. JSON-level
// errors are re-raised by the caller with the tensor name.
inline Entry parse_entry(json_lite::Reader& r, std::string name, std::string_view source) {
  Entry e;
  e.name = std::move(name);
  require_kind(r, json_lite::Kind::object, "the entry");
  r.begin_object();
  bool has_dtype = false, has_shape = false, has_offsets = false;
  std::string key;
  while (r.next_member(key)) {
    if (key == "dtype") {
      require_kind(r, json_lite::Kind::string, "\"dtype\"");
      e.dtype = parse_dtype(r.read_string(), source, e.name);
      has_dtype = true;
    } else if (key == "shape") {
      e.shape = parse_shape(r);
      has_shape = true;
    } else if (key == "data_offsets") {
      std::tie(e.begin, e.end) = parse_offsets(r);
      has_offsets = true;
    } else {
      r.fail("unexpected key \"" + key + "\"; expected only dtype, shape and data_offsets");
    }
  }
  if (!has_dtype) r.fail("missing \"dtype\"");
  if (!has_shape) r.fail("missing \"shape\"");
  if (!has_offsets) r.fail("missing \"data_offsets\"");
  return e;
}

inline std::vector<std::pair<std::string, std::string>> parse_metadata(json_lite::Reader& r) {
  require_kind(r, json_lite::Kind::object, "\"__metadata__\"");
  r.begin_object();
  std::vector<std::pair<std::string, std::string>> out;
  std::string key;
  while (r.next_member(key)) {
    // The format allows only string values; arbitrary JSON here would make
    // the header grammar unbounded.
    require_kind(r, json_lite::Kind::string, "metadata value \"" + key + "\"");
    out.emplace_back(key, r.read_string());
  }
  return out;
}

// Rules 3-4: UTF-8, JSON, duplicates, depth, entry schema, known dtypes.
inline Header parse_header(std::string_view text, std::string_view source) {
  Header h;
  std::string context;  // "tensor 'x': " while inside an entry, for messages
  try {
    json_lite::Reader r(text, safetensors_limits::max_depth);
    require_kind(r, json_lite::Kind::object, "the header");
    r.begin_object();
    std::string key;
    while (r.next_member(key)) {
      if (key == metadata_key) {
        context = "__metadata__: ";
        h.metadata = parse_metadata(r);
      } else {
        if (h.entries.size() == safetensors_limits::max_tensors)
          r.fail("more than " + std::to_string(safetensors_limits::max_tensors) + " tensors");
        context = "tensor '" + key + "': ";
        h.entries.push_back(parse_entry(r, std::move(key), source));
      }
      context.clear();
    }
    r.finish();
  } catch (const json_lite::ParseError& e) {
    fail(source, "invalid header: " + context + e.what());
  }
  return h;
}

// Rule 5: END - BEGIN equals what dtype and shape need, computed with
// overflow checks. Returns the byte count.
inline std::uint64_t check_entry_size(const Entry& e, std::string_view source) {
  std::uint64_t elements = 1;
  for (auto d : e.shape) {
    if (d != 0 && elements > UINT64_MAX / d)
      fail_tensor(source, e.name, "shape " + shape_string(e.shape) + " has more elements than fit in 64 bits");
    elements *= d;
  }
  const std::uint64_t size = dtype_size(e.dtype);
  if (elements > UINT64_MAX / size)
    fail_tensor(source, e.name, "shape " + shape_string(e.shape) + " needs more bytes than fit in 64 bits");
  const std::uint64_t nbytes = elements * size;
  if (e.end < e.begin)
    fail_tensor(source, e.name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                    "] end before they begin");
  if (e.end - e.begin != nbytes)
    fail_tensor(source, e.name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                    "] cover " + std::to_string(e.end - e.begin) + " bytes, but " +
                                    std::string(dtype_name(e.dtype)) + " " + shape_string(e.shape) + " needs " +
                                    std::to_string(nbytes));
  return nbytes;
}

// Rules 6-7: sorted by offset, the tensors tile the data buffer exactly:
// first at 0, each starting where the previous ended, the last ending at the
// end of the file. Holes could hide a second payload; overlaps let one file
// mean two things.
inline void check_layout(const std::vector<Entry>& entries, std::uint64_t buffer_size, std::string_view source) {
  std::vector<const Entry*> order;
  order.reserve(entries.size());
  for (const auto& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
  });
  std::uint64_t expected_begin = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : order) {
    if (e->begin != expected_begin) {
      const std::string after = previous ? " (where '" + previous->name + "' ends)" : " (the start of the data)";
      fail_tensor(source, e->name,
                  std::string(e->begin < expected_begin ? "overlaps the previous tensor" : "leaves a gap") +
                      ": data starts at offset " + std::to_string(e->begin) + ", expected " +
                      std::to_string(expected_begin) + after);
    }
    if (e->end > buffer_size)
      fail_tensor(source, e->name, "data_offsets end at " + std::to_string(e->end) +
                                       ", past the end of the data buffer (" + std::to_string(buffer_size) +
                                       " bytes)");
    expected_begin = e->end;
    previous = e;
  }
  if (expected_begin != buffer_size)
    fail(source, "the data buffer has " + std::to_string(buffer_size) + " bytes but the tensors cover " +
                     std::to_string(expected_begin) + "; trailing bytes are not allowed");
}

inline Header validate(std::string_view header_text, std::uint64_t buffer_size, std::string_view source) {
  Header h = parse_header(header_text, source);
  for (const auto& e : h.entries) check_entry_size(e, source);
  check_layout(h.entries, buffer_size, source);
  return h;
}

// Assembles the result once the data buffer has been copied into `storage`.
inline TensorFile make_tensor_file(Header&& h, std::vector<std::byte>&& data, std::string source) {
  TensorFile f;
  f.source = std::move(source);
  f.storage = std::move(data);
  f.metadata = std::move(h.metadata);
  f.tensors.reserve(h.entries.size());
  for (auto& e : h.entries) {
    TensorRecord r;
    r.name = std::move(e.name);
    r.dtype = e.dtype;
    r.shape = std::move(e.shape);
    r.bytes = std::span<const std::byte>(f.storage.data() + e.begin, e.end - e.begin);
    f.tensors.push_back(std::move(r));
  }
  return f;
}

}  // namespace detail::safetensors

// Parses a safetensors image held in memory. The tensor bytes are copied into
// TensorFile::storage, so `bytes` need not outlive the result.
inline TensorFile read_safetensors(std::span<const std::byte> bytes, std::string source = "<memory>") {
  namespace st = detail::safetensors;
  const std::uint64_t n = st::check_header_length(bytes.first(std::min<std::size_t>(bytes.size(), 8)),
                                                  bytes.size(), source);
  const std::string_view header(reinterpret_cast<const char*>(bytes.data()) + 8, n);
  const auto data = bytes.subspan(8 + n);
  st::Header h = st::validate(header, data.size(), source);
  return st::make_tensor_file(std::move(h), std::vector<std::byte>(data.begin(), data.end()), std::move(source));
}

// Reads a file. The size is checked before anything is allocated, and no
// buffer is larger than the part of the file it holds.
inline TensorFile read_safetensors(const std::filesystem::path& path) {
  namespace st = detail::safetensors;
  const std::string source = path.string();
  std::error_code ec;
  const std::uintmax_t file_size = std::filesystem::file_size(path, ec);
  if (ec) st::fail(source, "cannot read file: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) st::fail(source, "cannot open file for reading");

  auto read_exactly = [&](void* dst, std::uint64_t count, const char* what) {
    in.read(static_cast<char*>(dst), static_cast<std::streamsize>(count));
    if (static_cast<std::uint64_t>(in.gcount()) != count)
      st::fail(source, std::string("file ended while reading the ") + what + " (was it truncated while loading?)");
  };

  std::array<std::byte, 8> prefix{};
  if (file_size >= 8) read_exactly(prefix.data(), 8, "header length");
  const std::uint64_t n = st::check_header_length(prefix, file_size, source);
  std::string header(n, '\0');
  read_exactly(header.data(), n, "header");
  const std::uint64_t buffer_size = file_size - 8 - n;
  st::Header h = st::validate(header, buffer_size, source);
  std::vector<std::byte> data(buffer_size);
  read_exactly(data.data(), buffer_size, "tensor data");
  if (in.peek() != std::ifstream::traits_type::eof())
    st::fail(source, "file grew while it was being read");
  return st::make_tensor_file(std::move(h), std::move(data), source);
}

// ---------------------------------------------------------------------------
// Writer

struct TensorToWrite {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  std::span<const std::byte> bytes;  // little-endian, row-major
};

using SafetensorsMetadata = std::vector<std::pair<std::string, std::string>>;

namespace detail::safetensors {

inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (u < 0x20) out += std::string("\\u00") + hex[u >> 4] + hex[u & 15];
    else out += c;
  }
  out += '"';
}

inline void check_writable_string(std::string_view s, std::string_view what) {
  if (json_lite::find_invalid_utf8(s))
    throw std::invalid_argument("safetensors: " + std::string(what) + " is not valid UTF-8");
}

// The header text (space-padded so the data starts at a multiple of 8) and
// the order in which tensor bytes follow it.
struct WritePlan {
  std::string header;
  std::vector<const TensorToWrite*> order;
  std::uint64_t data_size = 0;
};

inline WritePlan plan_write(std::span<const TensorToWrite> tensors, const SafetensorsMetadata& metadata) {
  WritePlan plan;
  std::unordered_set<std::string_view> names;
  for (const auto& t : tensors) {
    const std::string label = "tensor '" + t.name + "'";
    check_writable_string(t.name, label + " name");
    if (t.name == metadata_key) throw std::invalid_argument("safetensors: a tensor cannot be named __metadata__");
    if (!names.insert(t.name).second) throw std::invalid_argument("safetensors: duplicate " + label);
    std::uint64_t elements = 1;
    for (auto d : t.shape) {
      if (d != 0 && elements > UINT64_MAX / d) throw std::invalid_argument("safetensors: " + label + " shape overflows");
      elements *= d;
    }
    const std::uint64_t size = dtype_size(t.dtype);
    if (elements > UINT64_MAX / size || elements * size != t.bytes.size())
      throw std::invalid_argument("safetensors: " + label + " has " + std::to_string(t.bytes.size()) +
                                  " bytes, but " + std::string(dtype_name(t.dtype)) + " " + shape_string(t.shape) +
                                  " needs " + std::to_string(elements) + " x " + std::to_string(size));
    plan.order.push_back(&t);
  }
  std::unordered_set<std::string_view> keys;
  for (const auto& [k, v] : metadata) {
    check_writable_string(k, "metadata key");
    check_writable_string(v, "metadata value of '" + k + "'");
    if (!keys.insert(k).second) throw std::invalid_argument("safetensors: duplicate metadata key '" + k + "'");
  }
  // The reference writer's order: descending dtype rank (its enum order,
  // which sorts by element size), then name. Every tensor then starts at a
  // multiple of its element size, and the output is byte-identical to
  // safetensors.save for the same tensors and metadata.
  std::sort(plan.order.begin(), plan.order.end(), [](const TensorToWrite* a, const TensorToWrite* b) {
    const auto ra = dtype_rank(a->dtype), rb = dtype_rank(b->dtype);
    return ra != rb ? ra > rb : a->name < b->name;
  });

  std::string& h = plan.header;
  h += '{';
  if (!metadata.empty()) {
    append_json_string(h, metadata_key);
    h += ":{";
    for (std::size_t i = 0; i < metadata.size(); ++i) {
      if (i) h += ',';
      append_json_string(h, metadata[i].first);
      h += ':';
      append_json_string(h, metadata[i].second);
    }
    h += '}';
  }
  std::uint64_t offset = 0;
  for (const TensorToWrite* t : plan.order) {
    if (h.size() > 1) h += ',';
    append_json_string(h, t->name);
    h += ":{\"dtype\":\"";
    h += dtype_name(t->dtype);
    h += "\",\"shape\":[";
    for (std::size_t i = 0; i < t->shape.size(); ++i) {
      if (i) h += ',';
      h += std::to_string(t->shape[i]);
    }
    h += "],\"data_offsets\":[" + std::to_string(offset) + ',' + std::to_string(offset + t->bytes.size()) + "]}";
    offset += t->bytes.size();
  }
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');
  if (h.size() > safetensors_limits::max_header_bytes)
    throw std::invalid_argument("safetensors: header would exceed " +
                                std::to_string(safetensors_limits::max_header_bytes) + " bytes");
  plan.data_size = offset;
  return plan;
}

inline std::array<char, 8> length_prefix(std::uint64_t n) {
  std::array<char, 8> out{};
  for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out;
}

inline SafetensorsMetadata default_metadata() { return {{"format", "pt"}}; }

}  // namespace detail::safetensors

// Serialises tensors into a safetensors image. `metadata` becomes
// __metadata__ (omitted when empty); the default matches what PyTorch-side
// tools write. Throws std::invalid_argument for duplicate names or a byte
// count that does not match dtype and shape.
inline std::vector<std::byte> write_safetensors_to_memory(
    std::span<const TensorToWrite> tensors,
    const SafetensorsMetadata& metadata = detail::safetensors::default_metadata()) {
  namespace st = detail::safetensors;
  const st::WritePlan plan = st::plan_write(tensors, metadata);
  std::vector<std::byte> out;
  out.reserve(8 + plan.header.size() + plan.data_size);
  const auto prefix = st::length_prefix(plan.header.size());
  const auto append = [&out](const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  };
  append(prefix.data(), 8);
  append(plan.header.data(), plan.header.size());
  for (const TensorToWrite* t : plan.order) append(t->bytes.data(), t->bytes.size());
  return out;
}

// Writes to `path` through a temporary file renamed into place
// (io/replace_file.hpp), so a failed write never leaves a truncated
// checkpoint where a good one was. Throws std::runtime_error on I/O failure.
inline void write_safetensors(const std::filesystem::path& path, std::span<const TensorToWrite> tensors,
                              const SafetensorsMetadata& metadata = detail::safetensors::default_metadata()) {
  namespace st = detail::safetensors;
  const st::WritePlan plan = st::plan_write(tensors, metadata);
  replace_file(path, [&](std::ostream& out) {
    const auto prefix = st::length_prefix(plan.header.size());
    out.write(prefix.data(), 8);
    out.write(plan.header.data(), static_cast<std::streamsize>(plan.header.size()));
    for (const TensorToWrite* t : plan.order)
      out.write(reinterpret_cast<const char*>(t->bytes.data()), static_cast<std::streamsize>(t->bytes.size()));
  });
}

}  // namespace ctnn::io

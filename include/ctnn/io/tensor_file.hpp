// What every weight-file reader produces: named, typed, shaped byte ranges.
// safetensors.hpp and pth.hpp parse and validate their formats into a
// TensorFile; Model::load applies the load policy (strict, backbone-only) to
// it, so policies are written once for all formats.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ctnn::io {

// Every malformed-input error is a LoadError whose message names the source
// (file path or "<memory>"), what was expected and what was found.
class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class DType : std::uint8_t { f32, f16, bf16, f64, i64, i32, i16, i8, u8, boolean };

constexpr std::size_t dtype_size(DType d) {
  switch (d) {
    case DType::f64: case DType::i64: return 8;
    case DType::f32: case DType::i32: return 4;
    case DType::f16: case DType::bf16: case DType::i16: return 2;
    default: return 1;
  }
}

constexpr std::string_view dtype_name(DType d) {  // safetensors spelling
  switch (d) {
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::i32: return "I32";
    case DType::i16: return "I16";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::boolean: return "BOOL";
  }
  return "?";
}

struct TensorRecord {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;   // row-major (C order); [] is a scalar
  std::span<const std::byte> bytes;   // points into TensorFile::storage, little-endian, contiguous

  std::uint64_t elements() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

// Names from files go into error messages: keep them printable and short
// (bytes outside ASCII shown as \xNN, at most `limit` characters, then "...").
inline std::string printable(std::string_view s, std::size_t limit = 120) {
  std::string out;
  for (char c : s.substr(0, limit)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  if (s.size() > limit) out += "...";
  return out;
}

inline std::string shape_string(std::span<const std::uint64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace detail {
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h & 0x8000u) << 16;
  std::uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) { mant <<= 1; --exp; }
      bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}
}  // namespace detail

// Converts a floating-point record to float32 (F32 as is, F16/BF16/F64
// converted). Any other dtype is refused by name.
inline void convert_to_f32(const TensorRecord& r, std::span<float> out, std::string_view source) {
  const std::uint64_t n = r.elements();
  if (out.size() != n)
    throw LoadError(std::string(source) + ": tensor '" + r.name + "' has " + std::to_string(n) +
                    " elements, expected " + std::to_string(out.size()));
  const std::byte* b = r.bytes.data();
  switch (r.dtype) {
    case DType::f32:
      if (n) std::memcpy(out.data(), b, n * 4);
      return;
    case DType::f16:
      for (std::uint64_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, b + 2 * i, 2);
        out[i] = detail::half_to_float(h);
      }
      return;
    case DType::bf16:
      for (std::uint64_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, b + 2 * i, 2);
        out[i] = std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
      }
      return;
    case DType::f64:
      for (std::uint64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, b + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      return;
    default:
      throw LoadError(std::string(source) + ": tensor '" + r.name + "' has dtype " +
                      std::string(dtype_name(r.dtype)) + "; only F32, F16, BF16 and F64 weights are supported");
  }
}

// A parsed weight file. Owns its bytes; records point into them.
struct TensorFile {
  TensorFile() = default;
  TensorFile(TensorFile&&) noexcept = default;
  TensorFile& operator=(TensorFile&&) noexcept = default;
  TensorFile(const TensorFile&) = delete;  // records point into storage: a copy would dangle
  TensorFile& operator=(const TensorFile&) = delete;

  std::string source;                 // path or "<memory>"
  std::vector<std::byte> storage;     // raw file contents (or the parts records point into)
  std::vector<TensorRecord> tensors;  // in file order
  std::vector<std::pair<std::string, std::string>> metadata;  // safetensors __metadata__

  const TensorRecord* find(std::string_view name) const {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }

  // Renames every tensor under module `from` ("linear" covers "linear.weight",
  // not "linear2.weight") to the same place under `to`; an empty `from` or
  // `to` adds or strips a prefix ("module." of DataParallel checkpoints:
  // rename("module", "")). Returns how many were renamed; refuses a rename
  // that would give two tensors one name.
  std::size_t rename(std::string_view from, std::string_view to) {
    const auto moved = [&](const std::string& name) -> std::optional<std::string> {
      if (from.empty()) return to.empty() ? name : std::string(to) + "." + name;
      if (name == from) return std::string(to);
      if (name.size() > from.size() && name.starts_with(from) && name[from.size()] == '.')
        return to.empty() ? name.substr(from.size() + 1) : std::string(to) + name.substr(from.size());
      return std::nullopt;
    };
    std::vector<std::string> names;
    std::size_t count = 0;
    for (const auto& t : tensors) {
      const auto m = moved(t.name);
      names.push_back(m ? *m : t.name);
      count += m ? 1 : 0;
    }
    std::vector<std::string_view> sorted(names.begin(), names.end());
    std::sort(sorted.begin(), sorted.end());
    if (const auto twin = std::adjacent_find(sorted.begin(), sorted.end()); twin != sorted.end())
      throw LoadError(source + ": renaming '" + printable(from) + "' to '" + printable(to) +
                      "' gives two tensors the name '" + printable(*twin) + "'");
    for (std::size_t i = 0; i < names.size(); ++i) tensors[i].name = std::move(names[i]);
    return count;
  }
};

}  // namespace ctnn::io

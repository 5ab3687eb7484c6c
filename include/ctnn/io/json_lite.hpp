// A strict pull reader for the small JSON subset that weight-file headers use:
// objects, arrays, strings and non-negative integers. The caller walks the
// document (it knows the schema), so nothing is materialised beyond what the
// caller keeps: a hostile 100 MB header cannot balloon into a DOM many times
// its size.
//
// Strictness is deliberate. Real headers come from serde_json or Python's
// json module, and both agree on this subset; anything outside it (floats,
// negative numbers, true/false/null, duplicate keys, lone surrogates, invalid
// UTF-8) is either an attack or a broken writer, and accepting it would let
// two readers disagree about what a file contains.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace ctnn::io::json_lite {

// `offset` is the byte position in the parsed text where the problem was seen.
class ParseError : public std::runtime_error {
 public:
  ParseError(std::size_t offset, const std::string& message)
      : std::runtime_error(message + " (at byte " + std::to_string(offset) + " of the JSON text)"),
        offset_(offset) {}
  std::size_t offset() const noexcept { return offset_; }

 private:
  std::size_t offset_;
};

enum class Kind { object, array, string, number, literal, end, invalid };

inline std::string_view describe(Kind k) {
  switch (k) {
    case Kind::object: return "an object";
    case Kind::array: return "an array";
    case Kind::string: return "a string";
    case Kind::number: return "a number";
    case Kind::literal: return "true/false/null";
    case Kind::end: return "the end of the text";
    case Kind::invalid: break;
  }
  return "an invalid character";
}

// Position of the first byte that is not part of well-formed UTF-8 (no
// overlong forms, no UTF-16 surrogates, nothing above U+10FFFF), or nullopt.
inline std::optional<std::size_t> find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) { ++i; continue; }
    std::size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) { len = 2; }
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c == 0xED) { len = 3; hi = 0x9F; }  // excludes surrogates
    else if (c >= 0xE1 && c <= 0xEF) { len = 3; }
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) { len = 4; }
    else if (c == 0xF4) { len = 4; hi = 0x8F; }  // caps at U+10FFFF
    else return i;
    if (n - i < len) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return std::nullopt;
}

namespace detail {
inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

inline bool is_json_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// A printable rendering of one byte for messages ('x', or 0x1f for the rest).
inline std::string quote_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7F) return std::string("'") + c + "'";
  static constexpr char hex[] = "0123456789abcdef";
  return std::string("byte 0x") + hex[u >> 4] + hex[u & 15];
}
}  // namespace detail

// Usage, for {"k": [1, 2]}:
//   Reader r(text, 3);
//   r.begin_object();
//   std::string key;
//   while (r.next_member(key)) { r.begin_array(); while (r.next_element()) r.read_u64(); }
//   r.finish();
// Each container frame remembers its keys, so duplicates are refused at every
// level; `max_depth` bounds the number of open containers.
class Reader {
 public:
  Reader(std::string_view text, std::size_t max_depth) : text_(text), max_depth_(max_depth) {
    if (auto bad = find_invalid_utf8(text_)) fail_at(*bad, "invalid UTF-8");
  }

  std::size_t offset() const noexcept { return pos_; }

  // The kind of the next value, after skipping whitespace; consumes nothing else.
  Kind peek() {
    skip_whitespace();
    if (pos_ == text_.size()) return Kind::end;
    const char c = text_[pos_];
    if (c == '{') return Kind::object;
    if (c == '[') return Kind::array;
    if (c == '"') return Kind::string;
    if (c == '-' || (c >= '0' && c <= '9')) return Kind::number;
    if (c == 't' || c == 'f' || c == 'n') return Kind::literal;
    return Kind::invalid;
  }

  void begin_object() { open(Kind::object, '{'); }
  void begin_array() { open(Kind::array, '['); }

  // Advances to the next member of the innermost object and stores its key;
  // returns false (and closes the object) at '}'.
  bool next_member(std::string& key) {
    Frame& f = innermost(Kind::object);
    if (!advance_in(f, '}')) return false;
    const std::size_t key_at = pos_;
    if (peek() != Kind::string) fail("expected a string key or '}', found " + found());
    key = read_string();
    if (!f.keys.insert(key).second) fail_at(key_at, "duplicate key \"" + key + "\"");
    skip_whitespace();
    expect(':');
    return true;
  }

  // Advances to the next element of the innermost array; returns false (and
  // closes the array) at ']'.
  bool next_element() { return advance_in(innermost(Kind::array), ']'); }

  std::string read_string() {
    skip_whitespace();
    expect('"');
    std::string out;
    while (true) {
      if (pos_ == text_.size()) fail("unterminated string");
      const char c = text_[pos_];
      if (c == '"') { ++pos_; return out; }
      if (static_cast<unsigned char>(c) < 0x20) fail("unescaped control character " + detail::quote_byte(c) + " in string");
      if (c == '\\') {
        read_escape(out);
      } else {
        out += c;  // the whole text was checked for UTF-8 up front
        ++pos_;
      }
    }
  }

  std::uint64_t read_u64() {
    skip_whitespace();
    const std::size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '-') fail("negative number; expected a non-negative integer");
    if (pos_ == text_.size() || !is_digit(text_[pos_]))
      fail("expected a non-negative integer, found " + found());
    std::uint64_t value = 0;
    while (pos_ < text_.size() && is_digit(text_[pos_])) {
      const auto digit = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (value > (UINT64_MAX - digit) / 10) fail_at(start, "integer does not fit in 64 bits");
      value = value * 10 + digit;
      ++pos_;
    }
    if (text_[start] == '0' && pos_ - start > 1) fail_at(start, "number with a leading zero");
    if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E'))
      fail_at(start, "floating-point number; expected a non-negative integer");
    return value;
  }

  // Requires that every container was closed and only whitespace remains
  // (safetensors headers may be padded with spaces).
  void finish() {
    if (!frames_.empty()) fail("unterminated " + std::string(frames_.back().kind == Kind::object ? "object" : "array"));
    skip_whitespace();
    if (pos_ != text_.size()) fail("expected only whitespace after the top-level value, found " + found());
  }

  [[noreturn]] void fail(const std::string& message) const { fail_at(pos_, message); }
  [[noreturn]] static void fail_at(std::size_t at, const std::string& message) { throw ParseError(at, message); }

  // What the next token is, for "expected X, found Y" messages.
  std::string found() {
    const Kind k = peek();
    if (k == Kind::invalid) return detail::quote_byte(text_[pos_]);
    return std::string(describe(k));
  }

 private:
  struct Frame {
    Kind kind;
    bool empty = true;                    // no member/element seen yet: no comma due
    std::unordered_set<std::string> keys;  // objects only
  };

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  void skip_whitespace() {
    while (pos_ < text_.size() && detail::is_json_whitespace(text_[pos_])) ++pos_;
  }

  void expect(char c) {
    if (pos_ == text_.size() || text_[pos_] != c)
      fail(std::string("expected '") + c + "', found " + found());
    ++pos_;
  }

  void open(Kind kind, char bracket) {
    skip_whitespace();
    if (frames_.size() >= max_depth_)
      fail("nesting deeper than " + std::to_string(max_depth_) + " levels");
    expect(bracket);
    frames_.push_back(Frame{kind, true, {}});
  }

  Frame& innermost(Kind kind) {
    if (frames_.empty() || frames_.back().kind != kind)
      fail(kind == Kind::object ? "internal: no open object" : "internal: no open array");
    return frames_.back();
  }

  // Consumes the separator before the next item, or the closing bracket.
  bool advance_in(Frame& f, char close) {
    skip_whitespace();
    if (pos_ < text_.size() && text_[pos_] == close) {
      ++pos_;
      frames_.pop_back();
      return false;
    }
    if (!f.empty) {
      if (pos_ == text_.size() || text_[pos_] != ',')
        fail(std::string("expected ',' or '") + close + "', found " + found());
      ++pos_;
      skip_whitespace();
      // serde_json and Python's json refuse trailing commas; so do we.
      if (pos_ < text_.size() && text_[pos_] == close) fail(std::string("trailing comma before '") + close + "'");
    }
    f.empty = false;
    return true;
  }

  std::uint32_t read_hex4() {
    if (text_.size() - pos_ < 4) fail("truncated \\u escape");
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) {
      const char c = text_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<std::uint32_t>(c - 'A' + 10);
      else fail("invalid hex digit " + detail::quote_byte(c) + " in \\u escape");
    }
    pos_ += 4;
    return v;
  }

  // At a backslash: decodes one escape (a surrogate pair counts as one).
  void read_escape(std::string& out) {
    const std::size_t at = pos_;
    ++pos_;
    if (pos_ == text_.size()) fail("unterminated string");
    const char c = text_[pos_++];
    switch (c) {
      case '"': out += '"'; return;
      case '\\': out += '\\'; return;
      case '/': out += '/'; return;
      case 'b': out += '\b'; return;
      case 'f': out += '\f'; return;
      case 'n': out += '\n'; return;
      case 'r': out += '\r'; return;
      case 't': out += '\t'; return;
      case 'u': break;
      default: fail_at(at, "invalid escape \\" + std::string(1, c) + " in string");
    }
    std::uint32_t cp = read_hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(at, "unpaired low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (text_.substr(pos_, 2) != "\\u") fail_at(at, "unpaired high surrogate in \\u escape");
      pos_ += 2;
      const std::uint32_t low = read_hex4();
      if (low < 0xDC00 || low > 0xDFFF) fail_at(at, "unpaired high surrogate in \\u escape");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    detail::append_utf8(out, cp);
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t max_depth_;
  std::vector<Frame> frames_;
};

}  // namespace ctnn::io::json_lite

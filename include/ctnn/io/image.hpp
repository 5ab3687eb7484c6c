// PNG and JPEG decoding to 8-bit RGB, through stb_image (Debian libstb-dev).
//
// Pixel decoding is stb_image's; everything in front of it is ours, because
// stb_image is written for trusted game assets, not files off the internet:
//   * the format is sniffed from the magic bytes; only PNG and JPEG go on
//     (stb is compiled with STBI_ONLY_PNG / STBI_ONLY_JPEG: less code to attack);
//   * the container is walked first: PNG chunks must fit in the file and their
//     CRCs must match (stb skips CRCs), IHDR must come first and IEND must
//     exist; JPEG segments must fit, a supported frame header must precede the
//     first scan and the entropy-coded data must reach an end-of-image marker
//     (stb happily "decodes" a truncated JPEG into grey rows);
//   * the dimensions in the header are checked against ImageLimits, and
//     width x height x 3 against overflow, before stb allocates anything.
// Every refusal is an io::LoadError naming the source and what was wrong.
//
// Build note: the header declares the stb-backed decoder; its definition
// (stb_image compiled with ctnn's limits, all of stb's symbols `static`, so
// it never clashes with another copy of stb_image in the program) is emitted
// by exactly ONE translation unit of the program that writes
//
//   #define CTNN_IMAGE_IMPLEMENTATION
//   #include <ctnn/io/image.hpp>
//
// Forgetting it is a link error naming ctnn::io::detail::image::stb_decode.
// libstb.so is deliberately not used: its copy is compiled with stb's default
// limits (2^24 pixels per side) and every format stb knows.
//
// This header uses include guards rather than #pragma once so that the
// implementation block is emitted even if the header was already included
// (without the macro) earlier in the implementing translation unit.
#ifndef CTNN_IO_IMAGE_HPP
#define CTNN_IO_IMAGE_HPP

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ctnn/io/tensor_file.hpp"

namespace ctnn::io {

// An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC).
struct RgbImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // width * height * 3

  std::uint8_t at(int y, int x, int c) const {
    return pixels[(static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)) * 3 +
                  static_cast<std::size_t>(c)];
  }
};

enum class ImageFormat { png, jpeg };

// What a file's header claims, once its container has been checked.
struct ImageInfo {
  ImageFormat format;
  std::uint64_t width = 0, height = 0;
};

// What an image file may claim before anything is allocated for it. The
// defaults admit any photograph (a 100-megapixel camera frame is 1e8 pixels)
// and refuse the classic decompression bombs (a 100 kB PNG claiming
// 100000 x 100000 pixels).
struct ImageLimits {
  int max_side = 1 << 15;                       // pixels per side
  std::uint64_t max_pixels = std::uint64_t{1} << 28;  // width * height
  std::uint64_t max_file_bytes = std::uint64_t{1} << 30;
};

namespace detail::image {

[[noreturn]] inline void fail(std::string_view source, const std::string& message) {
  throw LoadError(std::string(source) + ": " + message);
}

inline std::uint32_t be32(const std::byte* p) {
  return std::to_integer<std::uint32_t>(p[0]) << 24 | std::to_integer<std::uint32_t>(p[1]) << 16 |
         std::to_integer<std::uint32_t>(p[2]) << 8 | std::to_integer<std::uint32_t>(p[3]);
}
inline unsigned be16(const std::byte* p) {
  return std::to_integer<unsigned>(p[0]) << 8 | std::to_integer<unsigned>(p[1]);
}
inline unsigned u8(std::byte b) { return std::to_integer<unsigned>(b); }

inline std::string hex(unsigned v, int digits = 2) {
  constexpr char d[] = "0123456789ABCDEF";
  std::string s(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = d[v & 15];
  return s;
}

inline constexpr std::array<unsigned char, 8> png_signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

inline bool starts_with(std::span<const std::byte> b, std::string_view magic, std::size_t at = 0) {
  if (b.size() < at + magic.size()) return false;
  for (std::size_t i = 0; i < magic.size(); ++i)
    if (u8(b[at + i]) != static_cast<unsigned char>(magic[i])) return false;
  return true;
}

// The format from the magic bytes; other well-known formats are named in the
// refusal so the user knows what to convert.
inline ImageFormat sniff(std::span<const std::byte> b, std::string_view source) {
  if (b.empty()) fail(source, "empty file (0 bytes), expected a PNG or JPEG image");
  if (b.size() >= 8 && std::equal(png_signature.begin(), png_signature.end(), b.begin(),
                                  [](unsigned char m, std::byte x) { return m == u8(x); }))
    return ImageFormat::png;
  if (b.size() >= 3 && u8(b[0]) == 0xFF && u8(b[1]) == 0xD8 && u8(b[2]) == 0xFF) return ImageFormat::jpeg;
  std::string other;
  if (starts_with(b, "GIF87a") || starts_with(b, "GIF89a")) other = "a GIF image";
  else if (starts_with(b, "BM")) other = "a BMP image";
  else if (starts_with(b, "RIFF") && starts_with(b, "WEBP", 8)) other = "a WebP image";
  else if (starts_with(b, "II*") || starts_with(b, std::string_view("MM\0*", 4))) other = "a TIFF image";
  else if (starts_with(b, "\x93NUMPY")) other = "a NumPy .npy file (use --input for tensors)";
  else if (b.size() >= 2 && u8(b[0]) == 0x89 && u8(b[1]) == 'P') other = "a damaged PNG signature";
  std::string first;
  for (std::size_t i = 0; i < b.size() && i < 8; ++i) {
    if (i) first += ' ';
    first += hex(u8(b[i]));
  }
  fail(source, "not a PNG or JPEG image" + (other.empty() ? std::string() : ": it looks like " + other) +
                   " (first bytes " + first + ")");
}

inline std::uint32_t crc32(std::span<const std::byte> data) {
  static constexpr auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t n = 0; n < 256; ++n) {
      std::uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::byte b : data) c = table[(c ^ u8(b)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}


inline std::string chunk_name(const std::byte* p) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const unsigned c = u8(p[i]);
    s += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
  }
  return s;
}

// PNG: signature, then chunks (u32 length, type, data, CRC over type+data).
inline ImageInfo check_png(std::span<const std::byte> b, std::string_view source) {
  ImageInfo h{ImageFormat::png};
  std::size_t pos = 8;
  bool seen_ihdr = false, seen_idat = false;
  for (int index = 0;; ++index) {
    if (b.size() - pos < 8)
      fail(source, "truncated PNG: the file ends at byte " + std::to_string(b.size()) +
                       (seen_ihdr ? " before the IEND chunk" : " before the IHDR chunk"));
    const std::uint64_t length = be32(b.data() + pos);
    const std::string type = chunk_name(b.data() + pos + 4);
    if (length > 0x7FFFFFFFu)
      fail(source, "corrupt PNG: chunk '" + type + "' at byte " + std::to_string(pos) + " claims " +
                       std::to_string(length) + " bytes (at most 2^31-1 allowed)");
    if (length + 12 > b.size() - pos)
      fail(source, "truncated PNG: chunk '" + type + "' at byte " + std::to_string(pos) + " claims " +
                       std::to_string(length) + " bytes of data, the file holds only " +
                       std::to_string(b.size() - pos) + " bytes from there (12 more are needed for length, type and CRC)");
    const auto body = b.subspan(pos + 4, static_cast<std::size_t>(length) + 4);
    const std::uint32_t stored = be32(b.data() + pos + 8 + length);
    if (crc32(body) != stored)
      fail(source, "corrupt PNG: CRC mismatch in chunk '" + type + "' at byte " + std::to_string(pos));
    if (index == 0) {
      if (type != "IHDR" || length != 13)
        fail(source, "corrupt PNG: the first chunk must be a 13-byte IHDR, found '" + type + "' of " +
                         std::to_string(length) + " bytes");
      const std::byte* d = b.data() + pos + 8;
      h.width = be32(d);
      h.height = be32(d + 4);
      const unsigned depth = u8(d[8]), colour = u8(d[9]);
      const bool ok_depth = (colour == 0 && (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)) ||
                            (colour == 3 && (depth == 1 || depth == 2 || depth == 4 || depth == 8)) ||
                            ((colour == 2 || colour == 4 || colour == 6) && (depth == 8 || depth == 16));
      if (!ok_depth)
        fail(source, "corrupt PNG: invalid bit depth " + std::to_string(depth) + " for colour type " +
                         std::to_string(colour));
      if (u8(d[10]) != 0 || u8(d[11]) != 0 || u8(d[12]) > 1)
        fail(source, "corrupt PNG: unknown compression, filter or interlace method in IHDR");
      seen_ihdr = true;
    } else if (type == "IHDR") {
      fail(source, "corrupt PNG: a second IHDR chunk at byte " + std::to_string(pos));
    }
    if (type == "IDAT") seen_idat = true;
    pos += static_cast<std::size_t>(length) + 12;
    if (type == "IEND") break;
  }
  if (!seen_idat) fail(source, "corrupt PNG: no IDAT (image data) chunk before IEND");
  return h;
}

// JPEG: SOI, then marker segments; each scan (SOS) is followed by entropy-
// coded data in which 0xFF is always followed by 0x00 (stuffing), a restart
// marker or fill 0xFF; any other marker ends the scan.
//
// Beyond the layout, the checks below close holes that fuzz_image found in
// stb_image 2.27 (fixed upstream in 2.28, not in Debian 12's copy):
//   * a Huffman table claiming more than 256 symbols is written past stb's
//     256-entry table;
//   * a scan that uses a Huffman or quantisation table no DHT/DQT defined
//     makes stb read its never-initialised tables, and an index computed from
//     them reads far out of bounds.
// So every table a scan needs (by the rules of baseline and progressive
// coding, ITU T.81 G.1.2) must have been defined before that scan.
inline ImageInfo check_jpeg(std::span<const std::byte> b, std::string_view source) {
  ImageInfo h{ImageFormat::jpeg};
  const std::size_t n = b.size();
  std::size_t pos = 2;
  bool seen_frame = false, seen_scan = false, progressive = false;
  bool huffman[2][4] = {}, quant[4] = {};  // defined so far: [DC/AC][id], [id]
  struct Component {
    unsigned id, table;
  };
  std::vector<Component> components;
  const auto truncated = [&](const std::string& where) {
    fail(source, "truncated JPEG: the data ends " + where + " before the end-of-image marker (FF D9)");
  };
  for (;;) {
    if (pos >= n) truncated(seen_scan ? "after a scan" : "in the headers");
    if (u8(b[pos]) != 0xFF)
      fail(source, "corrupt JPEG: expected a marker (FF xx) at byte " + std::to_string(pos) + ", found " +
                       hex(u8(b[pos])));
    while (pos < n && u8(b[pos]) == 0xFF) ++pos;  // fill bytes
    if (pos >= n) truncated("in a marker");
    const unsigned m = u8(b[pos++]);
    if (m == 0xD9) {
      if (!seen_scan) fail(source, "corrupt JPEG: end-of-image marker before any image data");
      break;
    }
    if (m == 0x00 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
      if (m == 0x00 || m == 0xD8)
        fail(source, "corrupt JPEG: unexpected marker FF " + hex(m) + " at byte " + std::to_string(pos - 2));
      continue;  // standalone markers carry no length
    }
    if (n - pos < 2) truncated("in the length of marker FF " + hex(m));
    const std::size_t length = be16(b.data() + pos);
    if (length < 2) fail(source, "corrupt JPEG: marker FF " + hex(m) + " has length " + std::to_string(length));
    if (length > n - pos) truncated("inside segment FF " + hex(m) + " at byte " + std::to_string(pos - 2));
    const std::byte* seg = b.data() + pos + 2;
    const std::size_t body = length - 2;
    const std::string at = " at byte " + std::to_string(pos - 2);
    const bool frame = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (frame) {
      if (m > 0xC2)
        fail(source, "unsupported JPEG coding process (frame marker FF " + hex(m) +
                         "): only baseline, extended and progressive Huffman JPEGs are supported");
      if (body < 6) fail(source, "corrupt JPEG: frame header of " + std::to_string(length) + " bytes" + at);
      if (seen_frame) fail(source, "corrupt JPEG: a second frame header" + at);
      progressive = m == 0xC2;
      h.height = be16(seg + 1);
      h.width = be16(seg + 3);
      const unsigned count = u8(seg[5]);
      if (count != 1 && count != 3 && count != 4)
        fail(source, "unsupported JPEG: " + std::to_string(count) + " colour components (1, 3 or 4 supported)");
      if (body != 6 + 3 * count)
        fail(source, "corrupt JPEG: frame header of " + std::to_string(length) + " bytes for " +
                         std::to_string(count) + " components" + at);
      for (unsigned c = 0; c < count; ++c) {
        const unsigned id = u8(seg[6 + 3 * c]), sampling = u8(seg[7 + 3 * c]), table = u8(seg[8 + 3 * c]);
        if ((sampling >> 4) < 1 || (sampling >> 4) > 4 || (sampling & 15) < 1 || (sampling & 15) > 4 || table > 3)
          fail(source, "corrupt JPEG: component " + std::to_string(c) + " has sampling factors " + hex(sampling) +
                           " and quantisation table " + std::to_string(table) + at);
        for (const Component& other : components)
          if (other.id == id) fail(source, "corrupt JPEG: two frame components with id " + std::to_string(id) + at);
        components.push_back({id, table});
      }
      if (h.height == 0)
        fail(source, "unsupported JPEG: the height is defined later by a DNL marker (height 0 in the frame header)");
      seen_frame = true;
    } else if (m == 0xC4) {
      // Huffman tables: class/id, 16 code-length counts, then as many symbols.
      std::size_t p = 0;
      while (p < body) {
        if (body - p < 17) fail(source, "corrupt JPEG: Huffman table header cut short" + at);
        const unsigned id = u8(seg[p]);
        if ((id >> 4) > 1 || (id & 15) > 3) fail(source, "corrupt JPEG: Huffman table class/id " + hex(id) + at);
        std::size_t symbols = 0;
        for (int i = 1; i <= 16; ++i) symbols += u8(seg[p + static_cast<std::size_t>(i)]);
        if (symbols > 256)
          fail(source, "corrupt JPEG: Huffman table with " + std::to_string(symbols) + " symbols (at most 256)" + at);
        if (symbols > body - p - 17) fail(source, "corrupt JPEG: Huffman table runs past its segment" + at);
        huffman[id >> 4][id & 15] = true;
        p += 17 + symbols;
      }
    } else if (m == 0xDB) {
      // Quantisation tables: precision/id, then 64 values of 8 or 16 bits.
      std::size_t p = 0;
      while (p < body) {
        const unsigned pq = u8(seg[p]) >> 4, tq = u8(seg[p]) & 15;
        if (pq > 1 || tq > 3) fail(source, "corrupt JPEG: quantisation table precision/id " + hex(u8(seg[p])) + at);
        const std::size_t size = 1 + 64 * (pq + 1);
        if (size > body - p) fail(source, "corrupt JPEG: quantisation table runs past its segment" + at);
        quant[tq] = true;
        p += size;
      }
    } else if (m == 0xDA) {
      if (!seen_frame) fail(source, "corrupt JPEG: a scan (SOS) before the frame header (SOF)");
      const unsigned count = body ? u8(seg[0]) : 0;
      if (count < 1 || count > 4 || body != 4 + 2 * count)
        fail(source, "corrupt JPEG: scan header of " + std::to_string(length) + " bytes for " +
                         std::to_string(count) + " components" + at);
      const unsigned ss = u8(seg[1 + 2 * count]), ah = u8(seg[3 + 2 * count]) >> 4;
      // Baseline scans decode DC and AC; progressive DC scans only DC (and a
      // DC refinement nothing), progressive AC scans only AC.
      const bool needs_dc = !progressive || (ss == 0 && ah == 0), needs_ac = !progressive || ss != 0;
      for (unsigned c = 0; c < count; ++c) {
        const unsigned id = u8(seg[1 + 2 * c]), td = u8(seg[2 + 2 * c]) >> 4, ta = u8(seg[2 + 2 * c]) & 15;
        const auto frame_component = std::find_if(components.begin(), components.end(),
                                                  [&](const Component& fc) { return fc.id == id; });
        if (frame_component == components.end())
          fail(source, "corrupt JPEG: the scan" + at + " uses component " + std::to_string(id) +
                           ", which the frame does not have");
        if (!quant[frame_component->table])
          fail(source, "corrupt JPEG: component " + std::to_string(id) + " uses quantisation table " +
                           std::to_string(frame_component->table) + ", which no DQT segment defined before the scan" +
                           at);
        if ((needs_dc && (td > 3 || !huffman[0][td])) || (needs_ac && (ta > 3 || !huffman[1][ta])))
          fail(source, "corrupt JPEG: the scan" + at + " uses Huffman table " +
                           (needs_dc && (td > 3 || !huffman[0][td]) ? "DC " + std::to_string(td)
                                                                    : "AC " + std::to_string(ta)) +
                           ", which no DHT segment defined before it (Motion-JPEG frames that rely on the "
                           "standard tables are not supported)");
      }
    } else if (m == 0xDD && body != 2) {
      fail(source, "corrupt JPEG: restart interval segment of " + std::to_string(length) + " bytes" + at);
    }
    pos += length;
    if (m == 0xDA) {  // skip the scan's entropy-coded data
      seen_scan = true;
      for (;;) {
        while (pos < n && u8(b[pos]) != 0xFF) ++pos;
        if (pos + 1 >= n) truncated("inside the compressed data");
        const unsigned next = u8(b[pos + 1]);
        if (next == 0x00 || (next >= 0xD0 && next <= 0xD7)) {
          pos += 2;
        } else if (next == 0xFF) {
          ++pos;
        } else {
          break;  // a marker: back to the segment loop
        }
      }
    }
  }
  if (!seen_frame) fail(source, "corrupt JPEG: no frame header");
  return h;
}

inline void check_limits(const ImageInfo& h, const ImageLimits& limits, std::string_view source) {
  const char* what = h.format == ImageFormat::png ? "PNG" : "JPEG";
  if (h.width == 0 || h.height == 0)
    fail(source, std::string(what) + " header claims an empty image (" + std::to_string(h.width) + "x" +
                     std::to_string(h.height) + ")");
  const auto side = static_cast<std::uint64_t>(limits.max_side);
  // Both factors are below 2^32, so the product cannot overflow 64 bits.
  if (h.width > side || h.height > side || h.width * h.height > limits.max_pixels)
    fail(source, std::string(what) + " header claims " + std::to_string(h.width) + "x" + std::to_string(h.height) +
                     " pixels, above the limit (" + std::to_string(limits.max_side) + " per side, " +
                     std::to_string(limits.max_pixels) + " in all)");
}

// Defined once, in the translation unit that defines CTNN_IMAGE_IMPLEMENTATION.
// Decodes to 3-channel 8-bit pixels; on failure returns false with stb's reason.
bool stb_decode(std::span<const std::byte> bytes, RgbImage& out, const char*& reason);

}  // namespace detail::image

// The header fields of a PNG or JPEG, after the same container checks that
// decode_image makes (without decoding any pixels).
inline ImageInfo inspect_image(std::span<const std::byte> bytes, std::string_view source = "<memory>") {
  const ImageFormat f = detail::image::sniff(bytes, source);
  return f == ImageFormat::png ? detail::image::check_png(bytes, source) : detail::image::check_jpeg(bytes, source);
}

// Decodes a PNG or JPEG held in memory to 8-bit RGB. Grey images are
// replicated into three channels and alpha is dropped, as PIL's
// Image.convert("RGB") does; 16-bit PNG samples keep their high byte.
inline RgbImage decode_image(std::span<const std::byte> bytes, std::string_view source = "<memory>",
                             const ImageLimits& limits = {}) {
  namespace d = detail::image;
  if (bytes.size() > limits.max_file_bytes)
    d::fail(source, "image file of " + std::to_string(bytes.size()) + " bytes is above the limit of " +
                        std::to_string(limits.max_file_bytes));
  const ImageInfo h = inspect_image(bytes, source);
  d::check_limits(h, limits, source);
  RgbImage img;
  const char* reason = nullptr;
  if (!d::stb_decode(bytes, img, reason))
    d::fail(source, std::string("corrupt ") + (h.format == ImageFormat::png ? "PNG" : "JPEG") +
                        ": the decoder failed (" + (reason ? reason : "unknown reason") + ")");
  if (static_cast<std::uint64_t>(img.width) != h.width || static_cast<std::uint64_t>(img.height) != h.height)
    d::fail(source, "corrupt image: the decoder produced " + std::to_string(img.width) + "x" +
                        std::to_string(img.height) + " pixels, the header says " + std::to_string(h.width) + "x" +
                        std::to_string(h.height));
  return img;
}

inline RgbImage read_image(const std::filesystem::path& path, const ImageLimits& limits = {}) {
  const std::string source = path.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) detail::image::fail(source, "no such image file");
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) detail::image::fail(source, "cannot read file: " + ec.message());
  if (size > limits.max_file_bytes)
    detail::image::fail(source, "image file of " + std::to_string(size) + " bytes is above the limit of " +
                                    std::to_string(limits.max_file_bytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::image::fail(source, "cannot open file for reading");
  std::vector<std::byte> bytes(static_cast<std::size_t>(size));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size)
    detail::image::fail(source, "file changed size while it was being read");
  return decode_image(bytes, source, limits);
}

}  // namespace ctnn::io

#endif  // CTNN_IO_IMAGE_HPP

// ---- the stb_image implementation, in one translation unit -------------------
#if defined(CTNN_IMAGE_IMPLEMENTATION) && !defined(CTNN_IMAGE_IMPLEMENTED)
#define CTNN_IMAGE_IMPLEMENTED

#include <cstdlib>
#include <cstring>
#include <limits>

// stb's functions become static in this translation unit, so a program that
// also compiles its own stb_image (with other options) links fine. Formats
// other than PNG and JPEG are compiled out. The side limit is a second line of
// defence behind check_limits (which the caller's ImageLimits may raise, up to
// this value).
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_MAX_DIMENSIONS (1 << 16)
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wshadow"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace ctnn::io::detail::image {

bool stb_decode(std::span<const std::byte> bytes, RgbImage& out, const char*& reason) {
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    reason = "file too large for stb_image";
    return false;
  }
  int w = 0, h = 0, channels_in_file = 0;
  stbi_uc* p = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()),
                                     &w, &h, &channels_in_file, 3);
  if (!p) {
    reason = stbi_failure_reason();
    return false;
  }
  out.width = w;
  out.height = h;
  const std::size_t n = static_cast<std::size_t>(w) * static_cast<std::size_t>(h) * 3;
  out.pixels.assign(p, p + n);
  stbi_image_free(p);
  return true;
}

}  // namespace ctnn::io::detail::image
#endif

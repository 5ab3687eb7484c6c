// A minimal read-only ZIP reader over bytes already in memory, enough for
// torch.save archives: stored (uncompressed) entries, classic and ZIP64
// end-of-central-directory records, data located through each entry's LOCAL
// header. Every offset and size read from the file is bounds-checked with
// overflow-safe arithmetic before it is used, so a hostile archive yields a
// LoadError, never an out-of-range read or an allocation the file cannot back.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <ctnn/io/tensor_file.hpp>

namespace ctnn::io::zip {

struct Entry {
  std::string name;
  std::uint16_t method = 0;               // 0 = stored; anything else is refused at open
  std::uint64_t compressed_size = 0;      // equals size for stored entries
  std::uint64_t size = 0;
  std::uint64_t local_header_offset = 0;
  std::uint64_t data_offset = 0;          // from the local header: its extra field differs from the central one
};

namespace detail {

inline constexpr std::uint32_t local_signature = 0x04034b50;
inline constexpr std::uint32_t central_signature = 0x02014b50;
inline constexpr std::uint32_t eocd_signature = 0x06054b50;
inline constexpr std::uint32_t zip64_eocd_signature = 0x06064b50;
inline constexpr std::uint32_t zip64_locator_signature = 0x07064b50;
inline constexpr std::uint64_t eocd_size = 22;
inline constexpr std::uint64_t zip64_locator_size = 20;
inline constexpr std::uint64_t zip64_eocd_min_size = 56;
inline constexpr std::uint64_t central_header_size = 46;
inline constexpr std::uint64_t local_header_size = 30;
inline constexpr std::uint64_t max_comment = 0xffff;

// Little-endian field reads; callers have already checked that [pos, pos+N) is inside.
inline std::uint64_t read_le(std::span<const std::byte> b, std::uint64_t pos, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(b[pos + static_cast<unsigned>(i)]);
  return v;
}

using io::printable;

}  // namespace detail

class Archive {
 public:
  // `bytes` must outlive the archive; entries and data() refer to it.
  Archive(std::span<const std::byte> bytes, std::string source) : bytes_(bytes), source_(std::move(source)) {
    parse();
  }

  const std::string& source() const { return source_; }
  // Entries in central-directory order (torch's reader takes the archive
  // prefix from the first one).
  std::span<const Entry> entries() const { return entries_; }

  const Entry* find(std::string_view name) const {
    auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                               [&](std::uint32_t i, std::string_view n) { return entries_[i].name < n; });
    if (it == by_name_.end() || entries_[*it].name != name) return nullptr;
    return &entries_[*it];
  }

  // The entry's bytes; bounds were validated at open.
  std::span<const std::byte> data(const Entry& e) const { return bytes_.subspan(e.data_offset, e.size); }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw LoadError(source_ + ": " + what); }

  std::uint64_t u16(std::uint64_t p) const { return detail::read_le(bytes_, p, 2); }
  std::uint64_t u32(std::uint64_t p) const { return detail::read_le(bytes_, p, 4); }
  std::uint64_t u64(std::uint64_t p) const { return detail::read_le(bytes_, p, 8); }

  void parse() {
    using namespace detail;
    const std::uint64_t n = bytes_.size();
    if (n < eocd_size)
      fail("not a ZIP archive: " + std::to_string(n) + " bytes, fewer than the 22 of an empty archive");

    // The EOCD record is followed only by its comment, so scan back from the
    // end no further than the largest comment allows, and accept a signature
    // only where its comment length reaches the end exactly (a stray
    // signature inside the comment or the data does not).
    std::uint64_t eocd = n;
    const std::uint64_t lowest = n - eocd_size > max_comment ? n - eocd_size - max_comment : 0;
    for (std::uint64_t p = n - eocd_size + 1; p-- > lowest;) {
      if (u32(p) == eocd_signature && p + eocd_size + u16(p + 20) == n) {
        eocd = p;
        break;
      }
    }
    if (eocd == n)
      fail("not a ZIP archive or truncated: no end-of-central-directory record in the last " +
           std::to_string(std::min<std::uint64_t>(n, eocd_size + max_comment)) + " bytes");

    std::uint64_t disk = u16(eocd + 4), cd_disk = u16(eocd + 6);
    std::uint64_t count_on_disk = u16(eocd + 8), count = u16(eocd + 10);
    std::uint64_t cd_size = u32(eocd + 12), cd_offset = u32(eocd + 16);
    std::uint64_t cd_limit = eocd;  // the central directory ends where the next record starts

    // Saturated classic fields mean the real values live in the ZIP64 record
    // (files over 4 GiB or with more than 65535 entries).
    const bool zip64 = disk == 0xffff || cd_disk == 0xffff || count_on_disk == 0xffff || count == 0xffff ||
                       cd_size == 0xffffffff || cd_offset == 0xffffffff;
    if (zip64) {
      if (eocd < zip64_locator_size || u32(eocd - zip64_locator_size) != zip64_locator_signature)
        fail("end-of-central-directory fields are saturated but the ZIP64 locator is missing");
      const std::uint64_t loc = eocd - zip64_locator_size;
      const std::uint64_t record = u64(loc + 8);
      if (u32(loc + 4) != 0 || u32(loc + 16) > 1) fail("multi-disk ZIP archives are not supported");
      if (record > loc || loc - record < zip64_eocd_min_size)
        fail("ZIP64 end-of-central-directory record offset " + std::to_string(record) +
             " does not leave room for the record before its locator at " + std::to_string(loc));
      if (u32(record) != zip64_eocd_signature)
        fail("no ZIP64 end-of-central-directory record at offset " + std::to_string(record));
      disk = u32(record + 16);
      cd_disk = u32(record + 20);
      count_on_disk = u64(record + 24);
      count = u64(record + 32);
      cd_size = u64(record + 40);
      cd_offset = u64(record + 48);
      cd_limit = record;
    }
    if (disk != 0 || cd_disk != 0 || count_on_disk != count) fail("multi-disk ZIP archives are not supported");
    if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset)
      fail("central directory (offset " + std::to_string(cd_offset) + ", " + std::to_string(cd_size) +
           " bytes) extends past the end-of-central-directory record at offset " + std::to_string(cd_limit));
    // Each entry needs at least a fixed-size header, which caps what the
    // count may claim before anything is reserved for it.
    if (count > cd_size / central_header_size)
      fail("central directory claims " + std::to_string(count) + " entries but its " + std::to_string(cd_size) +
           " bytes can hold at most " + std::to_string(cd_size / central_header_size));

    entries_.reserve(count);
    const std::uint64_t cd_end = cd_offset + cd_size;
    std::uint64_t p = cd_offset;
    for (std::uint64_t i = 0; i < count; ++i) {
      if (cd_end - p < central_header_size || u32(p) != central_signature)
        fail("central directory entry " + std::to_string(i) + " at offset " + std::to_string(p) +
             " is truncated or has a bad signature");
      const std::uint64_t flags = u16(p + 8), method = u16(p + 10);
      std::uint64_t csize = u32(p + 20), usize = u32(p + 24);
      const std::uint64_t name_len = u16(p + 28), extra_len = u16(p + 30), comment_len = u16(p + 32);
      std::uint64_t start_disk = u16(p + 34), local = u32(p + 42);
      const std::uint64_t var_len = name_len + extra_len + comment_len;
      if (cd_end - p - central_header_size < var_len)
        fail("central directory entry " + std::to_string(i) + " at offset " + std::to_string(p) +
             " runs past the end of the central directory");
      Entry e;
      e.name.assign(reinterpret_cast<const char*>(bytes_.data() + p + central_header_size), name_len);
      const std::string shown = "'" + printable(e.name) + "'";

      if (usize == 0xffffffff || csize == 0xffffffff || local == 0xffffffff || start_disk == 0xffff)
        read_zip64_extra(p + central_header_size + name_len, extra_len, shown, usize, csize, local, start_disk);
      if (start_disk != 0) fail("entry " + shown + " starts on another disk; multi-disk archives are not supported");
      if (flags & 1u) fail("entry " + shown + " is encrypted");
      if (method != 0)
        fail("entry " + shown + " is compressed (method " + std::to_string(method) +
             "); only stored entries are supported, as torch.save writes them");
      if (csize != usize)
        fail("stored entry " + shown + " has compressed size " + std::to_string(csize) + " but size " +
             std::to_string(usize));

      // Entry data must lie before the central directory: with the header
      // fields checked against cd_offset, nothing below can overflow.
      if (local > cd_offset || cd_offset - local < local_header_size || u32(local) != local_signature)
        fail("entry " + shown + ": no local header at offset " + std::to_string(local));
      const std::uint64_t data = local + local_header_size + u16(local + 26) + u16(local + 28);
      if (data > cd_offset || usize > cd_offset - data)
        fail("data of entry " + shown + " (offset " + std::to_string(data) + ", " + std::to_string(usize) +
             " bytes) extends past the end of the archive data at offset " + std::to_string(cd_offset));
      if (u16(local + 26) != name_len ||
          !std::equal(bytes_.begin() + static_cast<std::ptrdiff_t>(local + local_header_size),
                      bytes_.begin() + static_cast<std::ptrdiff_t>(local + local_header_size + name_len),
                      bytes_.begin() + static_cast<std::ptrdiff_t>(p + central_header_size)))
        fail("entry " + shown + ": the local header names a different file");
      if (u16(local + 8) != method) fail("entry " + shown + ": local and central headers disagree on the method");

      e.method = static_cast<std::uint16_t>(method);
      e.compressed_size = csize;
      e.size = usize;
      e.local_header_offset = local;
      e.data_offset = data;
      entries_.push_back(std::move(e));
      p += central_header_size + var_len;
    }

    by_name_.resize(entries_.size());
    for (std::uint32_t i = 0; i < by_name_.size(); ++i) by_name_[i] = i;
    std::sort(by_name_.begin(), by_name_.end(),
              [&](std::uint32_t a, std::uint32_t b) { return entries_[a].name < entries_[b].name; });
    for (std::size_t i = 1; i < by_name_.size(); ++i)
      if (entries_[by_name_[i]].name == entries_[by_name_[i - 1]].name)
        fail("duplicate entry '" + printable(entries_[by_name_[i]].name) + "'");
  }

  // The 0x0001 extra field holds, in this order, only the values whose classic
  // field is saturated: size, compressed size, local header offset, disk.
  void read_zip64_extra(std::uint64_t pos, std::uint64_t len, const std::string& shown, std::uint64_t& usize,
                        std::uint64_t& csize, std::uint64_t& local, std::uint64_t& start_disk) const {
    const std::uint64_t end = pos + len;
    while (end - pos >= 4) {
      const std::uint64_t id = u16(pos), size = u16(pos + 2);
      pos += 4;
      if (size > end - pos) fail("entry " + shown + ": extra field runs past its end");
      if (id == 1) {
        std::uint64_t q = pos;
        const std::uint64_t field_end = pos + size;
        auto take = [&](std::uint64_t& v, int width) {
          if (field_end - q < static_cast<std::uint64_t>(width)) fail("entry " + shown + ": ZIP64 extra field too short");
          v = detail::read_le(bytes_, q, width);
          q += static_cast<std::uint64_t>(width);
        };
        if (usize == 0xffffffff) take(usize, 8);
        if (csize == 0xffffffff) take(csize, 8);
        if (local == 0xffffffff) take(local, 8);
        if (start_disk == 0xffff) take(start_disk, 4);
        return;
      }
      pos += size;
    }
    fail("entry " + shown + " has saturated size or offset fields but no ZIP64 extra field");
  }

  std::span<const std::byte> bytes_;
  std::string source_;
  std::vector<Entry> entries_;
  std::vector<std::uint32_t> by_name_;  // indices into entries_, sorted by name
};

}  // namespace ctnn::io::zip

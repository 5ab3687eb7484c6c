// Reads PyTorch torch.save checkpoints (the ZIP format of torch >= 1.6) into
// a TensorFile without Python.
//
// Layout: every entry sits under one folder named after the saved file;
// <prefix>/data.pkl is a pickle whose persistent ids name raw storages
// <prefix>/data/<key>. Accepted content: a state_dict, or a checkpoint dict
// holding one under "state_dict" or "model" (other entries are ignored, but
// like everything in the pickle they may only use the allowlisted globals of
// pickle.hpp). A DataParallel "module." prefix is stripped when every name
// carries it. Contiguous tensors point into the file's bytes; strided views
// are copied into contiguous C order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include <ctnn/io/pickle.hpp>
#include <ctnn/io/tensor_file.hpp>
#include <ctnn/io/zip.hpp>

namespace ctnn::io {
namespace pth_detail {

using pickle::detail::printable;

// Where a state_dict tensor's bytes come from once the file is validated.
struct Plan {
  std::string_view name;  // into the pickle Document, "module." already stripped
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  std::uint64_t bytes = 0;
  bool contiguous = true;
  std::uint64_t source = 0;  // contiguous: offset of the first byte in the file
  std::uint64_t target = 0;  // strided: offset of the copy in TensorFile::storage
  const pickle::Tensor* tensor = nullptr;
  std::uint64_t storage_data = 0;  // file offset of the tensor's storage
};

inline std::string_view storage_type_name(DType d) {
  for (const auto& s : pickle::detail::storage_types)
    if (s.dtype == d) return s.name;
  return "?";
}

class Reader {
 public:
  explicit Reader(TensorFile& file) : f_(file) {}

  void run() {
    const std::span<const std::byte> bytes(f_.storage);
    check_magic(bytes);
    const zip::Archive archive(bytes, f_.source);
    if (archive.entries().empty()) fail("the ZIP archive has no entries");
    const std::string& first = archive.entries()[0].name;
    const auto slash = first.find('/');
    if (slash == std::string::npos)
      fail("first entry '" + printable(first) + "' is not inside a top-level folder, as torch.save writes it");
    prefix_ = first.substr(0, slash);

    if (const zip::Entry* e = archive.find(prefix_ + "/byteorder")) {
      const auto d = archive.data(*e);
      const std::string_view order(reinterpret_cast<const char*>(d.data()), d.size());
      if (order == "big")
        fail("the file stores big-endian tensors (byteorder 'big'); only little-endian files are supported, "
             "re-save it on a little-endian machine");
      if (order != "little") fail("unknown byteorder '" + printable(order) + "' (expected 'little')");
    }
    const zip::Entry* pkl = archive.find(prefix_ + "/data.pkl");
    if (!pkl) fail("no entry '" + printable(prefix_) + "/data.pkl': not a torch.save archive");
    doc_ = pickle::load(archive.data(*pkl), f_.source + ": " + printable(prefix_) + "/data.pkl");

    const pickle::Container& sd = select_state_dict();
    collect_names(sd);
    storage_data_.assign(doc_.storages.size(), unchecked);
    for (std::size_t i = 0; i < plans_.size(); ++i) plan_tensor(archive, plans_[i]);
    // Storages only the rest of a checkpoint uses (optimizer buffers) are
    // checked too, as torch.load would.
    for (std::uint32_t s = 0; s < doc_.storages.size(); ++s) check_storage(archive, s, "");

    materialize();
  }

 private:
  static constexpr std::uint64_t unchecked = ~std::uint64_t{0};

  [[noreturn]] void fail(const std::string& what) const { throw LoadError(f_.source + ": " + what); }
  [[noreturn]] void fail_tensor(const Plan& p, const std::string& what) const {
    fail("tensor '" + printable(p.name) + "': " + what);
  }

  void check_magic(std::span<const std::byte> b) const {
    if (b.empty()) fail("the file is empty");
    // The pre-1.6 format is a bare pickle stream (PROTO opcode first).
    if (b[0] == std::byte{0x80})
      fail("this is a legacy (non-zip) torch.save file, which is not supported; re-save it with a current torch: "
           "torch.save(torch.load(path), path)");
    static constexpr unsigned char zip_magic[] = {'P', 'K', 3, 4};
    if (b.size() < 4 || std::memcmp(b.data(), zip_magic, 4) != 0)
      fail("not a torch.save archive: expected a ZIP file starting with \"PK\\x03\\x04\"");
  }

  const pickle::Container& select_state_dict() {
    const pickle::Value& root = doc_.root;
    if (root.kind != pickle::Kind::dict)
      fail("data.pkl holds an object of type " + std::string(pickle::kind_name(root.kind)) +
           "; expected a state_dict, or a checkpoint dict holding one under 'state_dict' or 'model'");
    const auto& items = doc_.container(root).items;
    const pickle::Value* chosen = nullptr;
    std::string chosen_key;
    for (const char* key : {"state_dict", "model"}) {
      const pickle::Value* found = nullptr;
      for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
        if (items[i].kind != pickle::Kind::string || doc_.text(items[i]) != key) continue;
        if (found) fail(std::string("checkpoint has the key '") + key + "' twice");
        found = &items[i + 1];
      }
      if (!found || found->kind != pickle::Kind::dict) continue;
      if (chosen)
        fail("checkpoint holds dicts under both 'state_dict' and 'model'; it is ambiguous which to load");
      chosen = found;
      chosen_key = key;
    }
    if (chosen) {
      context_ = "state_dict (checkpoint key '" + chosen_key + "')";
      return doc_.container(*chosen);
    }
    context_ = "state_dict";
    return doc_.container(root);
  }

  void collect_names(const pickle::Container& sd) {
    const auto& items = sd.items;
    plans_.reserve(items.size() / 2);
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      const pickle::Value& k = items[i];
      const pickle::Value& v = items[i + 1];
      if (k.kind != pickle::Kind::string)
        fail(context_ + " key #" + std::to_string(i / 2) + " is of type " + std::string(pickle::kind_name(k.kind)) +
             ", expected str");
      if (v.kind != pickle::Kind::tensor)
        fail(context_ + " entry '" + printable(doc_.text(k)) + "' is of type " + std::string(pickle::kind_name(v.kind)) +
             ", not a tensor; expected a state_dict, or a checkpoint dict holding one under 'state_dict' or 'model'");
      Plan p;
      p.name = doc_.text(k);
      p.tensor = &doc_.tensors[v.index];
      plans_.push_back(std::move(p));
    }
    // nn.DataParallel saves every name as "module.<name>".
    constexpr std::string_view dp = "module.";
    const bool strip = !plans_.empty() &&
                       std::all_of(plans_.begin(), plans_.end(), [&](const Plan& p) { return p.name.starts_with(dp); });
    if (strip)
      for (auto& p : plans_) p.name.remove_prefix(dp.size());
    // Compared as views before any name is copied, so a pickle repeating one
    // long key cannot multiply it in memory.
    std::vector<std::string_view> sorted;
    sorted.reserve(plans_.size());
    for (const auto& p : plans_) sorted.push_back(p.name);
    std::sort(sorted.begin(), sorted.end());
    const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
    if (dup != sorted.end()) fail(context_ + " has the tensor name '" + printable(*dup) + "' twice");
  }

  // Validates storage `s` against its archive entry once; returns the
  // entry's data offset in the file.
  std::uint64_t check_storage(const zip::Archive& archive, std::uint32_t s, const std::string& who) {
    if (storage_data_[s] != unchecked) return storage_data_[s];
    const pickle::Storage& st = doc_.storages[s];
    const std::string_view key = doc_.key(st);
    // Entries are looked up once per key string, so repeating a long
    // memoized key costs no repeated name building.
    auto [cached, fresh] = entry_of_key_.try_emplace(st.key, nullptr);
    if (fresh) cached->second = archive.find(prefix_ + "/data/" + std::string(key));
    const zip::Entry* e = cached->second;
    if (!e)
      fail(who + "storage '" + printable(key) + "' is missing: no archive entry '" + printable(prefix_) + "/data/" +
           printable(key) + "'");
    const std::uint64_t elem = dtype_size(st.dtype);
    std::uint64_t need = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(st.numel), elem, &need) || need != e->size)
      fail(who + "storage '" + printable(key) + "' (" + std::string(storage_type_name(st.dtype)) + ", " +
           std::to_string(st.numel) + " elements of " + std::to_string(elem) + " bytes) does not match the size of " +
           "its entry '" + printable(e->name) + "' (" + std::to_string(e->size) + " bytes)");
    storage_data_[s] = e->data_offset;
    return e->data_offset;
  }

  void plan_tensor(const zip::Archive& archive, Plan& p) {
    const pickle::Tensor& t = *p.tensor;
    const pickle::Storage& st = doc_.storages[t.storage];
    p.storage_data = check_storage(archive, t.storage, "tensor '" + printable(p.name) + "': ");
    p.dtype = st.dtype;
    const std::uint64_t elem = dtype_size(st.dtype);
    const auto numel_storage = static_cast<std::uint64_t>(st.numel);

    if (t.offset < 0) fail_tensor(p, "negative storage offset " + std::to_string(t.offset));
    std::uint64_t numel = 1;
    bool overflow = false;
    for (std::size_t i = 0; i < t.shape.size(); ++i) {
      if (t.shape[i] < 0) fail_tensor(p, "negative size " + std::to_string(t.shape[i]) + " in dimension " + std::to_string(i));
      if (t.stride[i] < 0) fail_tensor(p, "negative stride " + std::to_string(t.stride[i]) + " in dimension " + std::to_string(i));
      p.shape.push_back(static_cast<std::uint64_t>(t.shape[i]));
      overflow |= __builtin_mul_overflow(numel, p.shape.back(), &numel);
    }
    if (overflow || __builtin_mul_overflow(numel, elem, &p.bytes))
      fail_tensor(p, "size " + shape_string(p.shape) + " overflows 64 bits");
    const auto offset = static_cast<std::uint64_t>(t.offset);
    if (numel == 0) {
      p.bytes = 0;  // an empty view reads nothing, wherever it starts
      return;
    }

    // The highest element the view reaches must lie inside the storage.
    std::uint64_t last = offset;
    for (std::size_t i = 0; i < t.shape.size(); ++i) {
      std::uint64_t reach = 0;
      overflow |= __builtin_mul_overflow(p.shape[i] - 1, static_cast<std::uint64_t>(t.stride[i]), &reach);
      overflow |= __builtin_add_overflow(last, reach, &last);
    }
    if (overflow || last >= numel_storage)
      fail_tensor(p, "view (offset " + std::to_string(offset) + ", size " + shape_string(p.shape) + ", stride " +
                         stride_string(t.stride) + ") reaches past the end of storage '" + printable(doc_.key(st)) + "' (" +
                         std::to_string(numel_storage) + " elements)");

    // C order; like torch, ignore the stride of size-1 dimensions.
    std::uint64_t expected = 1;
    for (std::size_t i = t.shape.size(); i-- > 0;) {
      if (p.shape[i] != 1 && static_cast<std::uint64_t>(t.stride[i]) != expected) p.contiguous = false;
      expected *= p.shape[i];  // <= numel: cannot overflow
    }
    if (p.contiguous) {
      p.source = p.storage_data + offset * elem;  // inside the entry: last < numel_storage
      return;
    }
    // A strided view is copied. Overlapping or broadcast views (stride 0)
    // can describe far more elements than their storage holds, so the copies
    // together may not exceed the file's own size.
    const std::uint64_t aligned = (p.bytes + 63) / 64 * 64;
    if (p.bytes > f_.storage.size() || aligned > f_.storage.size() - gathered_)
      fail_tensor(p, "strided view of " + std::to_string(p.bytes) + " bytes would need copies larger than the file (" +
                         std::to_string(f_.storage.size()) + " bytes); save tensor.contiguous() instead");
    p.target = gathered_;
    gathered_ += aligned;
  }

  static std::string stride_string(const std::vector<std::int64_t>& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
  }

  // Grows the storage once for all strided copies, then hands out spans:
  // a span taken before the resize would dangle.
  void materialize() {
    const std::uint64_t base = (f_.storage.size() + 63) / 64 * 64;
    f_.storage.resize(base + gathered_);
    std::byte* const data = f_.storage.data();
    f_.tensors.reserve(plans_.size());
    for (const Plan& p : plans_) {
      TensorRecord r;
      r.name = std::string(p.name);
      r.dtype = p.dtype;
      r.shape = p.shape;
      if (p.bytes == 0) {
        r.bytes = {};
      } else if (p.contiguous) {
        r.bytes = {data + p.source, p.bytes};
      } else {
        gather(p, data + p.storage_data, data + base + p.target);
        r.bytes = {data + base + p.target, p.bytes};
      }
      f_.tensors.push_back(std::move(r));
    }
  }

  // Copies a validated strided view into C order, one innermost row at a time.
  static void gather(const Plan& p, const std::byte* storage, std::byte* out) {
    const pickle::Tensor& t = *p.tensor;
    const std::size_t rank = p.shape.size();  // >= 1: rank-0 views are contiguous
    const std::uint64_t elem = dtype_size(p.dtype);
    const std::uint64_t inner = p.shape[rank - 1];
    const auto inner_stride = static_cast<std::uint64_t>(t.stride[rank - 1]);
    std::vector<std::uint64_t> index(rank, 0);
    for (;;) {
      std::uint64_t first = static_cast<std::uint64_t>(t.offset);
      for (std::size_t d = 0; d + 1 < rank; ++d) first += index[d] * static_cast<std::uint64_t>(t.stride[d]);
      if (inner_stride == 1) {
        std::memcpy(out, storage + first * elem, inner * elem);
      } else {
        for (std::uint64_t j = 0; j < inner; ++j)
          std::memcpy(out + j * elem, storage + (first + j * inner_stride) * elem, elem);
      }
      out += inner * elem;
      std::size_t d = rank - 1;
      while (d-- > 0) {
        if (++index[d] < p.shape[d]) break;
        index[d] = 0;
      }
      if (d == static_cast<std::size_t>(-1)) return;
    }
  }

  TensorFile& f_;
  std::string prefix_;
  std::string context_;
  pickle::Document doc_;
  std::vector<Plan> plans_;
  std::vector<std::uint64_t> storage_data_;  // per storage: data offset in the file, or unchecked
  std::unordered_map<std::uint32_t, const zip::Entry*> entry_of_key_;  // key string index -> entry
  std::uint64_t gathered_ = 0;               // bytes of strided copies planned so far
};

}  // namespace pth_detail

// Parses a torch.save archive held in memory; the bytes are copied into the
// returned TensorFile. `source` names the input in error messages.
inline TensorFile read_pth(std::span<const std::byte> bytes, std::string source = "<memory>") {
  TensorFile f;
  f.source = std::move(source);
  f.storage.assign(bytes.begin(), bytes.end());
  pth_detail::Reader(f).run();
  return f;
}

inline TensorFile read_pth(const std::filesystem::path& path) {
  TensorFile f;
  f.source = path.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw LoadError(f.source + ": no such file");
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw LoadError(f.source + ": cannot read the file size: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LoadError(f.source + ": cannot open the file");
  f.storage.resize(static_cast<std::size_t>(size));
  if (size && !in.read(reinterpret_cast<char*>(f.storage.data()), static_cast<std::streamsize>(size)))
    throw LoadError(f.source + ": read error");
  pth_detail::Reader(f).run();
  return f;
}

}  // namespace ctnn::io

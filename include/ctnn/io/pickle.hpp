// A restricted pickle machine for the data.pkl of torch.save archives.
//
// It understands the opcodes that torch.save emits for state_dicts and plain
// checkpoint dicts (protocols 2 to 5) and knows a short allowlist of globals
// as strict as torch.load(weights_only=True) for state_dicts: OrderedDict,
// the two tensor-rebuild functions, the torch.*Storage types and
// _codecs.encode (protocol 2's spelling of bytes). Globals are
// never looked up or called: each allowed one has a fixed meaning coded
// below, and any other is refused by name at the opcode that names it.
// The result is an inert object graph (Document) for pth.hpp to interpret.
//
// Hostile input is bounded: every length is checked against the bytes left,
// the stack, MARK nesting, memo and object count are capped, and each opcode
// creates at most one object, so memory grows linearly with the pickle size.
// Nothing recurses over the graph, so cyclic or deeply nested structures
// cannot exhaust the call stack.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <ctnn/io/tensor_file.hpp>

namespace ctnn::io::pickle {

enum class Kind : std::uint8_t {
  none, boolean, integer, big_integer, floating, string, bytes, tuple, list, dict, callable, storage, tensor
};

constexpr std::string_view kind_name(Kind k) {  // Python's spelling, for messages
  switch (k) {
    case Kind::none: return "None";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::big_integer: return "int (over 64 bits)";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::bytes: return "bytes";
    case Kind::tuple: return "tuple";
    case Kind::list: return "list";
    case Kind::dict: return "dict";
    case Kind::callable: return "global";
    case Kind::storage: return "storage";
    case Kind::tensor: return "tensor";
  }
  return "?";
}

// The allowlisted globals. _codecs.encode is how protocol 2 spells a bytes
// object (encode(text, 'latin1')); torch's weights_only loader admits it too.
enum class Callable : std::uint8_t { ordered_dict, rebuild_tensor_v2, rebuild_parameter, storage_type, codecs_encode };

// Scalars live in the value; everything else is an index into the
// Document's table for its kind, so references share objects as Python does.
struct Value {
  Kind kind = Kind::none;
  Callable callable = Callable::ordered_dict;  // kind == callable
  DType dtype = DType::u8;                     // callable == storage_type
  std::int64_t integer = 0;                    // boolean (0/1), integer
  double floating = 0;
  std::uint32_t index = 0;                     // string/bytes, tuple/list/dict, storage, tensor
};

struct Container {
  std::vector<Value> items;  // tuple and list elements; dict: key0, value0, key1, value1, ...
  bool ordered = false;      // dict created by collections.OrderedDict()
};

// What a persistent id ('storage', torch.XStorage, key, location, numel)
// names. Key and location are indices into Document::strings, not copies: a
// pickle may repeat one memoized key in any number of persistent ids.
struct Storage {
  std::uint32_t key = 0;       // archive entry <prefix>/data/<key>
  std::uint32_t location = 0;  // "cpu", "cuda:0", ...: the bytes are the same wherever they were
  DType dtype = DType::u8;
  std::int64_t numel = 0;
};

// _rebuild_tensor_v2(storage, offset, size, stride, ...): the numbers are as
// found (possibly negative); pth.hpp validates them against the storage with
// the tensor's name at hand.
struct Tensor {
  std::uint32_t storage = 0;  // index into Document::storages
  std::int64_t offset = 0;
  std::vector<std::int64_t> shape, stride;
  bool requires_grad = false;
};

struct Document {
  Value root;
  std::vector<std::string> strings;  // str (valid UTF-8) and bytes payloads
  std::vector<Container> containers;
  std::vector<Storage> storages;
  std::vector<Tensor> tensors;

  std::string_view text(const Value& v) const { return strings[v.index]; }
  std::string_view key(const Storage& s) const { return strings[s.key]; }
  const Container& container(const Value& v) const { return containers[v.index]; }
};

struct Limits {
  std::size_t max_stack = std::size_t{1} << 20;
  std::size_t max_mark_depth = 64;  // how deeply tuples/lists/dicts can nest while being built
  std::size_t max_memo = std::size_t{1} << 20;
  std::size_t max_objects = std::size_t{1} << 22;
  std::size_t max_rank = 32;
};

namespace detail {

inline bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1fu; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0fu; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07u; }
    else return false;
    if (s.size() - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3fu);
    }
    // Overlong forms and out-of-range code points; Python's decoder (with
    // surrogatepass, as pickle uses) accepts lone surrogates, so do we.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
      return false;
    i += len;
  }
  return true;
}

inline std::string printable(std::string_view s) { return io::printable(s, 80); }

struct StorageType {
  std::string_view name;
  DType dtype;
};
inline constexpr StorageType storage_types[] = {
    {"FloatStorage", DType::f32}, {"HalfStorage", DType::f16},  {"BFloat16Storage", DType::bf16},
    {"DoubleStorage", DType::f64}, {"LongStorage", DType::i64}, {"IntStorage", DType::i32},
    {"ShortStorage", DType::i16}, {"CharStorage", DType::i8},   {"ByteStorage", DType::u8},
    {"BoolStorage", DType::boolean},
};

class Machine {
 public:
  Machine(std::span<const std::byte> in, std::string_view source, const Limits& limits)
      : in_(in), source_(source), limits_(limits) {}

  Document run() {
    for (;;) {
      if (pos_ >= in_.size()) fail(pos_, "pickle ends without a STOP opcode");
      const std::size_t at = pos_;
      const auto op = static_cast<std::uint8_t>(in_[pos_++]);
      switch (op) {
        case 0x80: {  // PROTO
          const std::uint64_t v = read_uint(at, 1);
          if (v < 2 || v > 5) fail(at, "pickle protocol " + std::to_string(v) + " is not supported (expected 2 to 5)");
          break;
        }
        case 0x95:  // FRAME: framing only groups opcodes for buffered readers; check and ignore it
          if (read_uint(at, 8) > in_.size() - pos_) fail(at, "FRAME length exceeds the remaining bytes");
          break;
        case 'c': {  // GLOBAL: "module\nname\n"
          const std::string_view module = read_line(at), name = read_line(at);
          push(at, resolve(at, module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const Value name = pop(at), module = pop(at);
          if (module.kind != Kind::string || name.kind != Kind::string)
            fail(at, "STACK_GLOBAL expects two str, found " + std::string(kind_name(module.kind)) + " and " +
                         std::string(kind_name(name.kind)));
          push(at, resolve(at, doc_.text(module), doc_.text(name)));
          break;
        }
        case 'q': memo_put(at, read_uint(at, 1)); break;    // BINPUT
        case 'r': memo_put(at, read_uint(at, 4)); break;    // LONG_BINPUT
        case 0x94: memo_put(at, memo_.size()); break;       // MEMOIZE
        case 'h': push(at, memo_get(at, read_uint(at, 1))); break;  // BINGET
        case 'j': push(at, memo_get(at, read_uint(at, 4))); break;  // LONG_BINGET
        case ')': push(at, empty_tuple(at)); break;         // EMPTY_TUPLE
        case 't': {                                         // TUPLE
          const std::size_t mark = pop_mark(at);
          push(at, make_container(at, Kind::tuple, take_from(mark)));
          break;
        }
        case 0x85: case 0x86: case 0x87: {                  // TUPLE1, TUPLE2, TUPLE3
          const std::size_t n = op - 0x84u;
          if (available() < n) underflow(at);
          push(at, make_container(at, Kind::tuple, take_from(stack_.size() - n)));
          break;
        }
        case '(':  // MARK
          if (marks_.size() >= limits_.max_mark_depth)
            fail(at, "MARK nesting deeper than " + std::to_string(limits_.max_mark_depth));
          marks_.push_back(stack_.size());
          break;
        case 'X': push(at, make_text(at, Kind::string, read_uint(at, 4))); break;   // BINUNICODE
        case 0x8c: push(at, make_text(at, Kind::string, read_uint(at, 1))); break;  // SHORT_BINUNICODE
        case 0x8d: push(at, make_text(at, Kind::string, read_uint(at, 8))); break;  // BINUNICODE8
        case 'B': push(at, make_text(at, Kind::bytes, read_uint(at, 4))); break;    // BINBYTES
        case 'C': push(at, make_text(at, Kind::bytes, read_uint(at, 1))); break;    // SHORT_BINBYTES
        case 'J': {  // BININT: signed 32-bit
          const auto v = static_cast<std::int32_t>(static_cast<std::uint32_t>(read_uint(at, 4)));
          push(at, integer(v));
          break;
        }
        case 'K': push(at, integer(static_cast<std::int64_t>(read_uint(at, 1)))); break;  // BININT1
        case 'M': push(at, integer(static_cast<std::int64_t>(read_uint(at, 2)))); break;  // BININT2
        case 0x8a: push(at, read_long1(at)); break;                                       // LONG1
        case 0x88: push(at, boolean(true)); break;   // NEWTRUE
        case 0x89: push(at, boolean(false)); break;  // NEWFALSE
        case 'N': push(at, Value{}); break;          // NONE
        case 'G': {                                  // BINFLOAT: big-endian IEEE double
          Value v;
          v.kind = Kind::floating;
          v.floating = std::bit_cast<double>(static_cast<std::uint64_t>(read_uint_be(at, 8)));
          push(at, v);
          break;
        }
        case ']': push(at, make_container(at, Kind::list, {})); break;  // EMPTY_LIST
        case '}': push(at, make_container(at, Kind::dict, {})); break;  // EMPTY_DICT
        case 'a': {                                                     // APPEND
          const Value v = pop(at);
          container_on_top(at, Kind::list, "APPEND").items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          const std::size_t mark = pop_mark(at);
          std::vector<Value> items = take_from(mark);
          auto& list = container_on_top(at, Kind::list, "APPENDS").items;
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case 's': {  // SETITEM
          const Value v = pop(at), k = pop(at);
          set_item(at, container_on_top(at, Kind::dict, "SETITEM"), k, v);
          break;
        }
        case 'u': {  // SETITEMS
          const std::size_t mark = pop_mark(at);
          std::vector<Value> items = take_from(mark);
          if (items.size() % 2) fail(at, "SETITEMS with an odd number of items");
          auto& dict = container_on_top(at, Kind::dict, "SETITEMS");
          for (std::size_t i = 0; i < items.size(); i += 2) set_item(at, dict, items[i], items[i + 1]);
          break;
        }
        case 'Q': push(at, persistent_load(at, pop(at))); break;  // BINPERSID
        case 'R': {                                              // REDUCE
          const Value args = pop(at), fn = pop(at);
          push(at, reduce(at, fn, args));
          break;
        }
        case 'b': {  // BUILD
          const Value state = pop(at);
          build(at, top(at), state);
          break;
        }
        case '.': {  // STOP
          if (!marks_.empty()) fail(at, "STOP inside an unclosed MARK");
          if (stack_.size() != 1)
            fail(at, "STOP with " + std::to_string(stack_.size()) + " objects on the stack, expected exactly 1");
          doc_.root = stack_.back();
          return std::move(doc_);
        }
        default: {
          static constexpr char hex[] = "0123456789abcdef";
          std::string code = "0x";
          code += hex[op >> 4];
          code += hex[op & 15];
          if (op >= 0x20 && op < 0x7f) code += std::string(" ('") + static_cast<char>(op) + "')";
          fail(at, "unknown or unsupported pickle opcode " + code);
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(std::size_t at, const std::string& what) const {
    throw LoadError(std::string(source_) + ": at pickle offset " + std::to_string(at) + ": " + what);
  }
  [[noreturn]] void underflow(std::size_t at) const { fail(at, "pickle stack underflow"); }

  std::uint64_t read_uint(std::size_t at, std::size_t n) {
    if (in_.size() - pos_ < n) fail(at, "pickle truncated inside an opcode argument");
    std::uint64_t v = 0;
    for (std::size_t i = n; i-- > 0;) v = (v << 8) | std::to_integer<std::uint64_t>(in_[pos_ + i]);
    pos_ += n;
    return v;
  }
  std::uint64_t read_uint_be(std::size_t at, std::size_t n) {
    if (in_.size() - pos_ < n) fail(at, "pickle truncated inside an opcode argument");
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | std::to_integer<std::uint64_t>(in_[pos_ + i]);
    pos_ += n;
    return v;
  }
  std::string_view read_bytes(std::size_t at, std::uint64_t n) {
    if (n > in_.size() - pos_)
      fail(at, "length " + std::to_string(n) + " exceeds the " + std::to_string(in_.size() - pos_) +
                   " bytes left in the pickle");
    std::string_view s(reinterpret_cast<const char*>(in_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  std::string_view read_line(std::size_t at) {
    const char* begin = reinterpret_cast<const char*>(in_.data() + pos_);
    const void* nl = std::memchr(begin, '\n', in_.size() - pos_);
    if (!nl) fail(at, "GLOBAL name is not terminated by a newline");
    const std::size_t len = static_cast<std::size_t>(static_cast<const char*>(nl) - begin);
    pos_ += len + 1;
    return {begin, len};
  }

  // Items above the innermost mark (or the whole stack) that pop may take.
  std::size_t available() const { return stack_.size() - (marks_.empty() ? 0 : marks_.back()); }
  void push(std::size_t at, const Value& v) {
    if (stack_.size() >= limits_.max_stack) fail(at, "pickle stack deeper than " + std::to_string(limits_.max_stack));
    stack_.push_back(v);
  }
  Value pop(std::size_t at) {
    if (available() == 0) underflow(at);
    const Value v = stack_.back();
    stack_.pop_back();
    return v;
  }
  const Value& top(std::size_t at) const {
    if (available() == 0) underflow(at);
    return stack_.back();
  }
  std::size_t pop_mark(std::size_t at) {
    if (marks_.empty()) fail(at, "opcode needs a MARK but none is open");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    return m;
  }
  std::vector<Value> take_from(std::size_t start) {
    std::vector<Value> items(stack_.begin() + static_cast<std::ptrdiff_t>(start), stack_.end());
    stack_.resize(start);
    return items;
  }

  void memo_put(std::size_t at, std::uint64_t index) {
    const Value& v = top(at);
    auto it = memo_.find(index);
    if (it != memo_.end()) {
      it->second = v;
      return;
    }
    if (memo_.size() >= limits_.max_memo) fail(at, "memo larger than " + std::to_string(limits_.max_memo) + " entries");
    memo_.emplace(index, v);
  }
  Value memo_get(std::size_t at, std::uint64_t index) const {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail(at, "memo index " + std::to_string(index) + " was never stored");
    return it->second;
  }

  void count_object(std::size_t at) {
    if (++objects_ > limits_.max_objects)
      fail(at, "pickle creates more than " + std::to_string(limits_.max_objects) + " objects");
  }
  static Value integer(std::int64_t v) {
    Value r;
    r.kind = Kind::integer;
    r.integer = v;
    return r;
  }
  static Value boolean(bool b) {
    Value r;
    r.kind = Kind::boolean;
    r.integer = b;
    return r;
  }
  Value make_text(std::size_t at, Kind kind, std::uint64_t n) {
    const std::string_view s = read_bytes(at, n);
    if (kind == Kind::string && !valid_utf8(s)) fail(at, "str is not valid UTF-8");
    count_object(at);
    doc_.strings.emplace_back(s);
    Value v;
    v.kind = kind;
    v.index = static_cast<std::uint32_t>(doc_.strings.size() - 1);
    return v;
  }
  Value make_container(std::size_t at, Kind kind, std::vector<Value> items, bool ordered = false) {
    count_object(at);
    doc_.containers.push_back(Container{std::move(items), ordered});
    Value v;
    v.kind = kind;
    v.index = static_cast<std::uint32_t>(doc_.containers.size() - 1);
    return v;
  }
  // Tuples are immutable, so every EMPTY_TUPLE can share one object.
  Value empty_tuple(std::size_t at) {
    if (!empty_tuple_) empty_tuple_ = make_container(at, Kind::tuple, {});
    return *empty_tuple_;
  }
  Container& container_on_top(std::size_t at, Kind kind, const char* op) {
    const Value& t = top(at);
    if (t.kind != kind)
      fail(at, std::string(op) + " needs a " + std::string(kind_name(kind)) + " below its items, found " +
                   std::string(kind_name(t.kind)));
    return doc_.containers[t.index];
  }
  void set_item(std::size_t at, Container& dict, const Value& k, const Value& v) {
    if (k.kind == Kind::list || k.kind == Kind::dict) fail(at, "unhashable dict key of type " + std::string(kind_name(k.kind)));
    dict.items.push_back(k);
    dict.items.push_back(v);
  }

  Value read_long1(std::size_t at) {
    const std::uint64_t n = read_uint(at, 1);
    const std::string_view b = read_bytes(at, n);
    if (n > 8) {  // Python ints are unbounded; nothing in a weights file needs one this big
      Value v;
      v.kind = Kind::big_integer;
      return v;
    }
    std::uint64_t u = 0;
    for (std::size_t i = n; i-- > 0;) u = (u << 8) | static_cast<unsigned char>(b[i]);
    if (n > 0 && n < 8 && (static_cast<unsigned char>(b[n - 1]) & 0x80)) u |= ~std::uint64_t{0} << (8 * n);  // sign-extend
    return integer(static_cast<std::int64_t>(u));
  }

  Value resolve(std::size_t at, std::string_view module, std::string_view name) {
    Value v;
    v.kind = Kind::callable;
    if (module == "collections" && name == "OrderedDict") {
      v.callable = Callable::ordered_dict;
      return v;
    }
    if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
      v.callable = Callable::rebuild_tensor_v2;
      return v;
    }
    if (module == "torch._utils" && name == "_rebuild_parameter") {
      v.callable = Callable::rebuild_parameter;
      return v;
    }
    if (module == "_codecs" && name == "encode") {
      v.callable = Callable::codecs_encode;
      return v;
    }
    if (module == "torch")
      for (const auto& s : storage_types)
        if (name == s.name) {
          v.callable = Callable::storage_type;
          v.dtype = s.dtype;
          return v;
        }
    fail(at, "refusing global '" + printable(module) + "." + printable(name) +
                 "': a weights file may only reference collections.OrderedDict, "
                 "torch._utils._rebuild_tensor_v2/_rebuild_parameter, torch.*Storage types and _codecs.encode "
                 "(nothing in the file is ever executed)");
  }

  std::span<const Value> tuple_items(const Value& v) const { return doc_.containers[v.index].items; }

  Value persistent_load(std::size_t at, const Value& pid) {
    if (pid.kind != Kind::tuple) fail(at, "persistent id is of type " + std::string(kind_name(pid.kind)) + ", expected a tuple");
    const auto f = tuple_items(pid);
    if (f.size() != 5 || f[0].kind != Kind::string || doc_.text(f[0]) != "storage")
      fail(at, "persistent id is not ('storage', type, key, location, numel)");
    if (f[1].kind != Kind::callable || f[1].callable != Callable::storage_type)
      fail(at, "persistent id names an object of type " + std::string(kind_name(f[1].kind)) + " where a torch.*Storage type belongs");
    if (f[2].kind != Kind::string || f[3].kind != Kind::string)
      fail(at, "persistent id key and location must be str");
    if (f[4].kind != Kind::integer || f[4].integer < 0)
      fail(at, "persistent id element count must be a non-negative int");
    count_object(at);
    doc_.storages.push_back(Storage{f[2].index, f[3].index, f[1].dtype, f[4].integer});
    Value v;
    v.kind = Kind::storage;
    v.index = static_cast<std::uint32_t>(doc_.storages.size() - 1);
    return v;
  }

  std::vector<std::int64_t> int_tuple(std::size_t at, const Value& v, const char* what) const {
    if (v.kind != Kind::tuple) fail(at, std::string("tensor ") + what + " is of type " + std::string(kind_name(v.kind)) + ", expected a tuple");
    const auto items = tuple_items(v);
    if (items.size() > limits_.max_rank)
      fail(at, std::string("tensor ") + what + " has " + std::to_string(items.size()) + " dimensions, more than " +
                   std::to_string(limits_.max_rank));
    std::vector<std::int64_t> out;
    out.reserve(items.size());
    for (const auto& i : items) {
      if (i.kind != Kind::integer) fail(at, std::string("tensor ") + what + " holds an element of type " + std::string(kind_name(i.kind)) + ", expected int");
      out.push_back(i.integer);
    }
    return out;
  }

  Value reduce(std::size_t at, const Value& fn, const Value& args) {
    if (fn.kind != Kind::callable) fail(at, "REDUCE applied to an object of type " + std::string(kind_name(fn.kind)) + ", not a global");
    if (args.kind != Kind::tuple) fail(at, "REDUCE arguments are of type " + std::string(kind_name(args.kind)) + ", expected a tuple");
    const auto a = tuple_items(args);
    switch (fn.callable) {
      case Callable::ordered_dict:
        if (!a.empty()) fail(at, "collections.OrderedDict is only accepted with no arguments");
        return make_container(at, Kind::dict, {}, /*ordered=*/true);
      case Callable::rebuild_tensor_v2: {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.size() != 6 && a.size() != 7)
          fail(at, "_rebuild_tensor_v2 takes 6 or 7 arguments, found " + std::to_string(a.size()));
        if (a[0].kind != Kind::storage) fail(at, "_rebuild_tensor_v2 storage argument is of type " + std::string(kind_name(a[0].kind)));
        if (a[1].kind != Kind::integer) fail(at, "_rebuild_tensor_v2 storage offset is of type " + std::string(kind_name(a[1].kind)));
        Tensor t;
        t.storage = a[0].index;
        t.offset = a[1].integer;
        t.shape = int_tuple(at, a[2], "size");
        t.stride = int_tuple(at, a[3], "stride");
        if (t.shape.size() != t.stride.size())
          fail(at, "tensor size has " + std::to_string(t.shape.size()) + " dimensions but stride has " +
                       std::to_string(t.stride.size()));
        if (a[4].kind != Kind::boolean) fail(at, "_rebuild_tensor_v2 requires_grad is of type " + std::string(kind_name(a[4].kind)));
        t.requires_grad = a[4].integer != 0;
        if (a[5].kind != Kind::dict) fail(at, "_rebuild_tensor_v2 backward hooks are of type " + std::string(kind_name(a[5].kind)));
        if (a.size() == 7) check_tensor_metadata(at, a[6]);
        count_object(at);
        doc_.tensors.push_back(std::move(t));
        Value v;
        v.kind = Kind::tensor;
        v.index = static_cast<std::uint32_t>(doc_.tensors.size() - 1);
        return v;
      }
      case Callable::rebuild_parameter:  // (data, requires_grad, backward_hooks): a Parameter is its tensor
        if (a.size() != 3 || a[0].kind != Kind::tensor || a[1].kind != Kind::boolean || a[2].kind != Kind::dict)
          fail(at, "_rebuild_parameter expects (tensor, bool, dict)");
        return a[0];
      case Callable::storage_type:
        fail(at, "a torch.*Storage type may only appear in a persistent id, not be called");
      case Callable::codecs_encode:
        return latin1_bytes(at, a);
    }
    fail(at, "unreachable callable");
  }

  // encode(text, 'latin1'): each code point below 256 becomes one byte.
  Value latin1_bytes(std::size_t at, std::span<const Value> a) {
    if (a.size() != 2 || a[0].kind != Kind::string || a[1].kind != Kind::string ||
        (doc_.text(a[1]) != "latin1" && doc_.text(a[1]) != "latin-1"))
      fail(at, "_codecs.encode is only accepted as encode(str, 'latin1')");
    const std::string_view text = doc_.text(a[0]);  // valid UTF-8, checked when it was read
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c < 0x80) {
        out += static_cast<char>(c);
        i += 1;
      } else if ((c & 0xe0) == 0xc0 && c <= 0xc3) {  // two-byte forms of U+0080..U+00FF
        out += static_cast<char>(((c & 0x03u) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3fu));
        i += 2;
      } else {
        fail(at, "_codecs.encode: a character beyond U+00FF has no latin1 byte");
      }
    }
    count_object(at);
    doc_.strings.push_back(std::move(out));  // after the last use of `text`: this may move the strings
    Value v;
    v.kind = Kind::bytes;
    v.index = static_cast<std::uint32_t>(doc_.strings.size() - 1);
    return v;
  }

  // Newer torch appends a metadata dict of tensor flags (e.g. lazily negated
  // or conjugated views). With a flag set the stored bytes are not the
  // tensor's values, so only all-false flags are accepted.
  void check_tensor_metadata(std::size_t at, const Value& m) const {
    if (m.kind == Kind::none) return;
    if (m.kind != Kind::dict) fail(at, "_rebuild_tensor_v2 metadata is of type " + std::string(kind_name(m.kind)) + ", expected a dict");
    const auto& items = doc_.containers[m.index].items;
    for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
      const Value& flag = items[i + 1];
      if (flag.kind != Kind::boolean || flag.integer != 0) {
        const std::string key = items[i].kind == Kind::string ? printable(doc_.text(items[i])) : "?";
        fail(at, "tensor metadata flag '" + key + "' is set; such tensors are not supported");
      }
    }
  }

  // OrderedDict state (torch stores the module version table as
  // `_metadata` this way) carries nothing a weights reader needs.
  void build(std::size_t at, const Value& target, const Value& state) const {
    if (target.kind != Kind::dict || !doc_.containers[target.index].ordered)
      fail(at, "BUILD is only accepted on a collections.OrderedDict, found " + std::string(kind_name(target.kind)));
    if (state.kind != Kind::dict && state.kind != Kind::none)
      fail(at, "OrderedDict state is of type " + std::string(kind_name(state.kind)) + ", expected a dict");
  }

  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  std::string_view source_;
  Limits limits_;
  Document doc_;
  std::vector<Value> stack_;
  std::vector<std::size_t> marks_;  // stack heights at each open MARK
  std::unordered_map<std::uint64_t, Value> memo_;
  std::optional<Value> empty_tuple_;
  std::size_t objects_ = 0;
};

}  // namespace detail

// Runs the pickle in `bytes` and returns its object graph. `source` prefixes
// every error message (e.g. "model.pth: archive/data.pkl").
inline Document load(std::span<const std::byte> bytes, std::string_view source, const Limits& limits = {}) {
  return detail::Machine(bytes, source, limits).run();
}

}  // namespace ctnn::io::pickle

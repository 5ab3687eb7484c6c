// torch.save reader tests. Oracle: the values torch itself exported next to
// each fixture (tests/data/pth/make_pth_fixtures.py), and a hostile corpus
// with the error each file must produce.
#include <doctest/doctest.h>

#include <ctnn/io/pth.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace ctnn;

const fs::path data_dir = fs::path(CTNN_TEST_DATA_DIR) / "pth";

std::vector<std::byte> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(c.size());
  if (!c.empty()) std::memcpy(out.data(), c.data(), c.size());
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::vector<std::vector<std::string>> read_table(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(split(line, '\t'));
  return rows;
}

struct Expected {
  std::string name, dtype;
  std::vector<std::uint64_t> shape;
  std::span<const std::byte> bytes;
};

struct ExpectedSet {
  std::vector<std::byte> blob;
  std::vector<Expected> tensors;
};

ExpectedSet load_expected(const std::string& stem) {
  ExpectedSet set;
  set.blob = read_bytes(data_dir / (stem + ".bin"));
  for (const auto& row : read_table(data_dir / (stem + ".txt"))) {
    REQUIRE(row.size() == 5);
    Expected e;
    e.name = row[0];
    e.dtype = row[1];
    if (!row[2].empty())
      for (const auto& d : split(row[2], ',')) e.shape.push_back(std::stoull(d));
    const auto off = std::stoull(row[3]), len = std::stoull(row[4]);
    REQUIRE(off + len <= set.blob.size());
    e.bytes = std::span<const std::byte>(set.blob).subspan(off, len);
    set.tensors.push_back(std::move(e));
  }
  return set;
}

void check_matches(const io::TensorFile& f, const ExpectedSet& e) {
  REQUIRE(f.tensors.size() == e.tensors.size());
  for (std::size_t i = 0; i < e.tensors.size(); ++i) {
    const auto& r = f.tensors[i];
    const auto& x = e.tensors[i];
    CAPTURE(x.name);
    CHECK(r.name == x.name);
    CHECK(io::dtype_name(r.dtype) == x.dtype);
    CHECK(r.shape == x.shape);
    REQUIRE(r.bytes.size() == x.bytes.size());
    CHECK(std::equal(r.bytes.begin(), r.bytes.end(), x.bytes.begin()));
  }
}

// Points inside the file's own bytes (not a strided copy)?
bool in_file(const io::TensorFile& f, std::span<const std::byte> b, std::size_t file_size) {
  return b.data() >= f.storage.data() && b.data() + b.size() <= f.storage.data() + file_size;
}

std::string load_error(std::span<const std::byte> bytes, const std::string& source) {
  try {
    io::read_pth(bytes, source);
  } catch (const io::LoadError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("pth: every good fixture loads with the exact values torch exported") {
  const auto cases = read_table(data_dir / "cases.txt");
  REQUIRE(cases.size() >= 10);
  for (const auto& c : cases) {
    CAPTURE(c[0]);
    const ExpectedSet expected = load_expected(c[1]);
    const io::TensorFile from_path = io::read_pth(data_dir / c[0]);
    CHECK(from_path.source == (data_dir / c[0]).string());
    check_matches(from_path, expected);

    const auto bytes = read_bytes(data_dir / c[0]);
    const io::TensorFile from_memory = io::read_pth(bytes);
    CHECK(from_memory.source == "<memory>");
    check_matches(from_memory, expected);
  }
}

TEST_CASE("pth: the archive folder is taken from the first entry") {
  const auto named = read_bytes(data_dir / "net_p2.pth");
  const io::zip::Archive a(named, "net_p2.pth");
  CHECK(a.entries()[0].name == "net_p2/data.pkl");
  const auto buffered = read_bytes(data_dir / "net_buffer.pth");
  const io::zip::Archive b(buffered, "net_buffer.pth");
  CHECK(b.entries()[0].name == "archive/data.pkl");
  // Both load to the same tensors.
  CHECK(io::read_pth(named).tensors.size() == io::read_pth(buffered).tensors.size());
}

TEST_CASE("pth: zip reader locates torch's 64-byte aligned records through the local headers") {
  const auto bytes = read_bytes(data_dir / "net_p2.pth");
  const io::zip::Archive a(bytes, "net_p2.pth");
  const io::zip::Entry* version = a.find("net_p2/version");
  REQUIRE(version);
  const auto v = a.data(*version);
  CHECK(std::string(reinterpret_cast<const char*>(v.data()), v.size()) == "3\n");
  CHECK(a.find("net_p2/nonexistent") == nullptr);
  for (const auto& e : a.entries()) {
    CAPTURE(e.name);
    CHECK(e.method == 0);
    CHECK(e.data_offset % 64 == 0);  // torch pads the LOCAL extra field; the central one is empty
    CHECK(e.data_offset > e.local_header_offset + 30 + e.name.size());
  }
}

TEST_CASE("pth: a ZIP64 archive with saturated classic fields reads like the original") {
  const auto bytes = read_bytes(data_dir / "net_zip64.pth");
  const io::zip::Archive z(bytes, "net_zip64.pth");
  const auto orig = read_bytes(data_dir / "net_p2.pth");
  const io::zip::Archive o(orig, "net_p2.pth");
  REQUIRE(z.entries().size() == o.entries().size());
  for (std::size_t i = 0; i < o.entries().size(); ++i) {
    const auto& ze = z.entries()[i];
    const auto& oe = o.entries()[i];
    CHECK(ze.name.substr(ze.name.find('/')) == oe.name.substr(oe.name.find('/')));
    REQUIRE(ze.size == oe.size);
    CHECK(std::ranges::equal(z.data(ze), o.data(oe)));
  }
}

TEST_CASE("pth: contiguous tensors point into the file, views of one storage alias it") {
  const auto path = data_dir / "views.pth";
  const std::size_t file_size = fs::file_size(path);
  const io::TensorFile f = io::read_pth(path);
  const auto* base = f.find("base");
  const auto* row = f.find("row");
  const auto* transposed = f.find("transposed");
  const auto* slice = f.find("slice");
  const auto* channels_last = f.find("channels_last");
  const auto* expanded = f.find("expanded");
  REQUIRE((base && row && transposed && slice && channels_last && expanded));
  CHECK(in_file(f, base->bytes, file_size));
  CHECK(in_file(f, row->bytes, file_size));
  CHECK(row->bytes.data() == base->bytes.data() + 2 * 5 * 4);  // base[2]: offset 10 floats, no copy
  for (const auto* strided : {transposed, slice, channels_last, expanded}) {
    CAPTURE(strided->name);
    CHECK_FALSE(in_file(f, strided->bytes, file_size));  // gathered into contiguous C order
    CHECK(reinterpret_cast<std::uintptr_t>(strided->bytes.data()) % 16 == 0);
  }
  // transposed is base.t(): element [j][i] equals base[i][j].
  std::vector<float> b(15), t(15);
  io::convert_to_f32(*base, b, "views");
  io::convert_to_f32(*transposed, t, "views");
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j) CHECK(t[j * 3 + i] == b[i * 5 + j]);
  const auto* empty = f.find("empty");
  REQUIRE(empty);
  CHECK(empty->bytes.empty());
  CHECK(empty->shape == std::vector<std::uint64_t>{0, 3});
}

TEST_CASE("pth: float16 weights convert to the float32 values torch computes") {
  const io::TensorFile f = io::read_pth(data_dir / "net_f16.pth");
  const ExpectedSet as_f32 = load_expected("net_f16_f32");
  REQUIRE(f.tensors.size() == as_f32.tensors.size());
  int converted = 0;
  for (std::size_t i = 0; i < f.tensors.size(); ++i) {
    const auto& r = f.tensors[i];
    CAPTURE(r.name);
    if (r.dtype != io::DType::f16) continue;
    std::vector<float> got(r.elements()), want(r.elements());
    io::convert_to_f32(r, got, f.source);
    REQUIRE(as_f32.tensors[i].bytes.size() == want.size() * 4);
    std::memcpy(want.data(), as_f32.tensors[i].bytes.data(), want.size() * 4);
    CHECK(got == want);
    ++converted;
  }
  CHECK(converted > 20);
}

TEST_CASE("pth: checkpoint wrappers, DataParallel names and num_batches_tracked") {
  const io::TensorFile dp = io::read_pth(data_dir / "net_dp.pth");
  const io::TensorFile plain = io::read_pth(data_dir / "net_p2.pth");
  REQUIRE(dp.tensors.size() == plain.tensors.size());
  for (std::size_t i = 0; i < dp.tensors.size(); ++i) CHECK(dp.tensors[i].name == plain.tensors[i].name);
  CHECK(plain.find("layer2.0.downsample.1.running_var"));
  CHECK(plain.find("fc.bias"));

  const auto* nbt = plain.find("bn1.num_batches_tracked");
  REQUIRE(nbt);
  CHECK(nbt->dtype == io::DType::i64);
  CHECK(nbt->shape.empty());
  REQUIRE(nbt->bytes.size() == 8);
  std::int64_t n = 0;
  std::memcpy(&n, nbt->bytes.data(), 8);
  CHECK(n >= 100);  // the fixture sets 100 + module index

  // {'model': sd, 'optimizer': ..., 'epoch': 3, ...}: only the model's tensors.
  const io::TensorFile ck = io::read_pth(data_dir / "net_model_optim.pth");
  CHECK(ck.tensors.size() == plain.tensors.size());
  CHECK(ck.find("conv1.weight"));
}

TEST_CASE("pth: every hostile file is refused with its expected message") {
  const auto rows = read_table(data_dir / "bad" / "expected.txt");
  REQUIRE(rows.size() >= 40);
  for (const auto& row : rows) {
    REQUIRE(row.size() == 2);
    const auto path = data_dir / "bad" / row[0];
    CAPTURE(row[0]);
    std::string message;
    try {
      io::read_pth(path);
    } catch (const io::LoadError& e) {
      message = e.what();
    }
    CAPTURE(message);
    CHECK(message.find(row[1]) != std::string::npos);
    CHECK(message.rfind(path.string() + ": ", 0) == 0);  // names the file first
  }
}

TEST_CASE("pth: a missing file is a LoadError naming it") {
  CHECK_THROWS_AS(io::read_pth(data_dir / "does_not_exist.pth"), io::LoadError);
}

TEST_CASE("pth: every truncation of a fixture is refused cleanly") {
  const auto bytes = read_bytes(data_dir / "views_p4.pth");
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    CHECK_FALSE(load_error(std::span(bytes).first(n), "cut").empty());
  }
}

TEST_CASE("pth: corrupting any single byte loads or fails with a LoadError, nothing else") {
  const auto original = read_bytes(data_dir / "views.pth");
  auto bytes = original;
  int refused = 0, loaded = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (const unsigned v : {0x00u, 0xffu, std::to_integer<unsigned>(original[i]) ^ 0x01u,
                             (std::to_integer<unsigned>(original[i]) + 0x80u) & 0xffu}) {
      bytes[i] = static_cast<std::byte>(v);
      try {
        const io::TensorFile f = io::read_pth(bytes, "mutant");
        for (const auto& t : f.tensors) {  // whatever loads must be self-consistent
          REQUIRE(t.bytes.size() == t.elements() * io::dtype_size(t.dtype));
          if (!t.bytes.empty()) {
            REQUIRE(t.bytes.data() >= f.storage.data());
            REQUIRE(t.bytes.data() + t.bytes.size() <= f.storage.data() + f.storage.size());
          }
        }
        ++loaded;
      } catch (const io::LoadError&) {
        ++refused;
      }
    }
    bytes[i] = original[i];
  }
  CHECK(refused > 0);
  CHECK(loaded > 0);  // padding and timestamps carry no meaning
}

// ---------------------------------------------------------------------------------------------
// The pickle machine on hand-written programs.

namespace {
std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}
io::pickle::Document run(std::string_view program) {
  const auto b = bytes_of(program);
  return io::pickle::load(b, "test");
}
}  // namespace

TEST_CASE("pickle: scalar opcodes decode as Python does") {
  using io::pickle::Kind;
  using namespace std::string_view_literals;
  // (-1 BININT, 300 BININT2, -256 LONG1, 2**40 LONG1, 1.5 BINFLOAT, True, None, 'é', b'\x00')
  const auto doc = run("\x80\x02("
                       "J\xff\xff\xff\xff"
                       "M\x2c\x01"
                       "\x8a\x02\x00\xff"
                       "\x8a\x06\x00\x00\x00\x00\x00\x01"
                       "G\x3f\xf8\x00\x00\x00\x00\x00\x00"
                       "\x88N"
                       "\x8c\x02\xc3\xa9"
                       "C\x01\x00"
                       "t."sv);
  REQUIRE(doc.root.kind == Kind::tuple);
  const auto& t = doc.container(doc.root).items;
  REQUIRE(t.size() == 9);
  CHECK(t[0].integer == -1);
  CHECK(t[1].integer == 300);
  CHECK(t[2].integer == -256);
  CHECK(t[3].integer == (std::int64_t{1} << 40));
  CHECK(t[4].kind == Kind::floating);
  CHECK(t[4].floating == 1.5);
  CHECK(t[5].kind == Kind::boolean);
  CHECK(t[5].integer == 1);
  CHECK(t[6].kind == Kind::none);
  CHECK(doc.text(t[7]) == "\xc3\xa9");
  CHECK(t[8].kind == Kind::bytes);
  CHECK(doc.text(t[8]) == "\x00"sv);
}

TEST_CASE("pickle: protocol 2 bytes arrive as _codecs.encode(text, 'latin1')") {
  using io::pickle::Kind;
  using namespace std::string_view_literals;
  const auto doc = run("\x80\x02\x63_codecs\nencode\nX\x03\x00\x00\x00" "a\xc3\xa9X\x06\x00\x00\x00" "latin1\x86R."sv);
  REQUIRE(doc.root.kind == Kind::bytes);
  CHECK(doc.text(doc.root) == "a\xe9"sv);
}

TEST_CASE("pickle: memo references share one object, and cycles are harmless") {
  using io::pickle::Kind;
  using namespace std::string_view_literals;
  // l = []; l.append(l); {'a': l, 'b': l}
  const auto doc = run("\x80\x02}(X\x01\x00\x00\x00" "a]q\x00h\x00" "aX\x01\x00\x00\x00" "bh\x00u."sv);
  REQUIRE(doc.root.kind == Kind::dict);
  const auto& d = doc.container(doc.root).items;
  REQUIRE(d.size() == 4);
  CHECK(doc.text(d[0]) == "a");
  REQUIRE(d[1].kind == Kind::list);
  CHECK(d[3].kind == Kind::list);
  CHECK(d[1].index == d[3].index);
  const auto& l = doc.container(d[1]).items;
  REQUIRE(l.size() == 1);
  CHECK(l[0].index == d[1].index);
}

TEST_CASE("pickle: disallowed globals are refused by name before anything else") {
  using namespace std::string_view_literals;
  for (const auto& [program, name] :
       {std::pair{"\x80\x02\x63posix\nsystem\n."sv, "'posix.system'"sv},
        std::pair{"\x80\x04\x8c\x08\x62uiltins\x8c\x04\x65xec\x93."sv, "'builtins.exec'"sv},
        std::pair{"\x80\x02\x63torch\nUntypedStorage\n."sv, "'torch.UntypedStorage'"sv},
        std::pair{"\x80\x02\x63torch._utils\n_rebuild_qtensor\n."sv, "'torch._utils._rebuild_qtensor'"sv}}) {
    CAPTURE(name);
    std::string message;
    try {
      run(program);
    } catch (const io::LoadError& e) {
      message = e.what();
    }
    CHECK(message.find("refusing global " + std::string(name)) != std::string::npos);
  }
}

TEST_CASE("pickle: limits are enforced") {
  using namespace std::string_view_literals;
  io::pickle::Limits small;
  small.max_stack = 4;
  small.max_memo = 2;
  small.max_objects = 3;
  auto error = [&](std::string_view program) {
    const auto b = bytes_of(program);
    try {
      io::pickle::load(b, "test", small);
    } catch (const io::LoadError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error("\x80\x02NNNNN."sv).find("stack deeper than 4") != std::string::npos);
  CHECK(error("\x80\x02N\x94\x94\x94."sv).find("memo larger than 2") != std::string::npos);
  CHECK(error("\x80\x02]]]]."sv).find("more than 3 objects") != std::string::npos);
}

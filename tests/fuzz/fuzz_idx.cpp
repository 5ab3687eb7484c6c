// libFuzzer target for the IDX reader (plain and gzip'd). Built and run by
// tests/fuzz/CMakeLists.txt (ctest -L fuzz); by hand:
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_idx.cpp -lz -o fuzz_idx
//   ./fuzz_idx -dict=tests/fuzz/idx.dict corpus tests/fuzz/corpus/idx
// Any input must either load or raise LoadError; what loads holds exactly
// shape-product elements and converts to as many floats.
#include <ctnn/io/idx.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    // read_idx's inflate cap (2 GiB) is sized for real data sets; a fuzzer
    // process has less memory, so gzip input is inflated here with a lower
    // cap, through the same gunzip read_idx uses.
    constexpr std::uint64_t cap = std::uint64_t{64} << 20;
    const ctnn::io::IdxArray a = ctnn::io::is_gzip(bytes) ? ctnn::io::parse_idx(ctnn::io::gunzip(bytes, "fuzz", cap), "fuzz")
                                                          : ctnn::io::read_idx(bytes, "fuzz");
    const std::uint64_t n = a.elements();
    if (a.data.size() != n * ctnn::io::idx_type_size(a.type)) std::abort();
    if (a.to_f32().size() != n) std::abort();
    if (a.type == ctnn::io::IdxType::u8 && a.u8().size() != n) std::abort();
    (void)a.expect(a.type, a.shape.size());
  } catch (const ctnn::io::LoadError&) {
  }
  return 0;
}

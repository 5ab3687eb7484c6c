// libFuzzer target for the .npy reader. Built and run by
// tests/fuzz/CMakeLists.txt (ctest -L fuzz); by hand:
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_npy.cpp -o fuzz_npy
//   ./fuzz_npy tests/data/io tests/data/io/bad
// Any input must either load or raise LoadError; what loads has as many
// values as its shape says and survives a write/read round trip.
#include <ctnn/io/npy.hpp>

#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const ctnn::io::NpyArray a = ctnn::io::read_npy(bytes);
    std::uint64_t n = 1;
    for (auto d : a.shape) n *= d;
    if (n != a.data.size()) std::abort();
    const auto b = ctnn::io::read_npy(ctnn::io::write_npy_to_memory(a.data, a.shape));
    if (b.shape != a.shape || (n && std::memcmp(b.data.data(), a.data.data(), n * sizeof(float)) != 0)) std::abort();
  } catch (const ctnn::io::LoadError&) {
  }
  return 0;
}

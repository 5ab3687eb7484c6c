// libFuzzer target for the torch.save reader (zip.hpp, pickle.hpp, pth.hpp).
// Built and run by tests/fuzz/CMakeLists.txt (ctest -L fuzz); by hand:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_pth.cpp -o fuzz_pth
//   mkdir -p corpus && ./fuzz_pth -dict=tests/fuzz/pth.dict -rss_limit_mb=1024 corpus tests/fuzz/corpus/pth tests/data/pth/bad
// Every input must either load or throw io::LoadError; any other exception,
// sanitizer report or allocation above the RSS limit is a finding.
#include <ctnn/io/pth.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const ctnn::io::TensorFile f = ctnn::io::read_pth(bytes, "fuzz");
    // Whatever loads must be self-consistent, and every byte readable.
    unsigned sum = 0;
    for (const auto& t : f.tensors) {
      if (t.bytes.size() != t.elements() * ctnn::io::dtype_size(t.dtype)) std::abort();
      for (std::byte b : t.bytes) sum += std::to_integer<unsigned>(b);
    }
    volatile unsigned sink = sum;
    (void)sink;
  } catch (const ctnn::io::LoadError&) {
  }
  // The pickle machine on its own, so mutations reach it without having to
  // keep a ZIP archive intact around it.
  try {
    (void)ctnn::io::pickle::load(bytes, "fuzz");
  } catch (const ctnn::io::LoadError&) {
  }
  return 0;
}

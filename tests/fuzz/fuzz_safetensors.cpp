// libFuzzer target for the safetensors reader. Built and run by
// tests/fuzz/CMakeLists.txt (ctest -L fuzz); by hand:
//   clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_safetensors.cpp -o fuzz_safetensors
//   ./fuzz_safetensors -dict=tests/fuzz/safetensors.dict tests/data/io tests/data/io/bad
// Any input must either load or raise LoadError; whatever loads must satisfy
// the invariants the rest of ctnn relies on.
#include <ctnn/io/safetensors.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const ctnn::io::TensorFile f = ctnn::io::read_safetensors(bytes);
    std::uint64_t covered = 0;
    for (const auto& t : f.tensors) {
      // Records lie inside storage and match dtype x shape.
      if (t.bytes.size() && (t.bytes.data() < f.storage.data() ||
                             t.bytes.data() + t.bytes.size() > f.storage.data() + f.storage.size()))
        std::abort();
      if (t.elements() * ctnn::io::dtype_size(t.dtype) != t.bytes.size()) std::abort();
      covered += t.bytes.size();
    }
    if (covered != f.storage.size()) std::abort();  // exact tiling
    // A loaded file survives a write/read round trip with the same tensors.
    std::vector<ctnn::io::TensorToWrite> out;
    for (const auto& t : f.tensors) out.push_back({t.name, t.dtype, t.shape, t.bytes});
    const auto again = ctnn::io::read_safetensors(ctnn::io::write_safetensors_to_memory(out, f.metadata));
    if (again.tensors.size() != f.tensors.size() || again.metadata != f.metadata) std::abort();
  } catch (const ctnn::io::LoadError&) {
  }
  return 0;
}

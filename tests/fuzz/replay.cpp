// Replays the committed crash corpus (tests/fuzz/crashes/<target>/) and the
// seed corpus (tests/fuzz/corpus/<target>/) through the fuzz entry points,
// compiled here by the normal compiler without libFuzzer. Each entry point
// aborts on a broken invariant and lets only io::LoadError escape quietly,
// so a regression shows up as a crash or an unexpected exception here.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int ctnn_fuzz_safetensors(const std::uint8_t*, std::size_t);
extern "C" int ctnn_fuzz_npy(const std::uint8_t*, std::size_t);
extern "C" int ctnn_fuzz_pth(const std::uint8_t*, std::size_t);
extern "C" int ctnn_fuzz_idx(const std::uint8_t*, std::size_t);
extern "C" int ctnn_fuzz_image(const std::uint8_t*, std::size_t);

namespace {

namespace fs = std::filesystem;
using EntryPoint = int (*)(const std::uint8_t*, std::size_t);

std::size_t replay(const std::string& target, EntryPoint entry) {
  std::size_t n = 0;
  for (const char* kind : {"crashes", "corpus"}) {
    const fs::path dir = fs::path(CTNN_FUZZ_DIR) / kind / target;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (!e.is_regular_file() || e.path().extension() == ".md") continue;
      std::ifstream in(e.path(), std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      INFO("replaying ", e.path().string());
      CHECK(entry(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) == 0);
      ++n;
    }
  }
  // Also the empty input, which every parser must refuse cleanly.
  CHECK(entry(nullptr, 0) == 0);
  return n;
}

}  // namespace

TEST_CASE("fuzz replay: safetensors") { CHECK(replay("safetensors", ctnn_fuzz_safetensors) > 0); }
TEST_CASE("fuzz replay: npy") { CHECK(replay("npy", ctnn_fuzz_npy) > 0); }
TEST_CASE("fuzz replay: pth") { CHECK(replay("pth", ctnn_fuzz_pth) > 0); }
TEST_CASE("fuzz replay: idx") { CHECK(replay("idx", ctnn_fuzz_idx) > 0); }
TEST_CASE("fuzz replay: image") { CHECK(replay("image", ctnn_fuzz_image) > 0); }

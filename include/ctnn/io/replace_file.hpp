// Replacing a file whole: the new contents go to a temporary file beside it,
// which is renamed into place only once written, so a failed or interrupted
// write never leaves a truncated file where a good one was (checkpoints,
// saved models, logs and curves of a run in progress).
#pragma once

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace ctnn::io {

// `write(std::ostream&)` produces the contents. Throws std::runtime_error
// naming the file on any I/O failure, and leaves no temporary behind.
template <class Write>
void replace_file(const std::filesystem::path& path, Write&& write) {
  std::filesystem::path tmp = path;
  tmp += ".ctnn-tmp";
  const auto discard = [&] {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
  };
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(tmp.string() + ": cannot open for writing");
    write(out);
    out.close();
    if (!out) {
      discard();
      throw std::runtime_error(tmp.string() + ": write failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    discard();
    throw std::runtime_error(path.string() + ": cannot replace with the written file: " + ec.message());
  }
}

}  // namespace ctnn::io

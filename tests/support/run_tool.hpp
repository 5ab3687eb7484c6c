// Running a command-line tool from a test: through the shell, one OpenMP
// thread, stdout and stderr captured into files of a per-process scratch
// directory.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "temp_path.hpp"

namespace ctnn_test {

struct ToolRun {
  int status = -1;
  std::string out, err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
inline std::string shell_quote(const std::filesystem::path& p) { return shell_quote(p.string()); }

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A directory of this test process's own, created on first use.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const std::filesystem::path d = temp_path("test-" + name);
  std::filesystem::create_directories(d);
  return d;
}

// `args` are already quoted where needed.
inline ToolRun run_tool(const std::string& tool, const std::string& args, const std::filesystem::path& scratch) {
  static int counter = 0;
  const std::filesystem::path out = scratch / ("out" + std::to_string(counter) + ".txt");
  const std::filesystem::path err = scratch / ("err" + std::to_string(counter++) + ".txt");
  const std::string cmd = "OMP_NUM_THREADS=1 " + shell_quote(tool) + " " + args + " >" + shell_quote(out) + " 2>" +
                          shell_quote(err);
  const int raw = std::system(cmd.c_str());
  ToolRun r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + (WIFSIGNALED(raw) ? WTERMSIG(raw) : 0);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace ctnn_test

// Built without instruction-set flags and linked into the test variants that
// need one: on a CPU without it, the variant reports that it skips and exits
// successfully before any of its code can run an unsupported instruction.
#include <cstdio>
#include <cstdlib>

namespace {
[[maybe_unused]] const bool checked = [] {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::fprintf(stderr, "this CPU has no AVX2/FMA: skipping the AVX2 variant of the CPU backend tests\n");
    std::exit(0);
  }
#endif
  return true;
}();
}  // namespace

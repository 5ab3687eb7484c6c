// Entry point of ctnn-cuda-tests. Without a usable GPU only the "without a
// GPU" test cases run (they check the error users get); the program then
// prints an explicit SKIPPED line and exits with 77, which ctest reports as
// skipped (SKIP_RETURN_CODE), not passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <cstdio>

int main(int argc, char** argv) {
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  const bool gpu = e == cudaSuccess && devices > 0;

  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  if (!gpu) {
    ctx.addFilter("test-case", "*without a GPU*");
    const int rc = ctx.run();
    if (rc != 0 || ctx.shouldExit()) return rc;
    std::printf("SKIPPED: no CUDA GPU (cudaGetDeviceCount: %s, %d devices). The CUDA tests were compiled and linked "
                "(sm_90 + PTX); only the no-GPU error path ran.\n",
                e == cudaSuccess ? "ok" : cudaGetErrorName(e), devices);
    return 77;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
    std::printf("ctnn-cuda-tests on %s (compute capability %d.%d, %d SMs, %zu MiB)\n", prop.name, prop.major,
                prop.minor, prop.multiProcessorCount, static_cast<std::size_t>(prop.totalGlobalMem >> 20));
  return ctx.run();
}

// Compiled with -mavx2 -mfma (see tests/cpu/CMakeLists.txt).
#include "ctnn/backend/cpu/cpu.hpp"
#include "mixed_isa.hpp"

namespace ctnn::test {
IsaResult run_with_avx2(const Program& p, const std::vector<float>& params, ConstTensorView input) {
  backend::Cpu::Executor ex(p, params);
  auto ctx = ex.make_context({input.shape.n, input.shape.h, input.shape.w});
  return {ex.describe(), Tensor::copy_of(ex.run(input, ctx, Stage::output))};
}
}  // namespace ctnn::test

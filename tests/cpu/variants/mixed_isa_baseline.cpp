// Compiled without instruction-set flags, linked with mixed_isa_avx2.cpp: the
// two backend::Cpu instances must stay distinct (different symbols), and
// both must compute the right answer.
#include <doctest/doctest.h>

#include "ctnn/backend/cpu/cpu.hpp"
#include "mixed_isa.hpp"
#include "naive.hpp"

namespace ctnn::test {
IsaResult run_with_baseline(const Program& p, const std::vector<float>& params, ConstTensorView input) {
  backend::Cpu::Executor ex(p, params);
  auto ctx = ex.make_context({input.shape.n, input.shape.h, input.shape.w});
  return {ex.describe(), Tensor::copy_of(ex.run(input, ctx, Stage::output))};
}
}  // namespace ctnn::test

TEST_CASE("cpu backends for two instruction sets coexist in one program") {
  using namespace ctnn;
  test::ProgramBuilder b(3, 4);
  const int s = b.conv(0, 3, 24, 7, 2, 3);
  b.bn(s, 24);
  b.relu(s);
  const int m = b.max_pool(s, 3, 2, 1);
  const int c = b.conv(m, 24, 24, 3, 1, 1);
  b.bn(c, 24);
  b.add(c, m);
  b.relu(c);
  const int g = b.global_avg_pool(c);
  const int fc = b.linear(g, 24, 5);
  const Program p = b.finish(g, fc);
  const Tensor x = test::random_input({2, 3, 29, 31}, 9);
  const Tensor want = test::reference_run(p, b.params, x, p.ops.size(), p.output);

  const test::IsaResult base = test::run_with_baseline(p, b.params, x);
  const test::IsaResult avx2 = test::run_with_avx2(p, b.params, x);
  CHECK(base.description != avx2.description);  // one shared inline definition would print the same
  CHECK(avx2.description.find("avx2") != std::string::npos);
  CHECK(test::relative_error(base.output, want) < 1e-5);
  CHECK(test::relative_error(avx2.output, want) < 1e-5);
}

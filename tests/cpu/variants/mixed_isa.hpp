// Runs the same small program through backend::Cpu in two translation units
// compiled for different instruction sets (ODR check; see mixed_isa_*.cpp).
#pragma once

#include <string>
#include <vector>

#include "ctnn/core/tensor.hpp"
#include "ctnn/ir/program.hpp"

namespace ctnn::test {
struct IsaResult {
  std::string description;
  Tensor output;
};
IsaResult run_with_avx2(const Program& p, const std::vector<float>& params, ConstTensorView input);
IsaResult run_with_baseline(const Program& p, const std::vector<float>& params, ConstTensorView input);
}  // namespace ctnn::test

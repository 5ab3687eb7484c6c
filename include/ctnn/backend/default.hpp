// Which backend Model<Net> uses when none is named: the fast CPU backend.
// (CUDA is opt-in: Model<Net, backend::Cuda> in an nvcc-compiled TU that
// includes <ctnn/backend/cuda/cuda.cuh>.)
#pragma once

#include "ctnn/backend/cpu/cpu.hpp"
#include "ctnn/backend/reference/reference.hpp"
#include "ctnn/core/model.hpp"

namespace ctnn {
namespace backend {
using Default = Cpu;
}
template <class Net, class Backend = backend::Default>
class Model;
}  // namespace ctnn

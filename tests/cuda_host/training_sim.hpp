// The CUDA backend's training kernels and their dispatch
// (backend/cuda/training_ops.cuh) run in the host simulator, behind the
// same tape executor the GPU uses, with buffers the executor must treat as
// device memory: `CudaTrainingSim` is a backend that trains exactly as
// backend::Cuda does, on the CPU (inference comes from the reference backend).
#pragma once

#include "sim.hpp"

#include <ctnn/ctnn.hpp>

#include <string>
#include <vector>

#include "ctnn/backend/cuda/training_ops.cuh"

namespace ctnn::cuda::sim {

struct TrainingLauncher {
  template <class Body>
  void items(const Body& body, long count, const char*, const std::string&) {
    for (long i = 0; i < count; ++i) body(i);
  }
  template <class Body>
  void blocks(const Body& body, long gx, long gy, long gz, const char*, const std::string&) {
    std::vector<double> smem((Body::smem_bytes + sizeof(double) - 1) / sizeof(double));
    for (long z = 0; z < gz; ++z)
      for (long y = 0; y < gy; ++y)
        for (long x = 0; x < gx; ++x)
          run_block(Body::threads, [&](int tid) {
            body.block(smem.data(), tid, static_cast<int>(x), static_cast<int>(y), static_cast<int>(z));
          });
  }
};

// Host arrays the executor may not read in place: outputs, loss gradients,
// parameters and optimiser state go through its copies, as on the GPU.
struct DeviceLikeMemory : train::HostMemory {
  static constexpr bool host_visible = false;
};

// P: the training GEMMs' precision, as backend::Cuda (fp32) or
// backend::CudaBF16 (bf16) train.
template <Precision P>
struct CudaTrainingSimT : backend::Reference {
  static constexpr const char* name = P == Precision::bf16 ? "cuda bf16 training (simulated)" : "cuda training (simulated)";
  static constexpr std::uint32_t training_ops = trainable_ops;
  class TrainingExecutor : public train::TapeExecutor<TrainingKernels<TrainingLauncher, DeviceLikeMemory, P>> {
   public:
    TrainingExecutor(const Program& program, std::span<const float> params, std::size_t begin = 0)
        : TrainingExecutor::TapeExecutor(program, params, begin, "ctnn cuda backend (simulated)") {}
  };
};
using CudaTrainingSim = CudaTrainingSimT<Precision::fp32>;
using CudaTrainingSimBF16 = CudaTrainingSimT<Precision::bf16>;

}  // namespace ctnn::cuda::sim

// Training on the GPU: the tape executor (train/tape_executor.hpp) with the
// CUDA training kernels (training_ops.cuh), its buffers in device memory.
//
// Parameters, gradients, optimiser state, activations and saved values live
// on the GPU from the moment the trainer is made; per step only the input
// goes over, and the network's output and its loss gradient (batch x
// classes) come back and go out again for the host-side loss. The model's
// host copy of the parameters is written when asked (Trainer::sync_model),
// not after every step. Every kernel runs on the legacy default stream, so
// the copies order themselves after the kernels they depend on.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>

#include "ctnn/backend/cuda/error.cuh"
#include "ctnn/backend/cuda/resources.cuh"
#include "ctnn/backend/cuda/training_ops.cuh"
#include "ctnn/train/tape_executor.hpp"

namespace ctnn::cuda {

template <class Body>
__global__ void training_items_kernel(Body body, long count) {
  const long stride = static_cast<long>(gridDim.x) * blockDim.x;
  for (long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) body(i);
}

template <class Body>
__global__ void __launch_bounds__(Body::threads) training_block_kernel(Body body) {
  extern __shared__ __align__(128) double training_smem[];  // WMMA tiles need 32-byte alignment
  body.block(training_smem, static_cast<int>(threadIdx.x), static_cast<int>(blockIdx.x),
             static_cast<int>(blockIdx.y), static_cast<int>(blockIdx.z));
}

// Runs the training bodies on the GPU; every launch is checked, and a failure
// names the kernel and the layer.
class TrainingLauncher {
 public:
  TrainingLauncher() {
    const int device = require_device();
    CTNN_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device),
                    "while preparing the training kernels");
  }

  template <class Body>
  void items(const Body& body, long count, const char* kernel, const std::string& layer) const {
    if (count <= 0) return;
    const long want = (count + item_threads - 1) / item_threads;
    const auto blocks = static_cast<unsigned>(std::min(want, static_cast<long>(sm_count_) * 16));
    training_items_kernel<Body><<<blocks, item_threads>>>(body, count);
    after(kernel, layer);
  }

  template <class Body>
  void blocks(const Body& body, long gx, long gy, long gz, const char* kernel, const std::string& layer) const {
    if (gx <= 0 || gy <= 0 || gz <= 0) return;
    if (gy > 65535 || gz > 65535)
      throw Error("ctnn cuda: kernel '" + std::string(kernel) + "' in layer '" + layer + "' needs a grid of " +
                      std::to_string(gx) + " x " + std::to_string(gy) + " x " + std::to_string(gz) +
                      " blocks; the GPU allows at most 65535 in y and z",
                  cudaErrorInvalidConfiguration);
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(gz));
    training_block_kernel<Body><<<grid, Body::threads, Body::smem_bytes>>>(body);
    after(kernel, layer);
  }

 private:
  static constexpr int item_threads = 256;
  void after(const char* kernel, const std::string& layer) const {
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess)
      check(e, std::string("launch of training kernel '") + kernel + "'", in_layer(layer));
  }
  int sm_count_ = 1;
};

// train::TapeExecutor's buffers in device memory.
struct DeviceBuffers {
  static constexpr bool host_visible = false;

  template <class T>
  class Array {
   public:
    // Keeps the first min(old, new) elements; what it adds is zero.
    void resize(std::size_t n) {
      if (n == size_) return;
      DeviceMemory fresh = device_alloc(std::max<std::size_t>(n, 1) * sizeof(T), "for training buffers");
      const std::size_t kept = std::min(n, size_);
      if (kept)
        CTNN_CUDA_CHECK(cudaMemcpy(fresh.get(), mem_.get(), kept * sizeof(T), cudaMemcpyDeviceToDevice),
                        "while growing a training buffer");
      if (n > kept)
        CTNN_CUDA_CHECK(cudaMemset(static_cast<T*>(fresh.get()) + kept, 0, (n - kept) * sizeof(T)),
                        "while growing a training buffer");
      mem_ = std::move(fresh);
      size_ = n;
    }
    T* data() noexcept { return static_cast<T*>(mem_.get()); }
    const T* data() const noexcept { return static_cast<const T*>(mem_.get()); }
    std::size_t size() const noexcept { return size_; }

   private:
    DeviceMemory mem_;
    std::size_t size_ = 0;
  };

  class Floats : public Array<float> {  // activations and scratch: grows only, contents not kept
   public:
    void reserve(std::size_t n) {
      if (n <= size()) return;
      static_cast<Array<float>&>(*this) = Array<float>();  // free first: nothing to copy over
      resize(n);
    }
  };

  template <class T>
  static void to_device(T* dst, const T* src, std::size_t n) {
    if (n) CTNN_CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(T), cudaMemcpyHostToDevice), "while copying to the GPU");
  }
  template <class T>
  static void to_host(T* dst, const T* src, std::size_t n) {
    if (n) CTNN_CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(T), cudaMemcpyDeviceToHost), "while copying from the GPU");
  }
  template <class T>
  static void copy(T* dst, const T* src, std::size_t n) {
    if (n) CTNN_CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(T), cudaMemcpyDeviceToDevice), "while copying on the GPU");
  }
  template <class T>
  static void zero(T* p, std::size_t n) {
    if (n) CTNN_CUDA_CHECK(cudaMemset(p, 0, n * sizeof(T)), "while clearing a training buffer");
  }
};

template <Precision P = Precision::fp32>
using DeviceTrainingKernels = TrainingKernels<TrainingLauncher, DeviceBuffers, P>;

}  // namespace ctnn::cuda

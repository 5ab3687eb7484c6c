// Move-only owners of device memory, pinned host memory, streams and
// instantiated CUDA graphs. Destructors never throw: a failure while freeing
// means the device is already broken, and the call that broke it has thrown.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "ctnn/backend/cuda/error.cuh"

namespace ctnn::cuda {

template <class Traits>
class Owner {
 public:
  using handle = typename Traits::handle;
  Owner() = default;
  explicit Owner(handle h) : h_(h) {}
  Owner(Owner&& o) noexcept : h_(std::exchange(o.h_, handle{})) {}
  Owner& operator=(Owner&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, handle{});
    }
    return *this;
  }
  Owner(const Owner&) = delete;
  Owner& operator=(const Owner&) = delete;
  ~Owner() { reset(); }
  void reset() noexcept {
    if (h_) Traits::release(h_);
    h_ = handle{};
  }
  handle get() const noexcept { return h_; }
  explicit operator bool() const noexcept { return h_ != handle{}; }

 private:
  handle h_{};
};

struct DeviceMemoryTraits {
  using handle = void*;
  static void release(void* p) noexcept { (void)cudaFree(p); }
};
struct PinnedMemoryTraits {
  using handle = void*;
  static void release(void* p) noexcept { (void)cudaFreeHost(p); }
};
struct StreamTraits {
  using handle = cudaStream_t;
  static void release(cudaStream_t s) noexcept { (void)cudaStreamDestroy(s); }
};
struct GraphTraits {
  using handle = cudaGraph_t;
  static void release(cudaGraph_t g) noexcept { (void)cudaGraphDestroy(g); }
};
struct GraphExecTraits {
  using handle = cudaGraphExec_t;
  static void release(cudaGraphExec_t g) noexcept { (void)cudaGraphExecDestroy(g); }
};

using DeviceMemory = Owner<DeviceMemoryTraits>;
using PinnedMemory = Owner<PinnedMemoryTraits>;
using Stream = Owner<StreamTraits>;
using Graph = Owner<GraphTraits>;
using GraphExec = Owner<GraphExecTraits>;

inline DeviceMemory device_alloc(std::size_t bytes, std::string_view where) {
  void* p = nullptr;
  if (bytes) check(cudaMalloc(&p, bytes), "cudaMalloc(" + std::to_string(bytes) + " bytes)", where);
  return DeviceMemory(p);
}

inline PinnedMemory pinned_alloc(std::size_t bytes, std::string_view where) {
  void* p = nullptr;
  if (bytes) check(cudaMallocHost(&p, bytes), "cudaMallocHost(" + std::to_string(bytes) + " bytes)", where);
  return PinnedMemory(p);
}

inline Stream make_stream(std::string_view where) {
  cudaStream_t s = nullptr;
  // Non-blocking: the context's work never serialises with the legacy
  // default stream other libraries in the process may use.
  CTNN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), where);
  return Stream(s);
}

}  // namespace ctnn::cuda

// Every CUDA runtime call the backend makes goes through check(): a failure
// becomes ctnn::cuda::Error naming the call, the CUDA error and the layer
// (or the phase) it happened in.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace ctnn::cuda {

class Error : public std::runtime_error {
 public:
  Error(const std::string& what, cudaError_t code) : std::runtime_error(what), code_(code) {}
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

inline std::string describe_error(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

// `where` names the layer ("layer 'layer1.0.conv1 + bn1 + relu'") or the
// phase ("uploading weights").
inline void check(cudaError_t e, std::string_view call, std::string_view where) {
  if (e == cudaSuccess) return;
  // A failed call also records its error as the thread's "last error", which
  // the next kernel launch check would then report as its own. Clear it: a
  // non-sticky failure (out of memory, bad argument) must not poison later
  // calls; a sticky one (a fault in a kernel) reappears on the next call anyway.
  (void)cudaGetLastError();
  throw Error("ctnn cuda: " + std::string(call) + " failed (" + describe_error(e) + ") " + std::string(where), e);
}

inline std::string in_layer(const std::string& name) { return "in layer '" + name + "'"; }

}  // namespace ctnn::cuda

// `where` is evaluated only on failure, so a message may be built freely
// without costing the success path an allocation.
#define CTNN_CUDA_CHECK(call, where)                                        \
  do {                                                                      \
    const cudaError_t ctnn_cuda_err_ = (call);                              \
    if (ctnn_cuda_err_ != cudaSuccess) ::ctnn::cuda::check(ctnn_cuda_err_, #call, (where)); \
  } while (0)

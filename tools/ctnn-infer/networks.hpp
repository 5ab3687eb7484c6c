// ctnn-infer's fixed menu of compiled networks.
//
// ctnn's networks are types, so a command-line tool can only offer the
// combinations it instantiated: every (architecture, head, backend) triple
// below is one instantiation of run_network<Net, Backend>. The triples are
// spread over several translation units (nets_*.cpp, one or two
// architectures each, plus nets_cuda.cu for the GPU) so that the build
// parallelises; each adds its entries to the registry at start-up through
// a registration function that main() calls.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <ctnn/core/tensor.hpp>

namespace ctnn_infer {

// A bad command line or input: reported on stderr, exit status 1.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class HeadKind { linear, sigmoid, dropout_softmax };

inline std::string_view head_name(HeadKind h) {
  switch (h) {
    case HeadKind::linear: return "linear";
    case HeadKind::sigmoid: return "sigmoid";
    case HeadKind::dropout_softmax: return "dropout-softmax";
  }
  return "?";
}

struct Request {
  std::string weights;                 // .safetensors or .pth, loaded strictly
  std::optional<std::size_t> classes;  // from --head linear:N / dropout-softmax:N; none: the checkpoint's
  bool verbose = false;
};

struct Result {
  ctnn::Tensor output;        // N x K x 1 x 1
  std::string backend;        // the executor's own description
  std::size_t loaded = 0;     // tensors loaded from the checkpoint
  double load_ms = 0, forward_ms = 0;
};

using RunFn = Result (*)(const Request&, ctnn::ConstTensorView input);

struct Entry {
  std::string arch;     // "resnet18", ...
  HeadKind head;
  std::string backend;  // "reference", "cpu", "cuda"
  RunFn run;
};

using Registry = std::vector<Entry>;

// Each defined in its own translation unit.
void register_reference(Registry&);
void register_cpu(Registry&);
// Defined in nets_cuda.cu, which is compiled (and called, under
// CTNN_INFER_WITH_CUDA) only in builds with the CUDA backend.
void register_cuda(Registry&);
bool cuda_device_available();  // a GPU with a working driver is present

}  // namespace ctnn_infer

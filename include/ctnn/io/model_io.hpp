// Model's file side: load from and save to .safetensors / .pth paths.
// Kept apart from core/model.hpp so that inference-only translation units
// (<ctnn/inference.hpp>) do not compile the file readers; <ctnn/ctnn.hpp>
// includes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "ctnn/core/model.hpp"
#include "ctnn/io/safetensors.hpp"
#include "ctnn/io/weights.hpp"

namespace ctnn {

namespace detail {
// Every tensor of the arena, plus a num_batches_tracked scalar per BatchNorm
// (PyTorch's strict load_state_dict expects one).
inline std::vector<io::TensorToWrite> tensors_to_write(const std::vector<TensorInfo>& tensors,
                                                       std::span<const float> arena) {
  static constexpr std::int64_t batches_tracked = 0;
  std::vector<io::TensorToWrite> out;
  for (const TensorInfo& t : tensors) {
    io::TensorToWrite w;
    w.name = t.name;
    w.shape.assign(t.shape.begin(), t.shape.end());
    w.bytes = std::as_bytes(arena.subspan(t.offset, t.size));
    out.push_back(std::move(w));
    if (t.role == TensorRole::bn_running_var) {
      io::TensorToWrite n;
      n.name = t.name.substr(0, t.name.size() - std::string_view("running_var").size()) + "num_batches_tracked";
      n.dtype = io::DType::i64;
      n.bytes = std::as_bytes(std::span<const std::int64_t>(&batches_tracked, 1));
      out.push_back(std::move(n));
    }
  }
  return out;
}
}  // namespace detail

// What Model::load(path), save(path) and save_to_memory() call (declared in core/model.hpp).
template <class>
struct io::ModelFiles {
  template <class M>
  static LoadReport load(M& model, const std::filesystem::path& path, Load policy) {
    return model.load(io::read_weights(path), policy);
  }
  template <class M>
  static void save(const M& model, const std::filesystem::path& path) {
    io::write_safetensors(path, ctnn::detail::tensors_to_write(model.tensors(), model.parameters()));
  }
  template <class M>
  static std::vector<std::byte> save_to_memory(const M& model) {
    return io::write_safetensors_to_memory(ctnn::detail::tensors_to_write(model.tensors(), model.parameters()));
  }
};

}  // namespace ctnn

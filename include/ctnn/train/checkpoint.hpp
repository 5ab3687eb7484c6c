// Training checkpoints: one safetensors file with everything a resumed run
// needs to continue exactly as the uninterrupted one would (tested bit for
// bit): the model's tensors under their torchvision names, the optimiser's
// state, its step count (hence the schedule's position), the dropout RNG, and
// the caller's progress (epoch, batch) in __metadata__, and the epochs done so
// far (train::fit's history: its curves, keep-best and early stopping resume
// with it).
//
//   train::save_checkpoint(trainer, "run.ckpt.safetensors", {.epoch = 3, .batch = 0});
//   const train::Progress at = train::load_checkpoint(trainer, "run.ckpt.safetensors");
//
// The model tensors load into PyTorch with the trainer's entries filtered
// out: {k: v for k, v in state.items() if not k.startswith(("optimizer.", "progress."))}.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "ctnn/io/model_io.hpp"
#include "ctnn/io/safetensors.hpp"
#include "ctnn/train/report.hpp"
#include "ctnn/train/trainer.hpp"

namespace ctnn::train {

struct Progress {
  std::uint64_t epoch = 0, batch = 0;  // where the resumed run continues
  std::vector<EpochRecord> history{};  // the epochs done so far
};

namespace detail {
// progress.history: one row of doubles per epoch record, in this order.
inline constexpr std::size_t history_columns = 8;
inline std::vector<double> history_rows(const std::vector<EpochRecord>& h) {
  std::vector<double> rows;
  for (const EpochRecord& r : h)
    rows.insert(rows.end(), {static_cast<double>(r.epoch), r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy,
                             r.learning_rate, r.seconds, r.images_per_second});
  return rows;
}
inline std::vector<EpochRecord> history_records(const io::TensorFile& f) {
  const io::TensorRecord* t = f.find("progress.history");
  if (!t) return {};  // a checkpoint written without a history
  if (t->dtype != io::DType::f64 || t->shape.size() != 2 || t->shape[1] != history_columns)
    throw io::LoadError(f.source + ": 'progress.history' has shape " + io::shape_string(t->shape) + " of " +
                        std::string(io::dtype_name(t->dtype)) + ", expected F64 [epochs, " +
                        std::to_string(history_columns) + "]");
  std::vector<EpochRecord> h(t->shape[0]);
  for (std::size_t i = 0; i < h.size(); ++i) {
    double v[history_columns];
    std::memcpy(v, t->bytes.data() + i * sizeof v, sizeof v);
    if (!(v[0] >= 1 && v[0] < 1e9)) throw io::LoadError(f.source + ": 'progress.history' row " + std::to_string(i) + " has no epoch number");
    h[i] = {static_cast<std::size_t>(v[0]), v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
  }
  return h;
}

inline std::string metadata_value(const io::TensorFile& f, const std::string& key) {
  for (const auto& [k, v] : f.metadata)
    if (k == key) return v;
  throw io::LoadError(f.source + ": not a ctnn training checkpoint (no __metadata__ entry '" + key + "')");
}
inline std::uint64_t metadata_number(const io::TensorFile& f, const std::string& key) {
  const std::string v = metadata_value(f, key);
  std::size_t used = 0;
  std::uint64_t n = 0;
  try {
    n = std::stoull(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || v.empty())
    throw io::LoadError(f.source + ": __metadata__ '" + key + "' is '" + v + "', expected a number");
  return n;
}
}  // namespace detail

template <class Loss, class Net, class Backend, class Opt>
void save_checkpoint(const Trainer<Loss, Net, Backend, Opt>& trainer, const std::filesystem::path& path,
                     const Progress& progress) {
  const auto& ex = trainer.executor();
  std::vector<io::TensorToWrite> tensors = ctnn::detail::tensors_to_write(trainer.model().tensors(), ex.parameters());
  const std::span<const float> state = ex.optimizer_state();
  const std::span<const long> batches = ex.batches_seen();
  std::vector<std::int64_t> seen(batches.begin(), batches.end());
  tensors.push_back({"optimizer.state", io::DType::f32, {state.size()}, std::as_bytes(state)});
  tensors.push_back({"optimizer.batchnorm_batches", io::DType::i64, {seen.size()},
                     std::as_bytes(std::span<const std::int64_t>(seen))});
  const std::vector<double> history = detail::history_rows(progress.history);
  if (!history.empty())
    tensors.push_back({"progress.history", io::DType::f64, {progress.history.size(), detail::history_columns},
                       std::as_bytes(std::span<const double>(history))});
  const auto r = trainer.resumable();
  io::write_safetensors(path, tensors,
                        {{"format", "pt"},
                         {"ctnn.checkpoint", "1"},
                         {"ctnn.scope", trainer.scope() == Scope::head_only ? "head_only" : "whole_network"},
                         {"ctnn.optimizer_steps", std::to_string(r.optimizer_steps)},
                         {"ctnn.rng_state", std::to_string(r.rng_state)},
                         {"ctnn.epoch", std::to_string(progress.epoch)},
                         {"ctnn.batch", std::to_string(progress.batch)}});
}

// Restores a trainer (and its model) from save_checkpoint's file; refuses a
// file of another network, scope or optimiser with a message naming it.
template <class Loss, class Net, class Backend, class Opt>
Progress load_checkpoint(Trainer<Loss, Net, Backend, Opt>& trainer, const std::filesystem::path& path) {
  const io::TensorFile f = io::read_safetensors(path);
  if (detail::metadata_value(f, "ctnn.checkpoint") != "1")
    throw io::LoadError(f.source + ": a ctnn checkpoint of an unknown version");
  const std::string scope = trainer.scope() == Scope::head_only ? "head_only" : "whole_network";
  if (detail::metadata_value(f, "ctnn.scope") != scope)
    throw io::LoadError(f.source + ": the checkpoint trained " + detail::metadata_value(f, "ctnn.scope") +
                        ", this trainer trains " + scope);
  // The parameters: every model tensor, under its name, with its shape.
  std::vector<float> params(trainer.executor().parameters().begin(), trainer.executor().parameters().end());
  for (const TensorInfo& t : trainer.model().tensors()) {
    const io::TensorRecord* rec = f.find(t.name);
    if (!rec) throw io::LoadError(f.source + ": the checkpoint has no tensor '" + t.name + "'");
    if (rec->shape.size() != t.shape.size() || !std::equal(t.shape.begin(), t.shape.end(), rec->shape.begin()))
      throw io::LoadError(f.source + ": tensor '" + t.name + "' has shape " + io::shape_string(rec->shape) +
                          ", the model expects " + ctnn::detail::shape_string(t.shape));
    io::convert_to_f32(*rec, std::span<float>(params).subspan(t.offset, t.size), f.source);
  }
  const io::TensorRecord* st = f.find("optimizer.state");
  const io::TensorRecord* bn = f.find("optimizer.batchnorm_batches");
  if (!st || !bn) throw io::LoadError(f.source + ": the checkpoint has no optimizer state");
  std::vector<float> state(st->elements());
  io::convert_to_f32(*st, state, f.source);
  const std::size_t per = static_cast<std::size_t>(trainer.optimizer().state_size());
  if (!state.empty() && state.size() != per * params.size())
    throw io::LoadError(f.source + ": optimizer state of " + std::to_string(state.size()) + " floats, this optimizer keeps " +
                        std::to_string(per * params.size()));
  if (bn->dtype != io::DType::i64 || bn->elements() != trainer.executor().batches_seen().size())
    throw io::LoadError(f.source + ": 'optimizer.batchnorm_batches' does not fit this network");
  std::vector<long> batches(bn->elements());
  for (std::size_t i = 0; i < batches.size(); ++i) {
    std::int64_t v;
    std::memcpy(&v, bn->bytes.data() + i * sizeof v, sizeof v);
    batches[i] = static_cast<long>(v);
  }
  trainer.resume({static_cast<long>(detail::metadata_number(f, "ctnn.optimizer_steps")),
                  detail::metadata_number(f, "ctnn.rng_state")},
                 params, state, batches);
  return {detail::metadata_number(f, "ctnn.epoch"), detail::metadata_number(f, "ctnn.batch"), detail::history_records(f)};
}

}  // namespace ctnn::train

// Model<Net, Backend>: owns a network's parameters (one aligned arena laid
// out by the type, BatchNorm running statistics beside the weights), lowers
// the network to a Program once, and hands both to a backend executor.
//
// A forward pass is const and writes into a caller-owned Context, so several
// threads can share one Model with one Context each. A Context reserves room
// for a largest batch and image size; within it a forward pass allocates
// nothing. Editing parameters (load, init, update) re-prepares the backend
// (BN folding, weight packing, device upload) once, outside any forward pass.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ctnn/core/init.hpp"
#include "ctnn/core/network.hpp"
#include "ctnn/core/predict.hpp"
#include "ctnn/core/summary.hpp"
#include "ctnn/io/tensor_file.hpp"

namespace ctnn {

namespace io {
template <class>
struct ModelFiles;  // Model's file readers and writers: io/model_io.hpp
}

enum class Load {
  strict,         // every tensor present with the right shape; unknown extra tensors are an error
  backbone_only,  // everything but the head ("fc.*"); the head keeps its initialisation
};

struct LoadReport {
  std::string source;
  std::vector<std::string> loaded;      // tensors copied into the model
  std::vector<std::string> kept;        // model tensors left as they were (the head, for backbone_only)
  std::vector<std::string> unexpected;  // tensors in the file the model does not have (reported, not loaded)
};

// Mutable access to a model's parameters inside Model::update.
class Parameters {
 public:
  Parameters(std::span<float> arena, const std::vector<TensorInfo>& tensors) : arena_(arena), tensors_(tensors) {}
  std::span<float> tensor(std::string_view name) const {
    for (const auto& t : tensors_)
      if (t.name == name) return arena_.subspan(t.offset, t.size);
    throw std::out_of_range("ctnn: the model has no tensor named '" + std::string(name) + "'");
  }
  const std::vector<TensorInfo>& infos() const { return tensors_; }
  std::span<float> arena() const { return arena_; }

 private:
  std::span<float> arena_;
  const std::vector<TensorInfo>& tensors_;
};

namespace detail {
// Fires `Refusal` (check::backend_cannot_run or backend_cannot_train: both
// CTNN_BACKEND_CANNOT_RUN) naming the backend and the first op kind of the
// network that the backend does not offer.
template <template <class, auto> class Refusal, class Backend, std::uint32_t Needed, std::uint32_t Offered>
constexpr bool backend_offers() {
  constexpr int missing = first_missing_op(Needed, Offered);
  if constexpr (missing >= 0)
    return Refusal<Backend, static_cast<OpKind>(missing)>::value;
  else
    return true;
}

template <class Net>
constexpr std::string_view head_prefix() {
  if constexpr (requires { Net::head_name; })
    return Net::head_name;
  else
    return {};
}

inline bool under(std::string_view name, std::string_view prefix) {
  return !prefix.empty() && name.size() > prefix.size() && name.starts_with(prefix) && name[prefix.size()] == '.';
}

inline std::string shape_string(const std::vector<std::size_t>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}
}  // namespace detail

template <class Net, class Backend>
class Model {
  static_assert(NetworkType<Net>, "CTNN_NOT_A_NETWORK: Model<Net> takes a network type: a ResNet alias or Network<Image<...>, Layers...>");
  static_assert(detail::backend_offers<check::backend_cannot_run, Backend, Net::ops, Backend::inference_ops>());

 public:
  using network = Net;
  using backend = Backend;
  using Executor = typename Backend::Executor;
  using Context = typename Executor::Context;
  static constexpr bool dynamic_classes = Net::has_dynamic_classes();

  // Initialised with `scheme` (torchvision's defaults unless told otherwise).
  explicit Model(Init scheme = Init::torchvision, std::uint64_t seed = 0)
    requires(!dynamic_classes)
  {
    build(0);
    init(scheme, seed);
  }
  // A Linear<In, dynamic> head gets its class count here (or from a checkpoint in load()).
  explicit Model(std::size_t classes, Init scheme = Init::torchvision, std::uint64_t seed = 0)
    requires dynamic_classes
  {
    if (classes == 0) throw std::invalid_argument("ctnn: a head needs at least one class");
    build(static_cast<int>(classes));
    init(scheme, seed);
  }

  // Movable (executors own what they need and view the arena, which moves
  // with its buffer); not copyable: arenas are large.
  Model(Model&&) noexcept = default;
  Model& operator=(Model&&) noexcept = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // ---- parameters ---------------------------------------------------------
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  std::span<const float> parameters() const { return arena_.span(); }
  std::span<const float> tensor(std::string_view name) const { return Parameters(arena_view(), tensors_).tensor(name); }
  std::size_t parameter_count() const {
    std::size_t n = 0;
    for (const auto& t : tensors_) n += t.trainable() ? t.size : 0;
    return n;
  }
  std::size_t classes() const { return static_cast<std::size_t>(program_.ops.empty() ? 0 : output_channels()); }

  // Re-initialises every tensor, or only those under a module path ("fc", "layer4.1.bn2").
  void init(Init scheme, std::uint64_t seed = 0, std::string_view module = {}) {
    initialize(arena_.span(), tensors_, scheme, seed, module);
    prepare();
  }

  // Edits parameters in place, then re-prepares the backend once.
  template <class F>
  void update(F&& edit) {
    Parameters p(arena_.span(), tensors_);
    std::forward<F>(edit)(p);
    prepare();
  }

  // Copies the tensors that ops [first_op, end_op) read from `values` (an
  // arena of this model's layout, e.g. a training executor's) and
  // re-prepares the backend for those ops only.
  void assign(std::span<const float> values, std::size_t first_op, std::size_t end_op) {
    if (values.size() != arena_.size())
      throw std::invalid_argument("ctnn: Model::assign got " + std::to_string(values.size()) +
                                  " floats for an arena of " + std::to_string(arena_.size()));
    end_op = std::min(end_op, program_.ops.size());
    for (std::size_t i = first_op; i < end_op; ++i)
      for_each_tensor(program_.ops[i], [&](std::size_t offset, std::size_t count) {
        std::copy_n(values.begin() + static_cast<std::ptrdiff_t>(offset), count, arena_.data() + offset);
      });
    if constexpr (requires { executor_.refresh(arena_.span(), first_op, end_op); })
      executor_.refresh(arena_.span(), first_op, end_op);
    else
      prepare();
  }

  // ---- weights ------------------------------------------------------------
  LoadReport load(const io::TensorFile& file, Load policy = Load::strict);
  // Files: the readers and writers are in <ctnn/io/model_io.hpp> (included by
  // <ctnn/ctnn.hpp>), so that inference-only translation units
  // (<ctnn/inference.hpp>) do not compile them; without it these fail to
  // compile with CTNN_NEEDS_MODEL_IO.
  // A .safetensors or .pth file (torchvision state_dict names).
  LoadReport load(const std::filesystem::path& path, Load policy = Load::strict) {
    return files().load(*this, path, policy);
  }
  // safetensors with torchvision names, plus an I64 num_batches_tracked per
  // BatchNorm so that PyTorch's strict load_state_dict accepts the file.
  void save(const std::filesystem::path& path) const { files().save(*this, path); }
  std::vector<std::byte> save_to_memory() const { return files().save_to_memory(*this); }

  // ---- inference ----------------------------------------------------------
  Context make_context(Capacity capacity) const { return executor_.make_context(capacity); }

  ConstTensorView forward(ConstTensorView input, Context& ctx) const { return executor_.run(input, ctx, Stage::output); }
  // Pooled backbone features (N x F x 1 x 1): what head fine-tuning caches.
  ConstTensorView features(ConstTensorView input, Context& ctx) const {
    return executor_.run(input, ctx, Stage::features);
  }
  // Typed by the head: class + probability (Softmax), probability + decision
  // (1-wide Sigmoid), or logits (anything else).
  auto predict(ConstTensorView input, Context& ctx) const { return detail::interpret_output<Net>(forward(input, ctx)); }

  // Convenience overloads with a context owned by the model (not for concurrent use).
  ConstTensorView forward(ConstTensorView input) { return forward(input, own_context(input.shape)); }
  ConstTensorView features(ConstTensorView input) { return features(input, own_context(input.shape)); }
  auto predict(ConstTensorView input) { return predict(input, own_context(input.shape)); }

  // ---- introspection ------------------------------------------------------
  const Program& program() const { return program_; }
  std::string backend_description() const { return executor_.describe(); }
  std::string summary(int height = default_size(Net::input::shape.h), int width = default_size(Net::input::shape.w)) const {
    return describe<Net>(height, width, dynamic_extent_) + "backend: " + executor_.describe() + "\n";
  }

 private:
  static constexpr int default_size(int d) { return d == dynamic ? 224 : d; }

  // Stands in after the error below, so that it is the only one.
  struct NoModelFiles {
    template <class... A>
    static LoadReport load(A&&...) { return {}; }
    template <class... A>
    static void save(A&&...) {}
    template <class... A>
    static std::vector<std::byte> save_to_memory(A&&...) { return {}; }
  };
  template <class Tag = Net>
  static auto files() {
    if constexpr (requires { sizeof(io::ModelFiles<Tag>); }) {
      return io::ModelFiles<Tag>{};
    } else {
      static_assert(sizeof(Tag) == 0,
                    "CTNN_NEEDS_MODEL_IO: Model::load(path), save(path) and save_to_memory() read and write files: "
                    "include <ctnn/io/model_io.hpp> (or <ctnn/ctnn.hpp>) in this translation unit");
      return NoModelFiles{};
    }
  }

  std::span<float> arena_view() const { return {const_cast<float*>(arena_.data()), arena_.size()}; }
  int output_channels() const {
    for (auto it = program_.ops.rbegin(); it != program_.ops.rend(); ++it)
      if (it->kind == OpKind::linear || it->kind == OpKind::conv) return it->out_channels;
    return program_.input_channels;
  }

  // The arena layout (with `extent` classes for a dynamic head) and the lowered network.
  struct Layout {
    int extent = 0;
    std::vector<TensorInfo> tensors;
    std::size_t floats = 0;
    Program program;
  };
  static Layout lay_out(int extent) {
    Layout l;
    l.extent = extent;
    detail::ArenaLayout layout;
    layout.dynamic_extent = extent;
    Net::visit(layout, Net::input::shape);
    l.tensors = std::move(layout.tensors);
    l.floats = layout.cursor;
    l.program.input_channels = Net::input::shape.c;
    Lowering lowering(l.program, l.tensors);
    Net::lower(lowering);
    l.program.output = lowering.value();
    if (l.program.features_end == 0) {  // no backbone/head split: features are the output
      l.program.features = l.program.output;
      l.program.features_end = l.program.ops.size();
    }
    return l;
  }
  void build(int extent) { adopt(lay_out(extent), AlignedBuffer()); }
  void adopt(Layout&& l, AlignedBuffer&& arena) {
    dynamic_extent_ = l.extent;
    tensors_ = std::move(l.tensors);
    program_ = std::move(l.program);
    arena_ = arena.size() == l.floats ? std::move(arena) : AlignedBuffer(l.floats);
  }

  void prepare() {
    executor_ = Executor(program_, arena_.span());
    own_context_.reset();
  }

  Context& own_context(const Extents& e) {
    if (!own_context_ || own_capacity_.batch < e.n || own_capacity_.height < e.h || own_capacity_.width < e.w) {
      own_capacity_ = {std::max(e.n, own_capacity_.batch), std::max(e.h, own_capacity_.height),
                       std::max(e.w, own_capacity_.width)};
      own_context_.emplace(make_context(own_capacity_));
    }
    return *own_context_;
  }

  int dynamic_extent_ = 0;
  std::vector<TensorInfo> tensors_;
  AlignedBuffer arena_;
  Program program_;
  Executor executor_;
  std::optional<Context> own_context_;
  Capacity own_capacity_{0, 0, 0};
};

// ---- loading ----------------------------------------------------------------

// A network whose alias check failed has already reported its one error;
// a Model of it stays silent instead of adding a cascade.
template <class Backend>
class Model<InvalidNetwork, Backend> {};

template <class Net, class Backend>
LoadReport Model<Net, Backend>::load(const io::TensorFile& file, Load policy) {
  const std::string_view head = detail::head_prefix<Net>();
  if (policy == Load::backbone_only && head.empty())
    throw std::invalid_argument("ctnn: Load::backbone_only needs a network with a head (e.g. a ResNet)");
  const auto is_head = [&](std::string_view name) { return detail::under(name, head); };
  const auto ignorable = [](std::string_view name) { return name.ends_with("num_batches_tracked"); };

  // A run-time-width head takes its class count from the checkpoint: the
  // load is validated against a candidate layout of that width, which the
  // model adopts only once everything has been checked and converted.
  std::optional<Layout> candidate;
  if constexpr (dynamic_classes) {
    if (policy == Load::strict) {
      for (const TensorInfo& t : tensors_) {
        if (t.role != TensorRole::linear_weight || !is_head(t.name)) continue;
        const io::TensorRecord* r = file.find(t.name);
        if (r && r->shape.size() == 2 && r->shape[0] > 0 && r->shape[0] != t.shape[0] && r->shape[0] <= (1u << 24))
          candidate = lay_out(static_cast<int>(r->shape[0]));
        break;
      }
    }
  }
  const std::vector<TensorInfo>& tensors = candidate ? candidate->tensors : tensors_;

  LoadReport report;
  report.source = file.source;
  // Validate everything before copying anything: a failed load leaves the model unchanged.
  std::vector<std::pair<const TensorInfo*, const io::TensorRecord*>> plan;
  std::vector<std::string> missing;
  for (const TensorInfo& t : tensors) {
    if (policy == Load::backbone_only && is_head(t.name)) {
      report.kept.push_back(t.name);
      continue;
    }
    const io::TensorRecord* r = file.find(t.name);
    if (!r) {
      missing.push_back(t.name + " " + detail::shape_string(t.shape));
      continue;
    }
    const bool same_shape = r->shape.size() == t.shape.size() &&
                            std::equal(t.shape.begin(), t.shape.end(), r->shape.begin(),
                                       [](std::size_t a, std::uint64_t b) { return a == b; });
    if (!same_shape) {
      std::string msg = "ctnn: " + file.source + ": tensor '" + t.name + "' has shape " +
                        io::shape_string(r->shape) + ", the model expects " + detail::shape_string(t.shape);
      if (is_head(t.name))
        msg += "; the checkpoint's head differs from this model's head. To keep the checkpoint's backbone and "
               "this model's (freshly initialised) head, load with ctnn::Load::backbone_only";
      throw io::LoadError(msg);
    }
    plan.emplace_back(&t, r);
  }
  if (!missing.empty()) {
    std::string msg = "ctnn: " + file.source + ": " + std::to_string(missing.size()) + " tensor(s) missing:";
    for (std::size_t i = 0; i < missing.size() && i < 8; ++i) msg += (i ? ", " : " ") + missing[i];
    if (missing.size() > 8) msg += ", ...";
    // Two layouts PyTorch training scripts commonly write: name the rename that loads them.
    const auto file_has = [&](std::string_view module) {
      return std::any_of(file.tensors.begin(), file.tensors.end(), [&](const io::TensorRecord& r) { return detail::under(r.name, module); });
    };
    if (!file.tensors.empty() && std::all_of(file.tensors.begin(), file.tensors.end(),
                                             [](const io::TensorRecord& r) { return r.name.starts_with("module."); }))
      msg += " (every tensor of the file is under 'module.', as nn.DataParallel saves: file.rename(\"module\", \"\") first)";
    else if (!head.empty() && !file_has(head) && file_has("linear"))
      msg += " (the file's head is called 'linear', as CIFAR ResNet scripts name it: file.rename(\"linear\", \"" +
             std::string(head) + "\") first)";
    throw io::LoadError(msg);
  }
  for (const io::TensorRecord& r : file.tensors) {
    if (ignorable(r.name)) continue;
    const bool known = std::any_of(tensors.begin(), tensors.end(), [&](const TensorInfo& t) { return t.name == r.name; });
    if (known) continue;
    if (policy == Load::backbone_only && is_head(r.name)) continue;  // the checkpoint's own head
    report.unexpected.push_back(r.name);
  }
  if (policy == Load::strict && !report.unexpected.empty()) {
    std::string msg = "ctnn: " + file.source + ": " + std::to_string(report.unexpected.size()) +
                      " tensor(s) the model does not have:";
    for (std::size_t i = 0; i < report.unexpected.size() && i < 8; ++i)
      msg += (i ? ", " : " ") + report.unexpected[i];
    throw io::LoadError(msg + " (is this checkpoint for another architecture?)");
  }
  // Convert into a scratch copy first so that a bad dtype cannot leave a half-loaded model.
  AlignedBuffer staged(candidate ? candidate->floats : arena_.size());
  if (candidate)
    initialize(staged.span(), candidate->tensors, Init::torchvision, 0);
  else
    std::copy(arena_.data(), arena_.data() + arena_.size(), staged.data());
  for (const auto& [t, r] : plan) {
    io::convert_to_f32(*r, staged.span().subspan(t->offset, t->size), file.source);
    report.loaded.push_back(t->name);
  }
  if (candidate)
    adopt(std::move(*candidate), std::move(staged));
  else
    arena_ = std::move(staged);
  prepare();
  return report;
}

}  // namespace ctnn

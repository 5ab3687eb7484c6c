// The layer protocol, and the two walks every network supports: a
// compile-time visit (parameters, shapes, MACs, names) and a run-time
// lowering into a Program (ir/program.hpp).
//
// A layer is a pure type. It provides:
//   static constexpr bool is_leaf;
//   static constexpr int in_channels;              // channels it requires, or `dynamic` (any)
//   static constexpr Shape out(Shape in);          // its shape rule
//   template <Shape In> static constexpr bool check();   // the contract rules, given its input
//   template <class V> static constexpr void visit(V&, Shape in);  // tensors and named children
//   static constexpr std::size_t macs(Shape in);   // multiply-accumulates of a leaf
//   static void lower(Lowering&);                  // emits its ops
//   static constexpr std::uint32_t ops;            // mask of the OpKinds it lowers to
//   static std::string label();                    // PyTorch-style description
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ctnn/core/checks.hpp"
#include "ctnn/core/shape.hpp"
#include "ctnn/core/tensor.hpp"
#include "ctnn/ir/op_traits.hpp"
#include "ctnn/ir/program.hpp"

namespace ctnn {

enum class TensorRole : std::uint8_t {
  conv_weight, conv_bias, linear_weight, linear_bias,
  bn_weight, bn_bias, bn_running_mean, bn_running_var,
};

// Running statistics are state, not learnable parameters (PyTorch's buffers).
constexpr bool is_trainable(TensorRole r) {
  return r != TensorRole::bn_running_mean && r != TensorRole::bn_running_var;
}

struct TensorSpec {
  std::string_view name;        // last path component: "weight", "running_mean", ...
  std::array<int, 4> dims{};    // may hold `dynamic` (the class count of a Linear<In, dynamic>)
  int rank = 0;
  TensorRole role{};
  int fan_in = 0, fan_out = 0;  // for the initialisers

  constexpr std::size_t elements(int dynamic_extent = 0) const {
    std::size_t n = 1;
    for (int i = 0; i < rank; ++i) n *= static_cast<std::size_t>(dims[i] == dynamic ? dynamic_extent : dims[i]);
    return n;
  }
  constexpr bool has_dynamic_extent() const {
    for (int i = 0; i < rank; ++i)
      if (dims[i] == dynamic) return true;
    return false;
  }
};

// What a layer's output means, read by predict() and by the loss rule. A
// layer that sets it declares `static constexpr Output output` (Linear and
// Conv: logits, Sigmoid and Softmax: probabilities); the others pass on what
// they receive.
enum class Output : std::uint8_t { logits, sigmoid_probabilities, softmax_probabilities };

template <class L>
struct output_rule {
  static constexpr Output apply(Output in) {
    if constexpr (requires { L::output; })
      return L::output;
    else
      return in;
  }
};

template <class L>
concept Layer = requires(Shape s) {
  { L::is_leaf } -> std::convertible_to<bool>;
  { L::in_channels } -> std::convertible_to<int>;
  { L::out(s) } -> std::same_as<Shape>;
  { L::ops } -> std::convertible_to<std::uint32_t>;
  { L::label() } -> std::convertible_to<std::string>;
};

// Walks a layer tree keeping the dotted path (torchvision names). Derived
// visitors hide on_leaf / on_tensor to collect what they need.
template <class Self>
struct Visitor {
  std::array<std::string_view, 12> path{};
  int depth = 0;

  template <class L>
  constexpr void child(std::string_view name, Shape in) {
    path[static_cast<std::size_t>(depth++)] = name;
    auto& self = static_cast<Self&>(*this);
    if constexpr (L::is_leaf) self.template on_leaf<L>(in);
    L::visit(self, in);
    --depth;
  }
  constexpr void tensor(const TensorSpec& spec) { static_cast<Self&>(*this).on_tensor(spec); }

  template <class L>
  constexpr void on_leaf(Shape) {}
  constexpr void on_tensor(const TensorSpec&) {}

  std::string joined() const {
    std::string s;
    for (int i = 0; i < depth; ++i) {
      if (i) s += '.';
      s += path[static_cast<std::size_t>(i)];
    }
    return s;
  }
  std::string joined(std::string_view last) const {
    std::string s = joined();
    if (!s.empty()) s += '.';
    s += last;
    return s;
  }
};

namespace detail {
// Parameter and MAC totals; usable in constant expressions.
struct Totals : Visitor<Totals> {
  std::size_t trainable = 0, buffers = 0, arena = 0, macs = 0;
  bool dynamic_extent = false;

  constexpr void on_tensor(const TensorSpec& s) {
    dynamic_extent = dynamic_extent || s.has_dynamic_extent();
    const std::size_t n = s.elements();
    (is_trainable(s.role) ? trainable : buffers) += n;
    arena += aligned_floats(n);
  }
  template <class L>
  constexpr void on_leaf(Shape in) {
    if (in.has_fixed_spatial()) macs += L::macs(in);
  }
};

template <class L>
constexpr Totals totals(Shape in) {
  Totals t;
  L::visit(t, in);
  return t;
}

constexpr std::string_view index_name(std::size_t i) {
  constexpr std::string_view names[] = {"0",  "1",  "2",  "3",  "4",  "5",  "6",  "7",  "8",  "9",  "10", "11",
                                        "12", "13", "14", "15", "16", "17", "18", "19", "20", "21", "22", "23",
                                        "24", "25", "26", "27", "28", "29", "30", "31", "32", "33", "34", "35",
                                        "36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46", "47",
                                        "48", "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "59"};
  return names[i];
}
}  // namespace detail

// One named tensor of a model's parameter arena.
struct TensorInfo {
  std::string name;                 // torchvision state_dict key, e.g. "layer1.0.bn1.running_var"
  std::vector<std::size_t> shape;
  std::size_t offset = 0;           // in floats, 64-byte aligned
  std::size_t size = 0;             // elements
  TensorRole role{};
  int fan_in = 0, fan_out = 0;
  bool trainable() const { return is_trainable(role); }
};

namespace detail {
// Lays the arena out: each tensor at the next 64-byte boundary, in visit order.
struct ArenaLayout : Visitor<ArenaLayout> {
  std::vector<TensorInfo> tensors;
  std::size_t cursor = 0;
  int dynamic_extent = 0;

  void on_tensor(const TensorSpec& s) {
    TensorInfo t;
    t.name = joined(s.name);
    for (int i = 0; i < s.rank; ++i)
      t.shape.push_back(static_cast<std::size_t>(s.dims[static_cast<std::size_t>(i)] == dynamic
                                                     ? dynamic_extent
                                                     : s.dims[static_cast<std::size_t>(i)]));
    t.size = s.elements(dynamic_extent);
    t.offset = cursor;
    t.role = s.role;
    t.fan_in = s.fan_in;
    t.fan_out = s.fan_out == dynamic ? dynamic_extent : s.fan_out;
    cursor += aligned_floats(t.size);
    tensors.push_back(std::move(t));
  }
};
}  // namespace detail

// Run-time lowering of a typed network into a Program. Layers call emit()
// for their op and param() for their tensors' arena offsets (looked up by
// torchvision name, so the lowering can never disagree with the arena).
class Lowering {
 public:
  Lowering(Program& program, const std::vector<TensorInfo>& tensors) : program_(program), tensors_(tensors) {}

  int value() const { return current_; }
  void set_value(int v) { current_ = v; }

  template <class L>
  void child(std::string_view name) {
    path_.emplace_back(name);
    L::lower(*this);
    path_.pop_back();
  }

  // Appends an op reading the current value. Element-wise ops run in place
  // (except on the network input); others produce a new value, which becomes current.
  Op& emit(OpKind kind, int in_channels, int out_channels) {
    Op op;
    op.kind = kind;
    op.input = current_;
    const bool in_place = op_traits(kind).in_place;
    // The network input belongs to the caller: an element-wise op on it writes a new value.
    op.output = in_place && current_ != 0 ? current_ : program_.new_value();
    op.in_channels = in_channels;
    op.out_channels = out_channels;
    op.name = path();
    current_ = op.output;
    program_.ops.push_back(std::move(op));
    return program_.ops.back();
  }

  std::size_t param(std::string_view tensor) const {
    const std::string full = path() + "." + std::string(tensor);
    for (const auto& t : tensors_)
      if (t.name == full) return t.offset;
    throw std::logic_error("ctnn: lowering found no tensor named " + full);
  }
  // Out-features of a tensor's first dimension (the run-time width of a Linear<In, dynamic>).
  std::size_t extent(std::string_view tensor, std::size_t dim) const {
    const std::string full = path() + "." + std::string(tensor);
    for (const auto& t : tensors_)
      if (t.name == full) return t.shape.at(dim);
    throw std::logic_error("ctnn: lowering found no tensor named " + full);
  }

  Program& program() { return program_; }

  std::string path() const {
    std::string s;
    for (const auto& p : path_) {
      if (!s.empty()) s += '.';
      s += p;
    }
    return s;
  }

 private:
  Program& program_;
  const std::vector<TensorInfo>& tensors_;
  std::vector<std::string> path_;
  int current_ = 0;
};

// Defaults shared by the parameter-free, shape-preserving leaves.
template <OpKind Kind>
struct LeafLayer {
  static constexpr bool is_leaf = true;
  static constexpr int in_channels = dynamic;
  static constexpr std::uint32_t ops = op_bit(Kind);
  static constexpr Shape out(Shape in) { return in; }
  template <Shape In>
  static constexpr bool check() { return true; }
  template <class V>
  static constexpr void visit(V&, Shape) {}
  static constexpr std::size_t macs(Shape) { return 0; }
  static void lower(Lowering& lw) { lw.emit(Kind, dynamic, dynamic); }
};

// The channel count a layer (or the first layer of a chain that fixes one) requires.
template <class L>
inline constexpr int required_in_channels = L::in_channels;

}  // namespace ctnn

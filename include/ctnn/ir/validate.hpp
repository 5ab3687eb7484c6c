// Validation of a Program, shared by every backend: value ids in range and
// defined before they are read, each value computed once (element-wise ops
// aside, which rewrite their input in place), channel counts that agree,
// sane geometry, and every parameter inside the arena. A Program lowered
// from a typed network always passes; these checks guard hand-built and
// deserialised programs, with messages that name the layer.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ctnn/ir/op_traits.hpp"
#include "ctnn/ir/program.hpp"

namespace ctnn {

namespace detail {

// Builds and throws a validation message: `text` with each "{}" replaced by
// the next number, prefixed by the layer when there is one. Kept out of
// line and cold because validate runs for every model an application
// builds and compiles into every translation unit that makes one: the
// checking loop stays a chain of comparisons, and the string work exists
// once, on the path that throws.
[[noreturn, gnu::cold, gnu::noinline]] inline void fail_validation(const std::string& who, const Op* op,
                                                                   std::string_view text,
                                                                   std::initializer_list<long long> numbers = {}) {
  std::string message = who + ": ";
  if (op) message += "layer '" + op->name + "' (" + std::string(op_traits(op->kind).name) + ")";
  const long long* next = numbers.begin();
  for (std::size_t at = 0; at < text.size(); ++at) {
    if (text[at] == '{' && at + 1 < text.size() && text[at + 1] == '}' && next != numbers.end()) {
      message += std::to_string(*next++);
      ++at;
    } else {
      message += text[at];
    }
  }
  throw std::invalid_argument(message);
}

}  // namespace detail

// Returns the channel count of every value. `who` prefixes the messages
// ("ctnn cpu backend"); `arena_floats` bounds the parameter offsets.
inline std::vector<int> validate(const Program& p, std::size_t arena_floats, const std::string& who) {
  using detail::fail_validation;
  if (p.values < 1 || p.input_channels < 1)
    fail_validation(who, nullptr, "malformed program (no values, or input_channels < 1)");
  if (p.features < 0 || p.features >= p.values || p.output < 0 || p.output >= p.values ||
      p.features_end > p.ops.size())
    fail_validation(who, nullptr, "malformed program (value ids or features_end out of range)");
  const auto nvalues = static_cast<std::size_t>(p.values);
  std::vector<int> channels(nvalues, 0);
  std::vector<char> defined(nvalues, 0);
  channels[0] = p.input_channels;
  defined[0] = 1;
  const auto arena = static_cast<long long>(arena_floats);

  for (const Op& op : p.ops) {
    const OpTraits t = op_traits(op.kind);
    const auto in_range = [&](int v) { return v >= 0 && static_cast<std::size_t>(v) < nvalues; };
    if (!in_range(op.input) || !defined[static_cast<std::size_t>(op.input)])
      fail_validation(who, &op, " reads input value {}, which no earlier op produces", {op.input});
    if (t.reads_residual && (!in_range(op.residual) || !defined[static_cast<std::size_t>(op.residual)]))
      fail_validation(who, &op, " reads residual value {}, which no earlier op produces", {op.residual});
    if (!in_range(op.output))
      fail_validation(who, &op, " writes value {} outside the program's {} values", {op.output, p.values});
    const bool rewrites = t.in_place && op.output == op.input;
    if (op.output == 0)
      fail_validation(who, &op,
                      " writes the network input (value 0), which belongs to the caller; an element-wise op on "
                      "the input writes a new value");
    if (!rewrites && defined[static_cast<std::size_t>(op.output)])
      fail_validation(who, &op, " writes value {}, which already exists", {op.output});

    const int cin = channels[static_cast<std::size_t>(op.input)];
    int cout = cin;
    const auto params = [&](std::size_t offset, std::size_t count, bool required, std::string_view missing,
                            std::string_view outside) {
      if (offset == no_param) {
        if (required) fail_validation(who, &op, missing);
        return;
      }
      if (offset > arena_floats || count > arena_floats - offset)
        fail_validation(who, &op, outside,
                        {static_cast<long long>(count), static_cast<long long>(offset), arena});
    };
    switch (op.kind) {
      case OpKind::conv:
      case OpKind::grouped_conv:
      case OpKind::linear:
        if (op.in_channels != cin)
          fail_validation(who, &op, " expects {} input channels, its input has {}", {op.in_channels, cin});
        if (op.out_channels < 1 || op.kernel < 1 || op.stride < 1 || op.padding < 0 || op.groups < 1 ||
            op.in_channels % op.groups != 0 || op.out_channels % op.groups != 0 ||
            (op.kind == OpKind::grouped_conv) != (op.groups > 1))
          fail_validation(who, &op,
                          " has an invalid geometry (out channels {}, kernel {}, stride {}, padding {}, groups {})",
                          {op.out_channels, op.kernel, op.stride, op.padding, op.groups});
        params(op.weight, weight_floats(op), true, " has no weight",
               ": weight ({} floats at offset {}) is outside the parameter arena of {} floats");
        params(op.bias, bias_floats(op), false, "",
               ": bias ({} floats at offset {}) is outside the parameter arena of {} floats");
        cout = op.out_channels;
        break;
      case OpKind::pad_shortcut:
        if (op.in_channels != cin || op.out_channels < cin || (op.out_channels - cin) % 2 != 0 || op.stride < 1 ||
            op.kernel != 1 || op.padding != 0)
          fail_validation(who, &op,
                          " pads {} channels to {} with stride {}: needs an even difference, kernel 1 and padding 0",
                          {cin, op.out_channels, op.stride});
        cout = op.out_channels;
        break;
      case OpKind::max_pool:
        if (op.kernel < 1 || op.stride < 1 || op.padding < 0 || 2 * op.padding > op.kernel)
          fail_validation(who, &op, " has an invalid pooling geometry (kernel {}, stride {}, padding {})",
                          {op.kernel, op.stride, op.padding});
        break;
      case OpKind::batch_norm:
        for (std::size_t off : {op.weight, op.bias, op.running_mean, op.running_var})
          params(off, static_cast<std::size_t>(cin), false, "",
                 ": batch-norm parameter ({} floats at offset {}) is outside the parameter arena of {} floats");
        break;
      case OpKind::add:
        if (channels[static_cast<std::size_t>(op.residual)] != cin)
          fail_validation(who, &op, ": residual has {} channels, input has {}",
                          {channels[static_cast<std::size_t>(op.residual)], cin});
        break;
      default: break;
    }
    channels[static_cast<std::size_t>(op.output)] = cout;
    defined[static_cast<std::size_t>(op.output)] = 1;
  }
  for (int v : {p.features, p.output})
    if (!defined[static_cast<std::size_t>(v)])
      fail_validation(who, nullptr, "malformed program (result value {} is never computed)", {v});
  return channels;
}

}  // namespace ctnn

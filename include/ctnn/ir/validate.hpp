// Validation of a Program, shared by every backend: value ids in range and
// defined before they are read, each value computed once (element-wise ops
// aside, which rewrite their input in place), channel counts that agree,
// sane geometry, and every parameter inside the arena. A Program lowered
// from a typed network always passes; these checks guard hand-built and
// deserialised programs, with messages that name the layer.
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctnn/ir/op_traits.hpp"
#include "ctnn/ir/program.hpp"

namespace ctnn {

// Returns the channel count of every value. `who` prefixes the messages
// ("ctnn cpu backend"); `arena_floats` bounds the parameter offsets.
inline std::vector<int> validate(const Program& p, std::size_t arena_floats, const std::string& who) {
  const auto fail = [&](const std::string& what) -> void { throw std::invalid_argument(who + ": " + what); };
  if (p.values < 1 || p.input_channels < 1) fail("malformed program (no values, or input_channels < 1)");
  if (p.features < 0 || p.features >= p.values || p.output < 0 || p.output >= p.values ||
      p.features_end > p.ops.size())
    fail("malformed program (value ids or features_end out of range)");
  const auto nvalues = static_cast<std::size_t>(p.values);
  std::vector<int> channels(nvalues, 0);
  std::vector<bool> defined(nvalues, false);
  channels[0] = p.input_channels;
  defined[0] = true;

  for (const Op& op : p.ops) {
    const OpTraits t = op_traits(op.kind);
    const std::string layer = "layer '" + op.name + "' (" + std::string(t.name) + ")";
    const auto in_range = [&](int v) { return v >= 0 && static_cast<std::size_t>(v) < nvalues; };
    const auto read = [&](int v, const char* role) {
      if (!in_range(v) || !defined[static_cast<std::size_t>(v)])
        fail(layer + " reads " + role + " value " + std::to_string(v) + ", which no earlier op produces");
    };
    read(op.input, "input");
    if (t.reads_residual) read(op.residual, "residual");
    if (!in_range(op.output)) fail(layer + " writes value " + std::to_string(op.output) + " outside the program's " +
                                   std::to_string(p.values) + " values");
    const bool rewrites = t.in_place && op.output == op.input;
    if (op.output == 0)
      fail(layer + " writes the network input (value 0), which belongs to the caller; an element-wise op on the "
                   "input writes a new value");
    if (!rewrites && defined[static_cast<std::size_t>(op.output)])
      fail(layer + " writes value " + std::to_string(op.output) + ", which already exists");

    const int cin = channels[static_cast<std::size_t>(op.input)];
    int cout = cin;
    const auto params = [&](std::size_t offset, std::size_t count, const char* what, bool required) {
      if (offset == no_param) {
        if (required) fail(layer + " has no " + what);
        return;
      }
      if (offset > arena_floats || count > arena_floats - offset)
        fail(layer + ": " + what + " (" + std::to_string(count) + " floats at offset " + std::to_string(offset) +
             ") is outside the parameter arena of " + std::to_string(arena_floats) + " floats");
    };
    switch (op.kind) {
      case OpKind::conv:
      case OpKind::grouped_conv:
      case OpKind::linear:
        if (op.in_channels != cin)
          fail(layer + " expects " + std::to_string(op.in_channels) + " input channels, its input has " +
               std::to_string(cin));
        if (op.out_channels < 1 || op.kernel < 1 || op.stride < 1 || op.padding < 0 || op.groups < 1 ||
            op.in_channels % op.groups != 0 || op.out_channels % op.groups != 0 ||
            (op.kind == OpKind::grouped_conv) != (op.groups > 1))
          fail(layer + " has an invalid geometry (out channels " + std::to_string(op.out_channels) + ", kernel " +
               std::to_string(op.kernel) + ", stride " + std::to_string(op.stride) + ", padding " +
               std::to_string(op.padding) + ", groups " + std::to_string(op.groups) + ")");
        params(op.weight, weight_floats(op), "weight", true);
        params(op.bias, bias_floats(op), "bias", false);
        cout = op.out_channels;
        break;
      case OpKind::pad_shortcut:
        if (op.in_channels != cin || op.out_channels < cin || (op.out_channels - cin) % 2 != 0 || op.stride < 1 ||
            op.kernel != 1 || op.padding != 0)
          fail(layer + " pads " + std::to_string(cin) + " channels to " + std::to_string(op.out_channels) +
               " with stride " + std::to_string(op.stride) + ": needs an even difference, kernel 1 and padding 0");
        cout = op.out_channels;
        break;
      case OpKind::max_pool:
        if (op.kernel < 1 || op.stride < 1 || op.padding < 0 || 2 * op.padding > op.kernel)
          fail(layer + " has an invalid pooling geometry (kernel " + std::to_string(op.kernel) + ", stride " +
               std::to_string(op.stride) + ", padding " + std::to_string(op.padding) + ")");
        break;
      case OpKind::batch_norm:
        for (std::size_t off : {op.weight, op.bias, op.running_mean, op.running_var})
          params(off, static_cast<std::size_t>(cin), "batch-norm parameter", false);
        break;
      case OpKind::add:
        if (channels[static_cast<std::size_t>(op.residual)] != cin)
          fail(layer + ": residual has " + std::to_string(channels[static_cast<std::size_t>(op.residual)]) +
               " channels, input has " + std::to_string(cin));
        break;
      default: break;
    }
    channels[static_cast<std::size_t>(op.output)] = cout;
    defined[static_cast<std::size_t>(op.output)] = true;
  }
  for (int v : {p.features, p.output})
    if (!defined[static_cast<std::size_t>(v)])
      fail("malformed program (result value " + std::to_string(v) + " is never computed)");
  return channels;
}

}  // namespace ctnn

// Run-time shape inference over a Program: the one place that turns an
// input's batch, height and width into every value's extents. The typed
// layers have already proven the channel arithmetic at compile time; this
// resolves dynamic heights and widths and refuses inputs that are too small.
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctnn/core/tensor.hpp"
#include "ctnn/ir/op_traits.hpp"
#include "ctnn/ir/program.hpp"

namespace ctnn {

// The extents `op` produces from an input of extents `in`; throws, naming the
// layer and the network input `network_input`, when a window does not fit.
inline Extents out_extents(const Op& op, Extents in, Extents network_input) {
  Extents out = in;
  switch (op.kind) {
    case OpKind::conv:
    case OpKind::grouped_conv:
    case OpKind::pad_shortcut:  // kernel 1, padding 0: ceil(h / stride)
    case OpKind::max_pool: {
      const long padded_h = static_cast<long>(in.h) + 2L * op.padding;
      const long padded_w = static_cast<long>(in.w) + 2L * op.padding;
      if (padded_h < op.kernel || padded_w < op.kernel)
        throw std::invalid_argument("ctnn: input " + std::to_string(network_input.h) + "x" +
                                    std::to_string(network_input.w) + " is too small: layer '" + op.name +
                                    "' (kernel " + std::to_string(op.kernel) + ", padding " +
                                    std::to_string(op.padding) + ") receives " + std::to_string(in.h) + "x" +
                                    std::to_string(in.w));
      out.h = static_cast<std::size_t>((padded_h - op.kernel) / op.stride + 1);
      out.w = static_cast<std::size_t>((padded_w - op.kernel) / op.stride + 1);
      if (op.kind != OpKind::max_pool) out.c = static_cast<std::size_t>(op.out_channels);
      break;
    }
    case OpKind::global_avg_pool: out.h = out.w = 1; break;
    case OpKind::linear: out = {in.n, static_cast<std::size_t>(op.out_channels), 1, 1}; break;
    default: break;  // element-wise: the input's extents
  }
  return out;
}

// Every value's extents for one input, into `e` (one entry per value;
// allocation-free so that forward passes can call it).
inline void infer_extents(const Program& p, Extents input, std::span<Extents> e) {
  if (static_cast<int>(input.c) != p.input_channels)
    throw std::invalid_argument("ctnn: input has " + std::to_string(input.c) + " channels, the network expects " +
                                std::to_string(p.input_channels));
  if (e.size() < static_cast<std::size_t>(p.values)) throw std::logic_error("ctnn: extents span too small");
  if (input.n == 0 || input.h == 0 || input.w == 0)
    throw std::invalid_argument("ctnn: empty input " + to_string(input));
  e[0] = input;
  for (const Op& op : p.ops)
    e[static_cast<std::size_t>(op.output)] = out_extents(op, e[static_cast<std::size_t>(op.input)], input);
}

inline std::vector<Extents> infer_extents(const Program& p, Extents input) {
  std::vector<Extents> e(static_cast<std::size_t>(p.values));
  infer_extents(p, input, e);
  return e;
}

}  // namespace ctnn

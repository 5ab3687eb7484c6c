// Epilogue fusion grouping, shared by the backends: after an op that
// produces value v (a conv or linear), the element-wise ops that follow it
// in place on v, in the order [batch_norm] [add residual] [relu | sigmoid],
// can run while the producer's tile is still in registers. A backend says
// which parts it can fuse; the grouping never crosses `limit` (the
// backbone/head boundary), so the features value is always materialised.
//
// Lowering emits a residual block's projection branch before its main path
// (models/blocks.hpp), so the add directly follows the main path's last
// BatchNorm and fuses into its conv on every backend.
#pragma once

#include <cstddef>
#include <string>

#include "ctnn/ir/program.hpp"

namespace ctnn {

enum class Activation : int { none = 0, relu = 1, sigmoid = 2 };

struct FusionRules {
  bool batch_norm = true;   // fold an eval-mode BatchNorm into the producer
  bool sigmoid = false;     // sigmoid as the epilogue's activation (relu always)
  bool dropout = false;     // skip in-place dropouts (the identity at inference)
};

struct Epilogue {
  const Op* batch_norm = nullptr;
  int residual = -1;
  Activation activation = Activation::none;
  std::size_t end = 0;      // one past the last op absorbed
};

// The short name of a fused op relative to the step's first op
// ("layer1.0.bn1" after "layer1.0.conv1" prints as "bn1"); a bare index
// ("downsample.0" + "downsample.1") keeps its parent's name.
inline std::string short_name(const std::string& first, const std::string& name) {
  if (name.empty()) return "<unnamed>";
  for (auto dot = first.rfind('.'); dot != std::string::npos && dot > 0; dot = first.rfind('.', dot - 1)) {
    if (name.compare(0, dot + 1, first, 0, dot + 1) != 0) continue;
    const std::string rest = name.substr(dot + 1);
    if (rest.find_first_not_of("0123456789") != std::string::npos) return rest;
  }
  return name;
}

// `accept_residual(value)` lets a backend refuse a residual it cannot read
// in its epilogue (then the add and what follows stay separate steps).
template <class AcceptResidual>
Epilogue absorb_epilogue(const Program& p, std::size_t producer, std::size_t limit, FusionRules rules,
                         AcceptResidual&& accept_residual) {
  const int v = p.ops[producer].output;
  Epilogue e;
  std::size_t j = producer + 1;
  const auto next_is = [&](OpKind k) {
    return j < limit && p.ops[j].kind == k && p.ops[j].input == v && p.ops[j].output == v;
  };
  const auto skip_dropouts = [&] {
    while (rules.dropout && next_is(OpKind::dropout)) ++j;
  };
  skip_dropouts();
  if (rules.batch_norm && next_is(OpKind::batch_norm)) {
    e.batch_norm = &p.ops[j++];
    skip_dropouts();
  }
  if (next_is(OpKind::add) && p.ops[j].residual >= 0 && p.ops[j].residual != v && accept_residual(p.ops[j].residual)) {
    e.residual = p.ops[j++].residual;
    skip_dropouts();
  }
  if (next_is(OpKind::relu) || (rules.sigmoid && next_is(OpKind::sigmoid))) {
    e.activation = p.ops[j++].kind == OpKind::relu ? Activation::relu : Activation::sigmoid;
    skip_dropouts();
  }
  e.end = j;
  return e;
}

}  // namespace ctnn

// The CUDA backend's inference plan, built on the host once per model.
//
// Pure C++ (no CUDA headers) so that the folding, fusion, packing and buffer
// planning are unit-tested on machines without a GPU (tests/cuda_host).
//
// What the plan decides, and why:
//  * Activations live on the device as NHWC with the channel count rounded up
//    to a multiple of 4 ("stored channels"). Then every implicit-GEMM operand
//    row is a run of whole 16-byte vectors, which the kernels copy with
//    cp.async, and the GEMM result rows *are* NHWC output rows, so the fused
//    epilogue writes them with no transpose. The pad channels carry zeros
//    (their weights and biases are zero) or bounded values (sigmoid of 0),
//    and every consumer multiplies them by zero weights.
//  * BatchNorm is folded into the preceding conv in double; a bias, residual
//    add and ReLU/Sigmoid that follow a conv or linear run in its epilogue.
//  * Weights are repacked once to [R*S*Cs padded to 32][K padded to 128],
//    so the kernels never test weight bounds.
//  * Values share a few device buffers ("slots") by liveness; a slot is sized
//    for the largest value it ever holds at the context's capacity.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctnn/backend/cuda/precision.hpp"
#include "ctnn/ir/extents.hpp"
#include "ctnn/ir/fusion.hpp"
#include "ctnn/ir/liveness.hpp"
#include "ctnn/ir/op_traits.hpp"
#include "ctnn/ir/program.hpp"
#include "ctnn/ir/validate.hpp"

namespace ctnn::cuda {

// GEMM tiles shared by the plan and the kernels. The reduction (K) tile is
// the same for every configuration so one weight packing serves all of them.
inline constexpr int tile_k = 32;
inline constexpr int weight_col_align = 128;  // largest N tile
inline constexpr int channel_align = 4;       // one 16-byte vector
inline constexpr std::size_t arena_align = 64;  // floats: 256 bytes

constexpr int round_up(int v, int m) { return (v + m - 1) / m * m; }
constexpr std::size_t round_up(std::size_t v, std::size_t m) { return (v + m - 1) / m * m; }
constexpr int stored_channels(int c) { return round_up(c, channel_align); }

using Act = Activation;  // ir/fusion.hpp

enum class StepKind {
  to_nhwc,     // host NCHW input -> value 0 (NHWC, stored channels)
  conv,        // implicit GEMM (conv and linear), fused bias/residual/activation
  max_pool,
  avg_pool,    // global average pool
  eltwise,     // y = act(x * scale + shift + residual), any part optional
  softmax,     // over the true channels of an N x C x 1 x 1 value
};

struct Step {
  StepKind kind{};
  int input = -1, output = -1, residual = -1;
  int in_channels = 0, out_channels = 0;  // true counts
  int cs_in = 0, cs_out = 0;              // stored counts
  int kernel = 1, stride = 1, padding = 0;
  bool linear = false;                    // a Linear lowered to a 1x1 conv
  Act act = Act::none;
  // Offsets (floats) into the packed device arena; no_param when absent.
  std::size_t weight = no_param, bias = no_param, scale = no_param, shift = no_param;
  int kd = 0, kd_pad = 0, n_pad = 0;      // GEMM reduction length, padded; padded weight columns
  std::size_t first_op = 0, end_op = 0;   // program ops [first_op, end_op) this step runs
  std::string name;                       // e.g. "layer1.0.conv1 + bn1 + relu"
};

struct Plan {
  std::vector<Step> steps;
  std::size_t features_steps = 0;  // steps [0, features_steps) compute program.features
  int features = 0, output = 0;
  std::vector<int> channels;       // true channel count per value
  std::vector<int> slot;           // device buffer index per value (-1: never materialised)
  int slots = 0;
  std::vector<float> arena;        // packed parameters, uploaded once
};

namespace detail {

inline std::span<const float> param_span(std::span<const float> params, std::size_t offset, std::size_t count,
                                         const Op& op, const char* what) {
  if (offset == no_param || offset > params.size() || count > params.size() - offset)
    throw std::invalid_argument("ctnn cuda: layer '" + op.name + "': parameter '" + what + "' at offset " +
                                (offset == no_param ? std::string("<none>") : std::to_string(offset)) + " with " +
                                std::to_string(count) + " values lies outside the parameter arena of " +
                                std::to_string(params.size()) + " floats");
  return params.subspan(offset, count);
}

inline std::size_t reserve(std::vector<float>& arena, std::size_t count) {
  const std::size_t at = round_up(arena.size(), arena_align);
  arena.resize(at + round_up(count, arena_align), 0.0f);
  return at;
}

// Per-channel affine form of an eval-mode BatchNorm, in double.
struct Affine {
  std::vector<double> scale, shift;
};
inline Affine bn_affine(const Op& bn, std::span<const float> params, int channels) {
  const auto c = static_cast<std::size_t>(channels);
  auto gamma = param_span(params, bn.weight, c, bn, "weight");
  auto beta = param_span(params, bn.bias, c, bn, "bias");
  auto mean = param_span(params, bn.running_mean, c, bn, "running_mean");
  auto var = param_span(params, bn.running_var, c, bn, "running_var");
  Affine a{std::vector<double>(c), std::vector<double>(c)};
  for (std::size_t i = 0; i < c; ++i) {
    const double s = static_cast<double>(gamma[i]) / std::sqrt(static_cast<double>(var[i]) + static_cast<double>(bn.eps));
    a.scale[i] = s;
    a.shift[i] = static_cast<double>(beta[i]) - static_cast<double>(mean[i]) * s;
  }
  return a;
}

}  // namespace detail

// Builds the plan. Throws std::invalid_argument naming the layer when the
// program is malformed or a parameter lies outside `params`.
inline Plan build_plan(const Program& p, std::span<const float> params) {
  Plan plan;
  plan.features = p.features;
  plan.output = p.output;
  const auto nvalues = static_cast<std::size_t>(p.values);
  plan.channels = validate(p, params.size(), "ctnn cuda");

  auto cs = [&](int v) { return stored_channels(plan.channels[static_cast<std::size_t>(v)]); };

  Step convert;
  convert.kind = StepKind::to_nhwc;
  convert.output = 0;
  convert.in_channels = convert.out_channels = p.input_channels;
  convert.cs_in = convert.cs_out = cs(0);
  convert.name = "input (NCHW -> NHWC)";
  plan.steps.push_back(convert);

  for (std::size_t i = 0; i < p.ops.size();) {
    const Op& op = p.ops[i];
    const std::size_t limit = i < p.features_end ? p.features_end : p.ops.size();
    Step s;
    s.input = op.input;
    s.output = op.output;
    s.in_channels = plan.channels[static_cast<std::size_t>(op.input)];
    s.out_channels = plan.channels[static_cast<std::size_t>(op.output)];
    s.cs_in = cs(op.input);
    s.cs_out = cs(op.output);
    s.first_op = i;
    s.name = op.name.empty() ? "<unnamed " + std::string(op_name(op.kind)) + ">" : op.name;
    switch (op.kind) {
      case OpKind::conv:
      case OpKind::linear: {
        const bool lin = op.kind == OpKind::linear;
        const Epilogue t = absorb_epilogue(p, i, limit, FusionRules{.batch_norm = true, .sigmoid = true, .dropout = true},
                                           [](int) { return true; });
        s.kind = StepKind::conv;
        s.linear = lin;
        s.kernel = lin ? 1 : op.kernel;
        s.stride = lin ? 1 : op.stride;
        s.padding = lin ? 0 : op.padding;
        s.residual = t.residual;
        s.act = t.activation;
        for (std::size_t j = i + 1; j < t.end; ++j) s.name += " + " + short_name(op.name, p.ops[j].name);
        s.end_op = t.end;
        const int K = op.out_channels, C = op.in_channels, R = s.kernel;
        s.kd = R * R * s.cs_in;
        s.kd_pad = round_up(s.kd, tile_k);
        s.n_pad = round_up(K, weight_col_align);
        const std::size_t wcount = static_cast<std::size_t>(K) * C * R * R;
        auto w = detail::param_span(params, op.weight, wcount, op, "weight");
        std::span<const float> b;
        if (op.bias != no_param) b = detail::param_span(params, op.bias, static_cast<std::size_t>(K), op, "bias");
        std::vector<double> scale(static_cast<std::size_t>(K), 1.0), bias(static_cast<std::size_t>(K), 0.0);
        for (int k = 0; k < K; ++k) bias[static_cast<std::size_t>(k)] = b.empty() ? 0.0 : b[static_cast<std::size_t>(k)];
        if (t.batch_norm) {
          const detail::Affine a = detail::bn_affine(*t.batch_norm, params, K);
          for (std::size_t k = 0; k < static_cast<std::size_t>(K); ++k) {
            scale[k] = a.scale[k];
            bias[k] = bias[k] * a.scale[k] + a.shift[k];
          }
        }
        s.weight = detail::reserve(plan.arena, static_cast<std::size_t>(s.kd_pad) * s.n_pad);
        s.bias = detail::reserve(plan.arena, static_cast<std::size_t>(s.n_pad));
        float* wp = plan.arena.data() + s.weight;
        for (int k = 0; k < K; ++k)
          for (int c = 0; c < C; ++c)
            for (int r = 0; r < R; ++r)
              for (int q = 0; q < R; ++q) {
                const double v = w[((static_cast<std::size_t>(k) * C + c) * R + r) * R + q];
                const std::size_t kd = static_cast<std::size_t>((r * R + q) * s.cs_in + c);
                wp[kd * static_cast<std::size_t>(s.n_pad) + static_cast<std::size_t>(k)] =
                    static_cast<float>(v * scale[static_cast<std::size_t>(k)]);
              }
        for (int k = 0; k < K; ++k)
          plan.arena[s.bias + static_cast<std::size_t>(k)] = static_cast<float>(bias[static_cast<std::size_t>(k)]);
        break;
      }
      case OpKind::max_pool:
        s.kind = StepKind::max_pool;
        s.kernel = op.kernel;
        s.stride = op.stride;
        s.padding = op.padding;
        s.end_op = i + 1;
        break;
      case OpKind::global_avg_pool:
        s.kind = StepKind::avg_pool;
        s.end_op = i + 1;
        break;
      case OpKind::softmax:
        if (op.input != op.output)
          throw std::invalid_argument("ctnn cuda: layer '" + op.name + "' (softmax) must run in place");
        s.kind = StepKind::softmax;
        s.end_op = i + 1;
        break;
      case OpKind::batch_norm:
      case OpKind::relu:
      case OpKind::sigmoid:
      case OpKind::dropout:
      case OpKind::add: {
        // Element-wise ops no producer absorbed: one pass that applies
        // [batch_norm] [add residual] [relu|sigmoid] in that order, starting
        // at this op and absorbing what follows in place on its output.
        s.kind = StepKind::eltwise;
        const Op* bn = nullptr;
        int stage = 0;  // how far along bn -> add -> act the step already is
        switch (op.kind) {
          case OpKind::batch_norm: bn = &op; stage = 1; break;
          case OpKind::add: s.residual = op.residual; stage = 2; break;
          case OpKind::relu: s.act = Act::relu; stage = 3; break;
          case OpKind::sigmoid: s.act = Act::sigmoid; stage = 3; break;
          default: break;  // dropout: the identity at inference
        }
        const int v = op.output;
        auto in_place = [&](const Op& o) { return o.input == v && o.output == v; };
        std::size_t j = i + 1;
        for (; j < limit && in_place(p.ops[j]); ++j) {
          const Op& o = p.ops[j];
          if (o.kind == OpKind::dropout) {
          } else if (o.kind == OpKind::add && stage < 2 && o.residual != v) {
            s.residual = o.residual;
            stage = 2;
          } else if ((o.kind == OpKind::relu || o.kind == OpKind::sigmoid) && stage < 3) {
            s.act = o.kind == OpKind::relu ? Act::relu : Act::sigmoid;
            stage = 3;
          } else {
            break;
          }
          s.name += " + " + short_name(op.name, o.name);
        }
        s.end_op = j;
        if (bn) {
          const detail::Affine a = detail::bn_affine(*bn, params, s.in_channels);
          s.scale = detail::reserve(plan.arena, static_cast<std::size_t>(s.cs_in));
          s.shift = detail::reserve(plan.arena, static_cast<std::size_t>(s.cs_in));
          for (std::size_t c = 0; c < static_cast<std::size_t>(s.in_channels); ++c) {
            plan.arena[s.scale + c] = static_cast<float>(a.scale[c]);
            plan.arena[s.shift + c] = static_cast<float>(a.shift[c]);
          }
        }
        // In-place dropouts alone do nothing: no step at all.
        if (s.input == s.output && s.residual < 0 && s.act == Act::none && !bn) {
          i = j;
          if (i == p.features_end) plan.features_steps = plan.steps.size();
          continue;
        }
        break;
      }
      default:
        throw std::invalid_argument("ctnn cuda: layer '" + op.name + "' has an op kind (" +
                                    std::to_string(static_cast<int>(op.kind)) + ") with no CUDA kernel");
    }
    plan.steps.push_back(std::move(s));
    i = plan.steps.back().end_op;
    if (i == p.features_end) plan.features_steps = plan.steps.size();
  }
  if (p.features_end == 0) plan.features_steps = 1;

  // Device buffers by liveness over the steps (ir/liveness.hpp); the results
  // stay alive to the end of their stage.
  std::vector<Lifetime> lives(nvalues);
  for (std::size_t k = 0; k < plan.steps.size(); ++k)
    for (int v : {plan.steps[k].input, plan.steps[k].residual, plan.steps[k].output})
      if (v >= 0) lives[static_cast<std::size_t>(v)].touch(k);
  lives[static_cast<std::size_t>(p.features)].keep_until(plan.features_steps ? plan.features_steps - 1 : 0);
  lives[static_cast<std::size_t>(p.output)].keep_until(plan.steps.size() - 1);
  const SlotPlan slots = assign_slots(lives);
  plan.slot = slots.slot_of;
  plan.slots = slots.slots;
  return plan;
}

// Floats each slot needs for inputs up to `cap` (activations are monotone in
// the input size, so the capacity's extents bound every smaller input).
inline std::vector<std::size_t> slot_sizes(const Plan& plan, std::span<const Extents> capacity_extents) {
  std::vector<std::size_t> size(static_cast<std::size_t>(plan.slots), 0);
  for (std::size_t v = 0; v < plan.slot.size(); ++v) {
    if (plan.slot[v] < 0) continue;
    const Extents& e = capacity_extents[v];
    const std::size_t floats = e.n * e.h * e.w * static_cast<std::size_t>(stored_channels(plan.channels[v]));
    auto& s = size[static_cast<std::size_t>(plan.slot[v])];
    s = std::max(s, round_up(floats, arena_align));
  }
  return size;
}

// Tile configuration and split-K factor of one conv launch.
//  * 128x128 tiles when there are enough of them to fill the GPU;
//  * 128x64 for 64-channel layers (a 128-wide tile would compute half
//    zeros) and for late stages that 128x128 tiles would leave idle;
//  * 64x64 otherwise (batch 1, small images), and when even those leave
//    most multiprocessors idle the reduction is split over blockIdx.z, a
//    second kernel summing the partials in a fixed order (deterministic)
//    and applying the epilogue.
enum class TileConfig : int { t128x128 = 0, t128x64 = 1, t64x64 = 2 };

struct ConvTiling {
  TileConfig config = TileConfig::t128x128;
  bool legacy = false;  // run the previous kernel family (see legacy_tiles_requested)
  int bm = 128, bn = 128;
  int splits = 1, kt_per_split = 0, k_tiles = 0;
  long grid_m = 0, grid_n = 0;
};

// Floats of split-K partials a context reserves: enough for every tiling
// choose_tiling returns (splits * blocks never exceeds 2 * sm_count + 1).
inline std::size_t split_workspace_floats(int sm_count) {
  return static_cast<std::size_t>(2 * sm_count + 1) * 64u * 64u;
}

inline ConvTiling choose_tiling(long m, int ks, int kd_pad, int sm_count, bool legacy = false) {
  ConvTiling t;
  t.legacy = legacy;
  t.k_tiles = kd_pad / tile_k;
  auto blocks = [&](int bm, int bn) { return ((m + bm - 1) / bm) * ((ks + bn - 1) / bn); };
  if (ks > 64 && blocks(128, 128) >= sm_count) {
    t.config = TileConfig::t128x128;
  } else if (blocks(128, 64) >= sm_count) {
    t.config = TileConfig::t128x64;
    t.bn = 64;
  } else {
    t.config = TileConfig::t64x64;
    t.bm = t.bn = 64;
    const long small = blocks(64, 64);
    if (small < sm_count && t.k_tiles >= 8) {
      const long want = (sm_count + small - 1) / small;  // about one full wave
      long splits = std::min<long>({want, t.k_tiles / 4, 16});
      splits = std::max<long>(splits, 1);
      t.splits = static_cast<int>(splits);
    }
  }
  t.grid_m = (m + t.bm - 1) / t.bm;
  t.grid_n = (ks + t.bn - 1) / t.bn;
  t.kt_per_split = (t.k_tiles + t.splits - 1) / t.splits;
  t.splits = (t.k_tiles + t.kt_per_split - 1) / t.kt_per_split;  // no empty split
  return t;
}

// The tensor-core executors round the packed conv/linear weights once here,
// so the kernels load B fragments (TF32) or convert B tiles (BF16) without
// changing them (the default TF32 kernels also round each A tile once in
// shared memory instead of once per fragment load). Biases stay FP32: the
// epilogue adds them on the CUDA cores. FP32 leaves the weights as they are.
inline void round_weights(Plan& plan, Precision precision) {
  if (precision == Precision::fp32) return;
  for (const Step& s : plan.steps) {
    if (s.kind != StepKind::conv) continue;
    const std::size_t count = static_cast<std::size_t>(s.kd_pad) * static_cast<std::size_t>(s.n_pad);
    for (std::size_t i = s.weight; i < s.weight + count; ++i)
      plan.arena[i] = precision == Precision::tf32 ? round_to_tf32(plan.arena[i]) : round_to_bf16(plan.arena[i]);
  }
}

// CTNN_CUDA_LEGACY_TILES=1 in the environment (or defined at compile time)
// selects the kernel family of the first GPU run: one block per
// multiprocessor for 128x128 tiles and TF32 conversion at every fragment
// load. A fallback in case the default family misbehaves on some GPU.
inline bool legacy_tiles_requested() {
#if defined(CTNN_CUDA_LEGACY_TILES) && CTNN_CUDA_LEGACY_TILES
  return true;
#else
  const char* v = std::getenv("CTNN_CUDA_LEGACY_TILES");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
#endif
}

}  // namespace ctnn::cuda

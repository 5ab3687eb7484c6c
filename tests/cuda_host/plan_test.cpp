// Host-only tests of the CUDA backend's plan: BatchNorm folding, epilogue
// fusion, weight packing, buffer liveness and tile selection. No GPU needed.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

#include "naive.hpp"
#include "sim.hpp"

using namespace ctnn;
using namespace ctnn::cuda;
using ctnn::test::ProgramBuilder;

namespace {

const Step* find_step(const Plan& plan, const std::string& prefix) {
  for (const Step& s : plan.steps)
    if (s.name.rfind(prefix, 0) == 0) return &s;
  return nullptr;
}

}  // namespace

TEST_CASE("conv + bn + relu fold into one step whose weights and bias are the folded ones (double)") {
  ProgramBuilder b(3);
  const int y = b.conv(0, 3, 6, 3, 1, 1, /*bias=*/true, "conv1");
  b.bn(y, 6, "bn1");
  b.unary(OpKind::relu, y, "relu");
  b.p.features = b.p.output = y;
  b.p.features_end = b.p.ops.size();
  const Plan plan = build_plan(b.p, b.params);

  REQUIRE(plan.steps.size() == 2);  // layout conversion + one fused conv
  const Step& s = plan.steps[1];
  CHECK(s.kind == StepKind::conv);
  CHECK(s.name == "conv1 + bn1 + relu");
  CHECK(s.act == Act::relu);
  CHECK(s.cs_in == 4);  // 3 channels stored as 4
  CHECK(s.kd == 3 * 3 * 4);
  CHECK(s.kd_pad == 64);
  CHECK(s.n_pad == 128);

  const Op& conv = b.p.ops[0];
  const Op& bn = b.p.ops[1];
  for (int k = 0; k < 6; ++k) {
    const double gamma = b.params[bn.weight + k], beta = b.params[bn.bias + k];
    const double mean = b.params[bn.running_mean + k], var = b.params[bn.running_var + k];
    const double scale = gamma / std::sqrt(var + 1e-5);
    const double bias = (b.params[conv.bias + k] - mean) * scale + beta;
    CHECK(plan.arena[s.bias + k] == doctest::Approx(bias).epsilon(1e-7));
    for (int c = 0; c < 3; ++c)
      for (int r = 0; r < 3; ++r)
        for (int q = 0; q < 3; ++q) {
          const double w = b.params[conv.weight + ((k * 3 + c) * 3 + r) * 3 + q] * scale;
          const std::size_t kd = static_cast<std::size_t>((r * 3 + q) * 4 + c);
          CHECK(plan.arena[s.weight + kd * 128 + k] == doctest::Approx(w).epsilon(1e-7));
        }
    // The pad channel (c = 3) and pad rows/columns are zero, so they add nothing.
    for (int r = 0; r < 9; ++r) CHECK(plan.arena[s.weight + static_cast<std::size_t>(r * 4 + 3) * 128 + k] == 0.0f);
  }
  for (std::size_t kd = 36; kd < 64; ++kd) CHECK(plan.arena[s.weight + kd * 128 + 0] == 0.0f);
  CHECK(plan.arena[s.bias + 6] == 0.0f);
}

TEST_CASE("a BasicBlock lowered projection-first fuses add + relu into conv2") {
  ProgramBuilder b(8);
  const int z = b.basic_block(0, 8, 16, 2, "layer2.0");
  const int f = b.avg_pool(z, "avgpool");
  b.p.features = f;
  b.p.features_end = b.p.ops.size();
  const int o = b.linear(f, 16, 10, "fc");
  b.p.output = o;
  const Plan plan = build_plan(b.p, b.params);

  const Step* conv2 = find_step(plan, "layer2.0.conv2");
  REQUIRE(conv2 != nullptr);
  CHECK(conv2->name == "layer2.0.conv2 + bn2 + add + relu");
  CHECK(conv2->residual >= 0);
  CHECK(conv2->act == Act::relu);
  const Step* ds = find_step(plan, "layer2.0.downsample.0");
  REQUIRE(ds != nullptr);
  CHECK(ds->name == "layer2.0.downsample.0 + downsample.1");
  CHECK(ds->output == conv2->residual);
  CHECK(ds < conv2);  // runs first
  // conversion, downsample, conv1, conv2, avgpool | fc
  CHECK(plan.steps.size() == 6);
  CHECK(plan.features_steps == 5);
  for (const Step& s : plan.steps) CHECK(s.kind != StepKind::eltwise);
}

TEST_CASE("element-wise ops without a producer to fuse into become one eltwise step") {
  ProgramBuilder b(4);
  const int y = b.max_pool(0, 2, 2, 0, "pool");
  b.bn(y, 4, "bn");
  b.unary(OpKind::dropout, y, "drop");
  b.unary(OpKind::relu, y, "relu");
  b.p.features = b.p.output = y;
  b.p.features_end = b.p.ops.size();
  const Plan plan = build_plan(b.p, b.params);
  REQUIRE(plan.steps.size() == 3);
  CHECK(plan.steps[2].kind == StepKind::eltwise);
  CHECK(plan.steps[2].name == "bn + drop + relu");
  CHECK(plan.steps[2].scale != no_param);
  CHECK(plan.steps[2].act == Act::relu);
}

TEST_CASE("slots: no step writes a buffer it reads, and live values never share a buffer") {
  ProgramBuilder b(3);
  int x = b.conv(0, 3, 8, 7, 2, 3, false, "conv1");
  b.bn(x, 8, "bn1");
  b.unary(OpKind::relu, x, "relu");
  x = b.max_pool(x, 3, 2, 1, "maxpool");
  x = b.basic_block(x, 8, 8, 1, "layer1.0");
  x = b.basic_block(x, 8, 16, 2, "layer2.0");
  x = b.basic_block(x, 16, 16, 1, "layer2.1");
  const int f = b.avg_pool(x, "avgpool");
  b.p.features = f;
  b.p.features_end = b.p.ops.size();
  b.p.output = b.linear(f, 16, 10, "fc");
  const Plan plan = build_plan(b.p, b.params);

  CHECK(plan.slots <= 4);
  // Recompute liveness independently and check every pair of overlapping
  // values has different slots.
  const std::size_t n = plan.steps.size();
  std::vector<long> first(static_cast<std::size_t>(b.p.values), -1), last(static_cast<std::size_t>(b.p.values), -1);
  for (std::size_t k = 0; k < n; ++k)
    for (int v : {plan.steps[k].input, plan.steps[k].residual, plan.steps[k].output})
      if (v >= 0) {
        if (first[static_cast<std::size_t>(v)] < 0) first[static_cast<std::size_t>(v)] = static_cast<long>(k);
        last[static_cast<std::size_t>(v)] = static_cast<long>(k);
      }
  last[static_cast<std::size_t>(plan.output)] = static_cast<long>(n);
  last[static_cast<std::size_t>(plan.features)] =
      std::max(last[static_cast<std::size_t>(plan.features)], static_cast<long>(plan.features_steps) - 1);
  for (std::size_t a = 0; a < first.size(); ++a)
    for (std::size_t c = a + 1; c < first.size(); ++c) {
      if (first[a] < 0 || first[c] < 0) continue;
      const bool overlap = first[a] <= last[c] && first[c] <= last[a];
      if (overlap) CHECK_MESSAGE(plan.slot[a] != plan.slot[c], "values " << a << " and " << c);
    }
  for (const Step& s : plan.steps) {
    if (s.input >= 0 && s.input != s.output) CHECK(plan.slot[static_cast<std::size_t>(s.input)] != plan.slot[static_cast<std::size_t>(s.output)]);
    if (s.residual >= 0) CHECK(plan.slot[static_cast<std::size_t>(s.residual)] != plan.slot[static_cast<std::size_t>(s.output)]);
  }
}

TEST_CASE("malformed programs are rejected with the layer's name") {
  ProgramBuilder b(3);
  const int y = b.conv(0, 3, 8, 3, 1, 1, false, "conv1");
  b.p.features = b.p.output = y;
  b.p.features_end = b.p.ops.size();
  SUBCASE("parameters outside the arena") {
    b.params.resize(10);
    CHECK_THROWS_WITH_AS(build_plan(b.p, b.params), doctest::Contains("conv1"), std::invalid_argument);
  }
  SUBCASE("channel mismatch") {
    b.p.ops[0].in_channels = 4;
    CHECK_THROWS_WITH_AS(build_plan(b.p, b.params), doctest::Contains("expects 4 input channels"),
                         std::invalid_argument);
  }
  SUBCASE("reading a value nobody produced") {
    b.p.ops[0].input = 5;
    b.p.values = 6;
    CHECK_THROWS_WITH_AS(build_plan(b.p, b.params), doctest::Contains("no earlier op produces"),
                         std::invalid_argument);
  }
}

TEST_CASE("tiling: big tiles when they fill the GPU, split-K when small problems would leave it idle") {
  // ResNet-18 layer2 at batch 64 (224x224): plenty of 128x128 tiles.
  ConvTiling t = choose_tiling(64 * 28 * 28, 128, 1152, 132);
  CHECK(t.config == TileConfig::t128x128);
  CHECK(t.splits == 1);
  CHECK(t.grid_m == (64 * 28 * 28 + 127) / 128);
  // Its 64-channel layer1 would waste half of a 128-wide tile.
  t = choose_tiling(64 * 56 * 56, 64, 576, 132);
  CHECK(t.config == TileConfig::t128x64);
  CHECK(t.grid_n == 1);
  // Its layer4 (7x7) fills the GPU only with 128x64 tiles.
  t = choose_tiling(64 * 7 * 7, 512, 4608, 132);
  CHECK(t.config == TileConfig::t128x64);
  // ResNet-18 layer4 at batch 1: 49 x 512 output, K = 4608.
  t = choose_tiling(49, 512, 4608, 132);
  CHECK(t.config == TileConfig::t64x64);
  CHECK(t.splits > 1);
  for (int sm : {1, 8, 66, 132, 144})
    for (long m : {1L, 49L, 196L, 3136L, 12544L, 200704L})
      for (int ks : {4, 12, 64, 132, 512, 2048})
        for (int kd : {32, 64, 288, 576, 1152, 4608}) {
          const ConvTiling c = choose_tiling(m, ks, kd, sm);
          CHECK(c.splits >= 1);
          CHECK((c.splits - 1) * c.kt_per_split < c.k_tiles);  // no empty split
          CHECK(c.splits * c.kt_per_split >= c.k_tiles);       // all of K covered
          if (c.splits > 1)
            CHECK(static_cast<std::size_t>(c.splits) * static_cast<std::size_t>(m) * static_cast<std::size_t>(ks) <=
                  split_workspace_floats(sm));
        }
}

// ---- the real lowered networks ---------------------------------------------

#include <ctnn/ctnn.hpp>

namespace {
template <class Net>
Plan plan_of(const Model<Net, backend::Reference>& m) {
  return build_plan(m.program(), m.parameters());
}
std::size_t count_kind(const Plan& p, StepKind k) {
  return static_cast<std::size_t>(std::count_if(p.steps.begin(), p.steps.end(), [&](const Step& s) { return s.kind == k; }));
}
}  // namespace

TEST_CASE("real networks: every BatchNorm, add and ReLU of ResNet-18/50 fuses into a conv") {
  {
    Model<ResNet18<Linear<512, 10>>, backend::Reference> m;
    const Plan p = plan_of(m);
    CHECK(count_kind(p, StepKind::conv) == 20 + 1);  // 17 3x3/7x7 convs, 3 downsamples, fc
    CHECK(count_kind(p, StepKind::eltwise) == 0);
    CHECK(count_kind(p, StepKind::max_pool) == 1);
    CHECK(count_kind(p, StepKind::avg_pool) == 1);
    CHECK(p.steps.size() == 1 + 21 + 2);
    CHECK(p.features_steps == p.steps.size() - 1);
    CHECK(p.slots <= 4);
    for (const Step& s : p.steps)
      if (s.kind == StepKind::conv && s.name.find("conv2") != std::string::npos)
        CHECK_MESSAGE(s.residual >= 0, s.name << " has no fused residual");
  }
  {
    Model<ResNet50<Linear<2048, 10>>, backend::Reference> m;
    const Plan p = plan_of(m);
    CHECK(count_kind(p, StepKind::conv) == 53 + 1);
    CHECK(count_kind(p, StepKind::eltwise) == 0);
    CHECK(p.slots <= 4);
    MESSAGE("ResNet-50: " << p.steps.size() << " steps, " << p.slots << " buffers");
  }
  {
    Model<ResNet18<Sequential<Linear<512, 1000>, Dropout<0.5>, Softmax>>, backend::Reference> m;
    const Plan p = plan_of(m);
    CHECK(p.steps.back().kind == StepKind::softmax);  // the dropout vanished
    CHECK(count_kind(p, StepKind::eltwise) == 0);
  }
  {
    Model<ResNet18<Sequential<Linear<512, 1>, Sigmoid>>, backend::Reference> m;
    const Plan p = plan_of(m);
    CHECK(p.steps.back().kind == StepKind::conv);
    CHECK(p.steps.back().act == Act::sigmoid);  // fused into the linear
  }
}

TEST_CASE("tf32 rounding: cvt.rna semantics, idempotent, applied to every packed conv weight") {
  CHECK(round_to_tf32(1.0f) == 1.0f);
  const float ulp = 1.0f / 1024;                                    // TF32 spacing at 1
  CHECK(round_to_tf32(1.0f + ulp * 0.49f) == 1.0f);
  CHECK(round_to_tf32(1.0f + ulp * 0.5f) == 1.0f + ulp);            // ties away from zero
  CHECK(round_to_tf32(-1.0f - ulp * 0.5f) == -1.0f - ulp);
  CHECK(round_to_tf32(1.0f + ulp * 0.51f) == 1.0f + ulp);
  CHECK(std::isinf(round_to_tf32(std::numeric_limits<float>::infinity())));
  for (float v : {0.1f, -3.7e-5f, 12345.678f}) CHECK(round_to_tf32(round_to_tf32(v)) == round_to_tf32(v));

  Model<ResNet20<Linear<64, 10>, Image<1, 28, 28>>, backend::Reference> m;
  const Plan p = build_plan(m.program(), m.parameters());
  Plan r = p;
  round_weights(r, Precision::tf32);
  std::size_t changed = 0;
  for (const Step& s : r.steps) {
    if (s.kind != StepKind::conv) continue;
    for (std::size_t i = s.weight; i < s.weight + static_cast<std::size_t>(s.kd_pad) * s.n_pad; ++i) {
      CHECK(r.arena[i] == round_to_tf32(p.arena[i]));
      changed += r.arena[i] != p.arena[i];
    }
    for (std::size_t i = s.bias; i < s.bias + static_cast<std::size_t>(s.n_pad); ++i)
      CHECK(r.arena[i] == p.arena[i]);  // biases stay FP32
  }
  CHECK(changed > 0);
}

TEST_CASE("bf16 rounding: cvt.rn.bf16.f32 semantics, idempotent, applied to every packed conv weight") {
  const float ulp = 1.0f / 128;  // BF16 spacing at 1 (7 stored mantissa bits)
  CHECK(round_to_bf16(1.0f) == 1.0f);
  CHECK(round_to_bf16(1.0f + ulp * 0.49f) == 1.0f);
  CHECK(round_to_bf16(1.0f + ulp * 0.5f) == 1.0f);                  // tie: to even (1.0)
  CHECK(round_to_bf16(1.0f + ulp * 1.5f) == 1.0f + 2 * ulp);        // tie: to even (1 + 2 ulp)
  CHECK(round_to_bf16(-1.0f - ulp * 0.51f) == -1.0f - ulp);
  CHECK(bf16_bits(1.0f) == 0x3F80);
  CHECK(bf16_bits(-2.0f) == 0xC000);
  CHECK(std::isinf(round_to_bf16(std::numeric_limits<float>::max())));  // rounds past the largest BF16
  CHECK(std::isinf(round_to_bf16(-std::numeric_limits<float>::infinity())));
  CHECK(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(bf16_value(bf16_bits(std::bit_cast<float>(0x7F800001u)))));  // a NaN with low payload stays NaN
  for (float v : {0.1f, -3.7e-5f, 12345.678f, 1e-40f}) CHECK(round_to_bf16(round_to_bf16(v)) == round_to_bf16(v));

  Model<ResNet20<Linear<64, 10>, Image<1, 28, 28>>, backend::Reference> m;
  const Plan p = build_plan(m.program(), m.parameters());
  Plan r = p;
  round_weights(r, Precision::bf16);
  std::size_t changed = 0;
  for (const Step& s : r.steps) {
    if (s.kind != StepKind::conv) continue;
    for (std::size_t i = s.weight; i < s.weight + static_cast<std::size_t>(s.kd_pad) * s.n_pad; ++i) {
      CHECK(r.arena[i] == round_to_bf16(p.arena[i]));
      changed += r.arena[i] != p.arena[i];
    }
    for (std::size_t i = s.bias; i < s.bias + static_cast<std::size_t>(s.n_pad); ++i)
      CHECK(r.arena[i] == p.arena[i]);  // biases stay FP32
  }
  CHECK(changed > 0);
  Plan f = p;
  round_weights(f, Precision::fp32);
  CHECK(f.arena == p.arena);
}

TEST_CASE("real networks: simulated CUDA run of lowered ResNet-18 and ResNet-20 matches the naive oracle") {
  auto run = [](const auto& m, Extents e, Precision precision, int sm, double tol, const char* what) {
    const Plan p = build_plan(m.program(), m.parameters());
    std::vector<float> x(e.count());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 211) / 105.0f - 1.0f;
    for (Stage stage : {Stage::output, Stage::features}) {
      const auto want = ctnn::test::naive_run(m.program(), m.parameters(), x, e, stage);
      const sim::SimResult got = sim::run_plan(p, m.program(), x, e, stage, precision, sm);
      CHECK(got.inexact_tf32 == 0);
      double diff = 0, scale = 0;
      for (std::size_t i = 0; i < want.size(); ++i) {
        diff = std::max(diff, std::abs(got.data[i] - want[i]));
        scale = std::max(scale, std::abs(want[i]));
      }
      char rel[32];
      std::snprintf(rel, sizeof rel, "%.3g", diff / scale);
      const std::string note =
          std::string(what) + (stage == Stage::output ? " output" : " features") + ": relative " + rel;
      MESSAGE(note);
      CHECK(diff / scale <= tol);
      CHECK(scale > 0);
    }
  };
  Model<ResNet18<Linear<512, 10>>, backend::Reference> r18;
  run(r18, {1, 3, 32, 40}, Precision::fp32, 16, 1e-5, "ResNet-18 fp32 (split-K)");
  Model<ResNet20<Linear<64, 10>, Image<1, 28, 28>>, backend::Reference> r20;
  run(r20, {2, 1, 28, 28}, Precision::fp32, 4, 1e-5, "ResNet-20 fp32");
  run(r20, {1, 1, 28, 28}, Precision::tf32, 132, 5e-3, "ResNet-20 tf32");
  run(r20, {1, 1, 28, 28}, Precision::bf16, 132, sim::bf16_tolerance, "ResNet-20 bf16");
}

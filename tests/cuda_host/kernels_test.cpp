// Runs the CUDA backend's kernel bodies and run loop in the host simulator
// (sim.hpp) and compares with a naive double-precision executor of the
// Program (naive.hpp). Covers both tile configurations, split-K, padding
// channels, both precisions and every op kind the ResNets and heads use.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>

#include "naive.hpp"
#include "sim.hpp"

using namespace ctnn;
using namespace ctnn::cuda;
using ctnn::test::ProgramBuilder;

namespace {

struct Diff {
  double max_abs = 0, ref_scale = 0, worst_rel = 0;
  bool finite = true;
  double rel() const { return max_abs / std::max(ref_scale, 1e-30); }
};

Diff compare(const std::vector<float>& got, const std::vector<double>& want) {
  Diff d;
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) d.finite = false;
    d.max_abs = std::max(d.max_abs, std::abs(got[i] - want[i]));
    d.ref_scale = std::max(d.ref_scale, std::abs(want[i]));
  }
  return d;
}

std::vector<float> random_input(Extents e, unsigned seed) {
  std::vector<float> x(e.count());
  for (auto& v : x) {
    seed = seed * 1664525u + 1013904223u;
    v = static_cast<float>(seed >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f;
  }
  return x;
}

// A scaled-down torchvision ResNet: 7x7/2 stem, max pool, BasicBlocks with a
// projection shortcut, global average pool, and one of the article's heads.
enum class Head { linear10, sigmoid1, dropout_softmax };

ProgramBuilder mini_resnet(Head head) {
  ProgramBuilder b(3);
  int x = b.conv(0, 3, 8, 7, 2, 3, false, "conv1");
  b.bn(x, 8, "bn1");
  b.unary(OpKind::relu, x, "relu");
  x = b.max_pool(x, 3, 2, 1, "maxpool");
  x = b.basic_block(x, 8, 8, 1, "layer1.0");
  x = b.basic_block(x, 8, 16, 2, "layer2.0");
  x = b.basic_block(x, 16, 36, 2, "layer3.0");  // 36: not a multiple of the tiles
  const int f = b.avg_pool(x, "avgpool");
  b.p.features = f;
  b.p.features_end = b.p.ops.size();
  switch (head) {
    case Head::linear10: b.p.output = b.linear(f, 36, 10, "fc"); break;
    case Head::sigmoid1: {
      const int o = b.linear(f, 36, 1, "fc.0");
      b.unary(OpKind::sigmoid, o, "fc.1");
      b.p.output = o;
      break;
    }
    case Head::dropout_softmax: {
      const int o = b.linear(f, 36, 100, "fc.0");
      b.unary(OpKind::dropout, o, "fc.1");
      b.unary(OpKind::softmax, o, "fc.2");
      b.p.output = o;
      break;
    }
  }
  return b;
}

int configs_run[3] = {0, 0, 0};
int splits_run = 0;

// Returns the relative error (max |diff| / max |reference|).
double check_run(const ProgramBuilder& b, Extents in, Stage stage, Precision precision, int sm_count, double tol,
                 const char* what, bool legacy_tiles = false) {
  const Plan plan = build_plan(b.p, b.params);
  const std::vector<float> x = random_input(in, 7u + static_cast<unsigned>(in.h));
  Extents want_shape;
  const std::vector<double> want = ctnn::test::naive_run(b.p, b.params, x, in, stage, &want_shape);
  const sim::SimResult got = sim::run_plan(plan, b.p, x, in, stage, precision, sm_count, legacy_tiles);
  CHECK(got.shape == want_shape);
  CHECK_MESSAGE(got.inexact_tf32 == 0, what << ": a TF32 fragment load without conversion met an unrounded value");
  CHECK(got.tuned_launches + got.legacy_launches == got.conv_launches);
  CHECK((legacy_tiles ? got.tuned_launches : got.legacy_launches) == 0);
  const Diff d = compare(got.data, want);
  std::printf("  %-40s %s sm=%-3d %s: max |diff| %.3g, max |ref| %.3g, relative %.3g "
              "(convs: %d 128x128, %d 128x64, %d 64x64, %d split-K)\n",
              what, precision_name(precision), sm_count, stage == Stage::features ? "features" : "output  ", d.max_abs,
              d.ref_scale, d.rel(), got.config_launches[0], got.config_launches[1], got.config_launches[2],
              got.split_launches);
  for (int c = 0; c < 3; ++c) configs_run[c] += got.config_launches[c];
  splits_run += got.split_launches;
  CHECK_MESSAGE(d.finite, what << ": non-finite outputs (a kernel read memory nobody wrote)");
  CHECK_MESSAGE(d.rel() <= tol, what << ": relative error " << d.rel() << " > " << tol);
  return d.rel();
}

}  // namespace

TEST_CASE("simulated kernels: mini ResNet, FP32, 128-row tiles without split-K, matches the naive oracle") {
  // sm_count 1: every problem fills "the GPU", so no split-K; narrow layers take 128x64 tiles.
  const auto b = mini_resnet(Head::linear10);
  check_run(b, {2, 3, 37, 45}, Stage::output, Precision::fp32, 1, 1e-5, "linear head");
  check_run(b, {2, 3, 37, 45}, Stage::features, Precision::fp32, 1, 1e-5, "features");
}

TEST_CASE("simulated kernels: mini ResNet, FP32, 64x64 tiles with split-K, matches the naive oracle") {
  const auto b = mini_resnet(Head::linear10);
  check_run(b, {1, 3, 33, 29}, Stage::output, Precision::fp32, 132, 1e-5, "linear head");
  check_run(b, {3, 3, 21, 24}, Stage::features, Precision::fp32, 132, 1e-5, "features");
}

TEST_CASE("simulated kernels: the article's heads (sigmoid, dropout + softmax)") {
  check_run(mini_resnet(Head::sigmoid1), {2, 3, 40, 35}, Stage::output, Precision::fp32, 132, 1e-5, "linear(36,1) + sigmoid");
  check_run(mini_resnet(Head::dropout_softmax), {2, 3, 40, 35}, Stage::output, Precision::fp32, 132, 1e-5,
            "linear(36,100) + dropout + softmax");
}

TEST_CASE("simulated kernels: TF32 tensor-core path within its tolerance") {
  const auto b = mini_resnet(Head::linear10);
  check_run(b, {2, 3, 37, 45}, Stage::output, Precision::tf32, 1, 5e-3, "tf32 128x64 tiles");
  check_run(b, {1, 3, 33, 29}, Stage::output, Precision::tf32, 132, 5e-3, "tf32 small tiles + split-K");
}

TEST_CASE("simulated kernels: BF16 tensor-core path within its tolerance, and really rounding") {
  // The same runs in TF32 and BF16: BF16 keeps 3 fewer mantissa bits, so its
  // error must be clearly larger (a BF16 path that silently ran TF32 or FP32
  // fails the second check) and still within the stated bound.
  const auto b = mini_resnet(Head::linear10);
  const double t1 = check_run(b, {2, 3, 37, 45}, Stage::output, Precision::tf32, 1, 5e-3, "tf32 128x64 tiles");
  const double b1 = check_run(b, {2, 3, 37, 45}, Stage::output, Precision::bf16, 1, sim::bf16_tolerance,
                              "bf16 128x64 tiles");
  const double t2 = check_run(b, {1, 3, 33, 29}, Stage::output, Precision::tf32, 132, 5e-3, "tf32 small tiles + split-K");
  const double b2 = check_run(b, {1, 3, 33, 29}, Stage::output, Precision::bf16, 132, sim::bf16_tolerance,
                              "bf16 small tiles + split-K");
  CHECK(b1 > 2 * t1);
  CHECK(b2 > 2 * t2);
  check_run(b, {2, 3, 37, 45}, Stage::features, Precision::bf16, 1, sim::bf16_tolerance, "bf16 features");
  check_run(mini_resnet(Head::sigmoid1), {2, 3, 40, 35}, Stage::output, Precision::bf16, 132, sim::bf16_tolerance,
            "bf16 linear(36,1) + sigmoid");
  check_run(mini_resnet(Head::dropout_softmax), {2, 3, 40, 35}, Stage::output, Precision::bf16, 132,
            sim::bf16_tolerance, "bf16 linear(36,100) + dropout + softmax");
  check_run(b, {2, 3, 37, 45}, Stage::output, Precision::bf16, 1, sim::bf16_tolerance, "legacy bf16 128x64 tiles",
            true);
}

TEST_CASE("simulated kernels: BF16 error of single layers against the FP64 oracle (the documented table)") {
  // One layer at a time, so the figure is the GEMM's own error: operands
  // rounded to BF16 (relative 2^-9 each), products exact, FP32 sums. The
  // error of a dot product grows with the reduction length K roughly as
  // sqrt(K) relative to its terms; relative to the largest output it stays
  // near 2^-9 for random data.
  struct Layer {
    int c_in, c_out, kernel;
    const char* what;
  };
  for (const Layer& l : {Layer{3, 64, 7, "conv 7x7, 3 -> 64 (K = 147)"}, Layer{64, 64, 3, "conv 3x3, 64 -> 64 (K = 576)"},
                         Layer{256, 256, 3, "conv 3x3, 256 -> 256 (K = 2304)"},
                         Layer{1024, 256, 1, "conv 1x1, 1024 -> 256 (K = 1024)"}}) {
    ProgramBuilder b(l.c_in);
    const int y = b.conv(0, l.c_in, l.c_out, l.kernel, 1, l.kernel / 2, true, "conv");
    b.p.features = b.p.output = y;
    b.p.features_end = b.p.ops.size();
    const double t = check_run(b, {1, static_cast<std::size_t>(l.c_in), 6, 7}, Stage::output, Precision::tf32, 1, 2e-3, l.what);
    const double e = check_run(b, {1, static_cast<std::size_t>(l.c_in), 6, 7}, Stage::output, Precision::bf16, 1, 1e-2, l.what);
    CHECK(e > 2 * t);
  }
  ProgramBuilder fc(512);
  const int f = fc.avg_pool(0, "avgpool");
  fc.p.features = f;
  fc.p.features_end = fc.p.ops.size();
  fc.p.output = fc.linear(f, 512, 1000, "fc");
  check_run(fc, {4, 512, 1, 1}, Stage::output, Precision::bf16, 1, 1e-2, "linear 512 -> 1000 (K = 512)");
}

TEST_CASE("simulated kernels: BF16 conversion of a tile matches cvt.rn.bf16.f32") {
  alignas(16) float src[8] = {1.0f, 1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -0.1f, 3.4e38f, 0.0f, -0.0f, 1e-40f};
  dev::Bf16 dst[8];
  dev::to_bf16_4(dst, src);
  dev::to_bf16_4(dst + 4, src + 4);
  for (int i = 0; i < 8; ++i) CHECK(dst[i].bits == bf16_bits(src[i]));
  CHECK(bf16_value(dst[1].bits) == 1.0f);                // tie to even
  CHECK(bf16_value(dst[2].bits) == 1.0f + 4.0f / 256);   // tie to even, upwards
}

TEST_CASE("simulated kernels: the legacy kernel family (CTNN_CUDA_LEGACY_TILES) still matches the oracle") {
  const auto b = mini_resnet(Head::linear10);
  check_run(b, {2, 3, 37, 45}, Stage::output, Precision::tf32, 1, 5e-3, "legacy tf32 128x64 tiles", true);
  check_run(b, {1, 3, 33, 29}, Stage::output, Precision::tf32, 132, 5e-3, "legacy tf32 small tiles + split-K", true);
  check_run(b, {2, 3, 37, 45}, Stage::output, Precision::fp32, 1, 1e-5, "legacy fp32 128x64 tiles", true);
}

TEST_CASE("simulated kernels: an exact TF32 fragment load of an unrounded value is detected") {
  // The default kernels load fragments without converting them, relying on
  // the plan's rounded weights and the in-shared-memory rounding of A. The
  // simulator's model of that load flags anything that is not already TF32,
  // which is what makes the inexact_tf32 == 0 checks above meaningful.
  std::vector<float> tile(16 * 8, 1.0f);
  dev::FragA fa;
  const long before = sim::inexact_tf32_seen();
  dev::frag_load_exact(fa, tile.data(), 8);
  CHECK(sim::inexact_tf32_seen() == before);
  tile[13] = 1.0f + 1.0f / (1 << 20);  // below TF32's 10 mantissa bits
  dev::frag_load_exact(fa, tile.data(), 8);
  CHECK(sim::inexact_tf32_seen() == before + 1);
  dev::round_tf32_4(tile.data() + 12);
  CHECK(tile[13] == 1.0f);
  dev::frag_load_exact(fa, tile.data(), 8);
  CHECK(sim::inexact_tf32_seen() == before + 1);
}

namespace {
// 130 output channels over several M and N tiles, with residual and relu, in
// three tile configurations.
void run_wide_conv_cases() {
  // 130 output channels: two 128-wide N tiles, stored as 132 channels.
  ProgramBuilder b(20);
  const int r = b.conv(0, 20, 130, 1, 1, 0, true, "proj");
  const int y = b.conv(0, 20, 130, 3, 1, 1, true, "conv");
  b.bn(y, 130, "bn");
  b.add(y, r, "add");
  b.unary(OpKind::relu, y, "relu");
  b.p.features = b.p.output = y;
  b.p.features_end = b.p.ops.size();
  check_run(b, {2, 20, 13, 11}, Stage::output, Precision::fp32, 1, 1e-5, "conv 20->130 3x3 + residual");
  check_run(b, {2, 20, 13, 11}, Stage::output, Precision::fp32, 132, 1e-5, "same, small tiles");
  check_run(b, {1, 20, 5, 7}, Stage::output, Precision::tf32, 1, 5e-3, "same, tf32");
}
}  // namespace

TEST_CASE("simulated kernels: one wide conv across several M and N tiles, with residual and relu") {
  run_wide_conv_cases();
}

TEST_CASE("simulated kernels: stride-2 3x3 and max pool with padding at odd sizes") {
  ProgramBuilder b(5);
  const int y = b.conv(0, 5, 12, 3, 2, 1, false, "conv");
  b.unary(OpKind::relu, y, "relu");
  const int p = b.max_pool(y, 3, 2, 1, "pool");
  b.p.features = b.p.output = p;
  b.p.features_end = b.p.ops.size();
  for (Extents e : {Extents{1, 5, 1, 1}, Extents{2, 5, 2, 3}, Extents{1, 5, 9, 4}})
    check_run(b, e, Stage::output, Precision::fp32, 132, 1e-5, "conv/2 + pool (spatial result, NCHW out)");
}

TEST_CASE("simulated kernels: every tile configuration and split-K are exercised") {
  // ctest runs each test case in its own process, so this case runs its own
  // selection rather than relying on the cases above.
  configs_run[0] = configs_run[1] = configs_run[2] = splits_run = 0;
  const auto b = mini_resnet(Head::linear10);
  check_run(b, {2, 3, 37, 45}, Stage::output, Precision::fp32, 1, 1e-5, "128-row tiles");
  check_run(b, {1, 3, 33, 29}, Stage::output, Precision::fp32, 132, 1e-5, "small tiles + split-K");
  run_wide_conv_cases();
  CHECK(configs_run[0] > 0);
  CHECK(configs_run[1] > 0);
  CHECK(configs_run[2] > 0);
  CHECK(splits_run > 0);
}

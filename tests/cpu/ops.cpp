// The CPU backend against the naive double-precision evaluator in naive.hpp,
// op by op and on small ResNet-shaped programs, at odd sizes that exercise
// the tile edges (rows narrower than a tile, shifted last tiles, odd channel
// block counts, padding channels).
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "ctnn/backend/cpu/cpu.hpp"
#include "naive.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

using namespace ctnn;
using ctnn::test::reference_run;
using ctnn::test::ProgramBuilder;
using ctnn::test::random_input;
using ctnn::test::relative_error;

namespace {

double cpu_error(const Program& p, const std::vector<float>& params, Extents in, Stage stage = Stage::output,
             unsigned seed = 7) {
  backend::Cpu::Executor ex(p, params);
  auto ctx = ex.make_context({in.n, in.h, in.w});
  const Tensor x = random_input(in, seed);
  const ConstTensorView y = ex.run(x, ctx, stage);
  const std::size_t end = stage == Stage::output ? p.ops.size() : p.features_end;
  const Tensor ref = reference_run(p, params, x, end, stage == Stage::output ? p.output : p.features);
  REQUIRE(y.shape == ref.shape());
  return relative_error(y, ref);
}

struct ConvCase {
  int cin, cout, k, s, pad;
  std::size_t n, h, w;
  bool bias;
};

}  // namespace

TEST_CASE("cpu conv matches naive loops across kernels, strides, paddings and odd sizes") {
  const ConvCase cases[] = {
      {3, 64, 7, 2, 3, 2, 37, 45, false},   // RGB stem
      {3, 64, 7, 2, 3, 1, 225, 199, false}, // stem at a large odd size
      {1, 16, 3, 1, 1, 2, 28, 28, false},   // one-channel input (generic kernel)
      {16, 32, 3, 1, 1, 1, 9, 10, true},
      {64, 64, 3, 1, 1, 2, 14, 15, false},
      {64, 128, 3, 2, 1, 1, 13, 17, false},
      {64, 128, 1, 2, 0, 2, 13, 17, false},  // downsample
      {256, 64, 1, 1, 0, 1, 7, 9, false},
      {20, 40, 3, 1, 1, 1, 6, 5, true},     // channels not a multiple of the block
      {24, 48, 5, 3, 2, 2, 11, 13, true},   // stride 3 (generic kernel)
      {32, 16, 3, 1, 0, 1, 3, 3, false},    // one output pixel
      {16, 16, 3, 2, 1, 1, 1, 1, false},    // 1x1 input
      {8, 8, 3, 1, 1, 3, 2, 30, false},     // wide and flat
      {4, 24, 3, 1, 1, 1, 40, 2, false},    // narrow and tall
  };
  for (const ConvCase& c : cases) {
    CAPTURE(c.cin);
    CAPTURE(c.cout);
    CAPTURE(c.k);
    CAPTURE(c.s);
    CAPTURE(c.h);
    CAPTURE(c.w);
    ProgramBuilder b(c.cin);
    const int y = b.conv(0, c.cin, c.cout, c.k, c.s, c.pad, c.bias);
    const Program p = b.finish(y, y);
    CHECK(cpu_error(p, b.params, {c.n, static_cast<std::size_t>(c.cin), c.h, c.w}) < 1e-5);
  }
}

// F(4x4, 3x3) loses a few bits to its larger transform coefficients: ~7e-6
// relative to the largest output at 128 channels (direct: ~1e-6).
TEST_CASE("cpu Winograd stays within 2e-5 of naive loops (direct: 1e-5)") {
  struct Case {
    int cin, cout;
    std::size_t n, h, w;
  };
  for (const Case& c : {Case{64, 64, 2, 15, 17}, Case{128, 128, 1, 28, 28}, Case{256, 256, 1, 14, 13},
                        Case{16, 40, 3, 1, 1}, Case{32, 24, 1, 2, 9}, Case{64, 128, 2, 7, 6}}) {
    CAPTURE(c.cin);
    CAPTURE(c.h);
    CAPTURE(c.w);
    ProgramBuilder b(c.cin, 21);
    const int x = b.conv(0, c.cin, c.cout, 3, 1, 1);
    b.bn(x, c.cout);
    const int r = b.conv(0, c.cin, c.cout, 1, 1, 0);
    b.add(x, r);
    b.relu(x);
    const Program p = b.finish(x, x);
    const Extents in{c.n, static_cast<std::size_t>(c.cin), c.h, c.w};
    const Tensor input = random_input(in, 4);
    const Tensor ref = reference_run(p, b.params, input, p.ops.size(), x);
    backend::Cpu::Executor wino(p, b.params), direct(p, b.params, backend::cpu::Options{.winograd = false});
    auto cw = wino.make_context({in.n, in.h, in.w});
    auto cd = direct.make_context({in.n, in.h, in.w});
    const double ew = relative_error(wino.run(input, cw, Stage::output), ref);
    const double ed = relative_error(direct.run(input, cd, Stage::output), ref);
    MESSAGE("winograd error " << ew << ", direct error " << ed);
    CHECK(ew < 2e-5);
    CHECK(ed < 1e-5);
  }
}

TEST_CASE("cpu every small image size goes through the tile edges correctly") {
  // 3x3 stride 1 (Winograd on wide vectors), stride 2 and a 1x1 downsample
  // with a fused residual, for every height and width from 1 to 11.
  ProgramBuilder b(16, 5);
  const int x = b.conv(0, 16, 32, 3, 1, 1);
  b.bn(x, 32);
  b.relu(x);
  const int y = b.conv(x, 32, 32, 3, 2, 1);
  const int d = b.conv(x, 32, 32, 1, 2, 0);
  b.add(y, d);
  b.relu(y);
  const Program p = b.finish(y, y);
  backend::Cpu::Executor ex(p, b.params);
  auto ctx = ex.make_context({1, 11, 11});
  for (std::size_t h = 1; h <= 11; ++h)
    for (std::size_t w = 1; w <= 11; ++w) {
      CAPTURE(h);
      CAPTURE(w);
      const Tensor in = random_input({1, 16, h, w}, static_cast<unsigned>(h * 16 + w));
      const Tensor ref = reference_run(p, b.params, in, p.ops.size(), y);
      CHECK(relative_error(ex.run(in, ctx, Stage::output), ref) < 2e-5);
    }
}

TEST_CASE("cpu fuses conv + batch norm + residual add + relu") {
  for (std::size_t size : {5, 23}) {
    ProgramBuilder b(16);
    const int x = b.conv(0, 16, 32, 3, 1, 1);
    b.bn(x, 32);
    b.relu(x);
    const int y = b.conv(x, 32, 32, 3, 1, 1);
    b.bn(y, 32);
    b.add(y, x);
    b.relu(y);
    const int z = b.conv(y, 32, 48, 3, 2, 1);  // add without relu
    b.bn(z, 48);
    const int r = b.conv(y, 32, 48, 1, 2, 0);
    b.bn(r, 48);
    b.add(z, r);
    const Program p = b.finish(z, z);
    CHECK(cpu_error(p, b.params, {2, 16, size, size + 2}) < 1e-5);
  }
}

TEST_CASE("cpu grouped convolutions match the reference for every group width") {
  // {in, out, groups, kernel, stride}: 4-channel groups (several groups per
  // block), 3-channel groups (no block-aligned slice: one dense slice),
  // one channel per group, and groups wider than a block pair.
  const int cases[][5] = {{64, 64, 16, 3, 1}, {64, 128, 16, 3, 2}, {24, 24, 8, 3, 1}, {32, 32, 32, 3, 1},
                          {128, 128, 2, 3, 1}, {48, 96, 3, 1, 1}};
  for (const auto& c : cases) {
    INFO("in ", c[0], " out ", c[1], " groups ", c[2], " kernel ", c[3], " stride ", c[4]);
    ProgramBuilder b(c[0]);
    const int y = b.conv(0, c[0], c[1], c[3], c[4], c[3] / 2, true, c[2]);
    b.bn(y, c[1]);
    b.relu(y);
    const Program p = b.finish(y, y);
    CHECK(cpu_error(p, b.params, {2, static_cast<std::size_t>(c[0]), 9, 7}) < 1e-5);
  }
  // A grouped conv with BatchNorm, the residual add and ReLU fused, as in a ResNeXt block.
  ProgramBuilder b(32);
  const int x = b.conv(0, 32, 64, 1, 1, 0);
  const int y = b.conv(x, 64, 64, 3, 1, 1, false, 16);
  b.bn(y, 64);
  b.add(y, x);
  b.relu(y);
  const Program p = b.finish(y, y);
  CHECK(cpu_error(p, b.params, {2, 32, 11, 10}) < 1e-5);
}

TEST_CASE("cpu runs unfused element-wise ops") {
  ProgramBuilder b(3);
  const int n = b.bn(0, 3, /*fresh=*/true);  // batch norm on the (narrow) input: a new value
  b.relu(n);
  const int m = b.max_pool(n, 3, 2, 1);
  const int x = b.conv(m, 3, 20, 3, 1, 1, true);
  b.sigmoid(x);              // not fusable: stays a step
  b.bn(x, 20);
  const int y = b.conv(x, 20, 20, 1, 1, 0);
  b.relu(y);
  b.add(y, x);               // relu before add: standalone add
  b.relu(y);
  const int g = b.global_avg_pool(y);
  b.bn(g, 20);               // batch norm on plain features
  const Program p = b.finish(g, g);
  CHECK(cpu_error(p, b.params, {2, 3, 11, 9}) < 1e-5);
}

TEST_CASE("programs that rewrite the caller's input in place are refused") {
  ProgramBuilder b(3);
  b.relu(0);
  const int x = b.conv(0, 3, 4, 3, 1, 1);
  const Program p = b.finish(x, x);
  CHECK_THROWS_WITH_AS(backend::Cpu::Executor(p, b.params), doctest::Contains("writes the network input (value 0)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(backend::Reference::Executor(p, b.params), doctest::Contains("layer 'relu' (relu)"),
                       std::invalid_argument);
}

TEST_CASE("cpu element-wise ops on the caller's input write a new value") {
  ProgramBuilder b(3);
  const int n = b.bn(0, 3, /*fresh=*/true);
  const int x = b.conv(n, 3, 8, 3, 1, 1);
  const int y = b.conv(0, 3, 8, 1, 1, 0);  // the untouched input is still readable
  b.add(x, y);
  const Program p = b.finish(x, x);
  CHECK(cpu_error(p, b.params, {2, 3, 9, 8}) < 1e-5);
}

TEST_CASE("cpu converts between layouts for unusual op orders") {
  // A convolution reading plain pooled features (with padding), a linear layer
  // reading a blocked 1x1 value, and a linear layer feeding a convolution.
  ProgramBuilder b(5);
  const int x = b.conv(0, 5, 20, 3, 2, 1, true);
  const int g = b.global_avg_pool(x);
  const int c = b.conv(g, 20, 18, 3, 1, 1, true);
  b.relu(c);
  const int fc = b.linear(c, 18, 7);
  const int c2 = b.conv(fc, 7, 3, 1, 1, 0, true);
  b.softmax(c2);
  const Program p = b.finish(g, c2);
  CHECK(cpu_error(p, b.params, {2, 5, 9, 7}) < 1e-5);
  CHECK(cpu_error(p, b.params, {2, 5, 9, 7}, Stage::features) < 1e-5);
}

TEST_CASE("cpu conv + max pooling fused (stem) matches naive loops") {
  struct Case {
    int cout, k, s, pad, pk, ps, pp;
    std::size_t h, w;
  };
  for (const Case& c : {Case{16, 7, 2, 3, 3, 2, 1, 37, 45}, Case{24, 3, 1, 1, 2, 2, 0, 9, 7},
                        Case{48, 3, 2, 1, 3, 1, 1, 5, 4}, Case{64, 7, 2, 3, 3, 2, 1, 2, 3}}) {
    CAPTURE(c.cout);
    CAPTURE(c.h);
    CAPTURE(c.w);
    ProgramBuilder b(3, 17);
    const int x = b.conv(0, 3, c.cout, c.k, c.s, c.pad);
    b.bn(x, c.cout);
    const int m = b.max_pool(x, c.pk, c.ps, c.pp);  // no relu: negative values must survive
    const Program p = b.finish(m, m);
    CHECK(cpu_error(p, b.params, {2, 3, c.h, c.w}) < 1e-5);
  }
  // The convolution's output is read again later: no fusion, same answer.
  ProgramBuilder b(3, 18);
  const int x = b.conv(0, 3, 16, 3, 1, 1);
  b.relu(x);
  const int m = b.max_pool(x, 3, 1, 1);
  b.add(m, x);
  const Program p = b.finish(m, m);
  CHECK(cpu_error(p, b.params, {1, 3, 8, 9}) < 1e-5);
}

TEST_CASE("cpu max pooling treats padding as -inf") {
  ProgramBuilder b(24);
  const int m = b.max_pool(0, 3, 2, 1);
  const int m2 = b.max_pool(m, 2, 2, 0);
  const Program p = b.finish(m2, m2);
  CHECK(cpu_error(p, b.params, {2, 24, 13, 10}) == 0.0);  // inputs are mostly negative at the borders too
}

TEST_CASE("cpu heads: linear, sigmoid, dropout + softmax, features stage") {
  for (int head = 0; head < 3; ++head) {
    CAPTURE(head);
    ProgramBuilder b(3);
    const int x = b.conv(0, 3, 32, 3, 2, 1);
    b.bn(x, 32);
    b.relu(x);
    const int g = b.global_avg_pool(x);
    int out = 0;
    if (head == 0) out = b.linear(g, 32, 10);
    if (head == 1) {
      out = b.linear(g, 32, 1);
      b.sigmoid(out);
    }
    if (head == 2) {
      out = b.linear(g, 32, 37);
      b.dropout(out);
      b.softmax(out);
    }
    const Program p = b.finish(g, out);
    CHECK(cpu_error(p, b.params, {3, 3, 17, 19}) < 1e-5);
    CHECK(cpu_error(p, b.params, {3, 3, 17, 19}, Stage::features) < 1e-5);
  }
}

namespace {
// A small ResNet: stem, max-pool, one basic block, one downsampling block.
ProgramBuilder tiny_resnet() {
  ProgramBuilder b(3, 11);
  const int s = b.conv(0, 3, 32, 7, 2, 3);
  b.bn(s, 32);
  b.relu(s);
  const int m = b.max_pool(s, 3, 2, 1);
  const int a = b.conv(m, 32, 32, 3, 1, 1);
  b.bn(a, 32);
  b.relu(a);
  const int a2 = b.conv(a, 32, 32, 3, 1, 1);
  b.bn(a2, 32);
  b.add(a2, m);
  b.relu(a2);
  const int c = b.conv(a2, 32, 64, 3, 2, 1);
  b.bn(c, 64);
  b.relu(c);
  const int c2 = b.conv(c, 64, 64, 3, 1, 1);
  b.bn(c2, 64);
  const int d = b.conv(a2, 32, 64, 1, 2, 0);
  b.bn(d, 64);
  b.add(c2, d);
  b.relu(c2);
  const int g = b.global_avg_pool(c2);
  const int fc = b.linear(g, 64, 10);
  b.p = b.finish(g, fc);
  return b;
}
}  // namespace

TEST_CASE("cpu tiny resnet matches naive loops; threads give identical bits") {
  ProgramBuilder b = tiny_resnet();
  CHECK(cpu_error(b.p, b.params, {2, 3, 37, 45}) < 1e-5);
  CHECK(cpu_error(b.p, b.params, {1, 3, 64, 64}) < 1e-5);

#if defined(_OPENMP)
  backend::Cpu::Executor ex(b.p, b.params);
  const Tensor x = random_input({2, 3, 45, 37}, 3);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  auto c1 = ex.make_context({2, 45, 37});
  const Tensor y1 = Tensor::copy_of(ex.run(x, c1, Stage::output));
  omp_set_num_threads(2);
  auto c2 = ex.make_context({2, 45, 37});
  const ConstTensorView y2 = ex.run(x, c2, Stage::output);
  omp_set_num_threads(saved);
  REQUIRE(y1.shape() == y2.shape);
  CHECK(std::memcmp(y1.data(), y2.data, y1.size() * sizeof(float)) == 0);
#endif
}

TEST_CASE("cpu contexts grow past their capacity and reject bad inputs") {
  ProgramBuilder b = tiny_resnet();
  backend::Cpu::Executor ex(b.p, b.params);
  auto small = ex.make_context({1, 16, 16});
  const Tensor big = random_input({2, 3, 40, 33}, 5);
  const Tensor ref = reference_run(b.p, b.params, big, b.p.ops.size(), b.p.output);
  CHECK(relative_error(ex.run(big, small, Stage::output), ref) < 1e-5);
  backend::Cpu::Executor::Context empty;
  CHECK(relative_error(ex.run(big, empty, Stage::output), ref) < 1e-5);

  const Tensor gray = random_input({1, 1, 32, 32}, 5);
  CHECK_THROWS_WITH_AS(ex.run(gray, small, Stage::output), doctest::Contains("channels"), std::invalid_argument);
  const Tensor tiny = random_input({1, 3, 2, 2}, 5);
  CHECK_NOTHROW(ex.run(tiny, small, Stage::output));  // padding keeps 2x2 valid down to 1x1
  CHECK(ex.describe().find("cpu: ") == 0);
}

TEST_CASE("cpu rejects malformed programs with the op's name") {
  ProgramBuilder b(3);
  const int x = b.conv(0, 3, 8, 3, 1, 1);
  Program p = b.finish(x, x);
  p.ops[0].in_channels = 4;
  CHECK_THROWS_WITH_AS(backend::Cpu::Executor(p, b.params), doctest::Contains("conv0"), std::invalid_argument);
  p.ops[0].in_channels = 3;
  std::vector<float> short_params(b.params.begin(), b.params.end() - 1);
  CHECK_THROWS_WITH_AS(backend::Cpu::Executor(p, short_params), doctest::Contains("outside the parameter arena"),
                       std::invalid_argument);
}

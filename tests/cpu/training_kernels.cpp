// The CPU backend's convolution training kernels one op at a time, against
// the reference backend's loops (double accumulation): forward, input
// gradient (plain or accumulated into an existing one) and weight/bias
// gradients, over the geometries that select each path: the direct
// blocked-layout kernels (channels that fill vector blocks; "same" stride-1
// convs also for the input gradient), the channels-last weight-gradient
// packing, and the im2col/col2im GEMM path. Unlike whole-network tests, a
// single op has no trajectory to amplify float rounding, so the bounds are
// tight. Built for every vector width (tests/cpu/CMakeLists.txt).
#include <doctest/doctest.h>

#include <ctnn/backend/reference/ops.hpp>
#include <ctnn/ctnn.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace ctnn;

namespace {

struct Case {
  int cin, cout, kernel, stride, padding;
  std::size_t n, h, w;
  bool bias;
  int groups = 1;
};

std::vector<float> random(std::size_t count, std::uint64_t seed) {
  SplitMix64 rng(seed);
  std::vector<float> v(count);
  for (float& x : v) x = static_cast<float>(2 * rng.uniform() - 1);
  return v;
}

// max |a - b| over max |b|: rounding of float sums of up to a few thousand terms.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 1e-30;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - b[i]));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / scale;
}

void check_conv(const Case& c) {
  INFO("conv " << c.cin << "->" << c.cout << " k" << c.kernel << " s" << c.stride << " p" << c.padding << " g"
               << c.groups << " on " << c.n << "x" << c.h << "x" << c.w << std::string(c.bias ? " with bias" : ""));
  Op op;
  op.kind = c.groups > 1 ? OpKind::grouped_conv : OpKind::conv;
  op.groups = c.groups;
  op.input = 0;
  op.output = 1;
  op.in_channels = c.cin;
  op.out_channels = c.cout;
  op.kernel = c.kernel;
  op.stride = c.stride;
  op.padding = c.padding;
  op.name = "conv";
  const std::size_t weights = static_cast<std::size_t>(c.cout * (c.cin / c.groups) * c.kernel * c.kernel);
  op.weight = 0;
  if (c.bias) op.bias = weights;
  Program p;
  p.ops = {op};
  p.values = 2;
  p.features = p.output = 1;
  p.features_end = 1;
  p.input_channels = c.cin;

  const std::size_t oh = (c.h + 2 * c.padding - c.kernel) / c.stride + 1;
  const std::size_t ow = (c.w + 2 * c.padding - c.kernel) / c.stride + 1;
  const Extents xe{c.n, static_cast<std::size_t>(c.cin), c.h, c.w};
  const Extents ye{c.n, static_cast<std::size_t>(c.cout), oh, ow};
  const std::vector<float> params = random(weights + (c.bias ? c.cout : 0), 1);
  const std::vector<float> x = random(xe.count(), 2), dy = random(ye.count(), 3), dx0 = random(xe.count(), 4);

  backend::cpu::TrainingKernels<backend::cpu::default_arch> kernels;
  const train::Tape tape = train::make_tape(p, 0, 1);
  const std::vector<Extents> extents{xe, ye};
  kernels.reserve(p, tape, extents);

  std::vector<double> plane(std::max(c.h * c.w, oh * ow));
  // Forward.
  std::vector<float> y(ye.count()), y_ref(ye.count());
  kernels.conv_forward(op, {x.data(), xe}, {y.data(), ye}, params.data());
  backend::reference_ops::conv_forward(op, {x.data(), xe}, {y_ref.data(), ye}, params.data(), plane);
  CHECK(relative_error(y, y_ref) < 2e-6);

  // Input gradient, assigned and accumulated; weight and bias gradients.
  for (const bool accumulate : {false, true}) {
    INFO("input gradient " << (accumulate ? "accumulated" : "assigned"));
    std::vector<float> dx = dx0, dx_ref = dx0;
    std::vector<float> grads(params.size(), 0.25f), grads_ref(params.size(), 0.25f);
    kernels.conv_backward(op, {x.data(), xe}, {dy.data(), ye}, {dx.data(), xe}, accumulate, params.data(),
                          grads.data());
    backend::reference_ops::conv_backward_data(op, {dy.data(), ye}, {dx_ref.data(), xe}, accumulate, params.data(),
                                               plane);
    backend::reference_ops::conv_backward_weights(op, {x.data(), xe}, {dy.data(), ye}, grads_ref.data());
    CHECK(relative_error(dx, dx_ref) < 2e-6);
    CHECK(relative_error(grads, grads_ref) < 2e-6);
  }
}

}  // namespace

TEST_CASE("cpu conv training kernels match the reference loops, op by op") {
  const Case cases[] = {
      {16, 16, 3, 1, 1, 3, 11, 9, false},   // "same" 3x3: direct forward and input gradient
      {16, 32, 3, 2, 1, 2, 7, 5, false},    // strided, odd sizes: direct forward, col2im input gradient
      {32, 32, 3, 1, 1, 2, 3, 3, true},     // a 3x3 image narrower than every register tile, with a bias
      {16, 32, 1, 2, 0, 3, 9, 6, false},    // strided 1x1 (ResNet downsample)
      {32, 16, 1, 1, 0, 2, 5, 7, false},    // pointwise: the activation is the column matrix
      {16, 16, 5, 1, 2, 2, 9, 8, false},    // 5x5 "same"
      {16, 16, 3, 1, 0, 2, 8, 7, false},    // unpadded 3x3: the im2col/col2im input gradient
      {3, 16, 3, 1, 1, 2, 10, 9, false},    // an RGB stem: the GEMM path throughout
      {6, 10, 3, 2, 1, 3, 9, 9, true},      // channels that fill no vector block
      {16, 32, 3, 1, 1, 2, 28, 19, false},  // rows of whole vector tiles and a tail: the reorders' tiled path
      {32, 16, 3, 2, 1, 2, 35, 33, false},  // the same, strided
      // Weight gradients with images stacked along the GEMM's depth and dW cut into column blocks:
      {32, 48, 3, 1, 1, 40, 2, 2, true},    // 2x2 maps: all 40 images in one product, 3 column blocks, a bias
      {16, 8, 3, 1, 1, 200, 7, 7, false},   // 2 chunks of 100 images, stacked 6 at a time (a ragged last group)
      {32, 24, 1, 1, 0, 30, 3, 3, false},   // pointwise, stacked 29 + 1 (the last one on its own)
      {32, 16, 3, 2, 1, 20, 4, 4, false},   // strided, 2x2 output maps, 20 images in one product
      // Weight gradients from the blocked input, register accumulators over each image's pixels
      // (maps of at least 128 pixels, two chunks or more):
      {16, 16, 3, 1, 1, 8, 16, 16, true},   // "same" 3x3, with a bias
      {16, 32, 3, 2, 1, 16, 24, 22, false}, // strided
      {16, 32, 1, 2, 0, 10, 32, 30, false}, // strided 1x1
      {16, 16, 5, 1, 2, 4, 24, 24, false},  // 5x5
      // Forward and input gradient over images set side by side as one product's columns (small maps),
      // the rows cut into blocks for the threads:
      {32, 96, 3, 1, 1, 45, 2, 2, true},    // 2x2 maps: 32 images per product, a ragged last stack, a bias
      {64, 80, 3, 2, 1, 21, 5, 3, false},   // strided, 3x2 outputs: col2im over stacked images
      {48, 72, 1, 2, 0, 13, 7, 5, false},   // strided 1x1 on a small map
      {32, 40, 1, 1, 0, 17, 3, 5, true},    // pointwise, stacked
      {16, 16, 3, 1, 1, 11, 7, 7, false},   // "same" 3x3 on 7x7: stacked rather than direct
      {24, 36, 3, 1, 1, 9, 4, 6, false, 6}, // grouped (6 groups of 4 -> 6), stacked
      {32, 32, 3, 2, 1, 5, 9, 9, true, 8},  // grouped and strided, one image per product
  };
  for (const Case& c : cases) check_conv(c);
}

// Per-op throughput of the CPU backend's convolution training kernels on the
// distinct convolutions of the training benchmarks' networks (ResNet-20 at
// 1x28x28 batch 128, ResNet-18 at 3x64x64 batch 64): forward, input gradient
// and weight gradient of each op alone, NCHW in and out as the training
// executor calls them. GFLOP/s count the direct convolution's FLOPs; the
// fraction is of this machine's measured FMA peak (fma_peak.hpp).
//
//   ctnn-bench-train-layers [--threads T] [--runs N] [--json]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "bench_threads.hpp"
#include "fma_peak.hpp"
#include "timing.hpp"


namespace {

using Arch = ctnn::backend::cpu::default_arch;

struct Shape {
  const char* name;
  int cin, cout, k, s;
  std::size_t batch, size;  // input height = width
};

const Shape shapes[] = {
    {"r20 3x3 16->16 @28", 16, 16, 3, 1, 128, 28},
    {"r20 3x3/2 16->32 @28", 16, 32, 3, 2, 128, 28},
    {"r20 3x3 32->32 @14", 32, 32, 3, 1, 128, 14},
    {"r20 3x3/2 32->64 @14", 32, 64, 3, 2, 128, 14},
    {"r20 3x3 64->64 @7", 64, 64, 3, 1, 128, 7},
    {"r20 1x1/2 16->32 @28 (ds)", 16, 32, 1, 2, 128, 28},
    {"r18 3x3 64->64 @16", 64, 64, 3, 1, 64, 16},
    {"r18 3x3/2 64->128 @16", 64, 128, 3, 2, 64, 16},
    {"r18 3x3 128->128 @8", 128, 128, 3, 1, 64, 8},
    {"r18 3x3/2 128->256 @8", 128, 256, 3, 2, 64, 8},
    {"r18 3x3 256->256 @4", 256, 256, 3, 1, 64, 4},
    {"r18 3x3/2 256->512 @4", 256, 512, 3, 2, 64, 4},
    {"r18 3x3 512->512 @2", 512, 512, 3, 1, 64, 2},
    {"r18 1x1/2 256->512 @4 (ds)", 256, 512, 1, 2, 64, 4},
};

struct Times {
  double forward, input_gradient, weight_gradient, flops;
};

Times time_op(const Shape& sh, int runs) {
  ctnn::Op op;
  op.kind = ctnn::OpKind::conv;
  op.input = 0;
  op.output = 1;
  op.in_channels = sh.cin;
  op.out_channels = sh.cout;
  op.kernel = sh.k;
  op.stride = sh.s;
  op.padding = sh.k / 2;
  op.weight = 0;
  op.name = sh.name;
  ctnn::Program p;
  p.ops = {op};
  p.values = 2;
  p.features = p.output = 1;
  p.features_end = 1;
  p.input_channels = sh.cin;
  const std::size_t out = (sh.size + 2 * static_cast<std::size_t>(op.padding) - static_cast<std::size_t>(sh.k)) /
                              static_cast<std::size_t>(sh.s) +
                          1;
  const ctnn::Extents xe{sh.batch, static_cast<std::size_t>(sh.cin), sh.size, sh.size};
  const ctnn::Extents ye{sh.batch, static_cast<std::size_t>(sh.cout), out, out};
  ctnn::SplitMix64 rng(1);
  const auto random = [&](std::size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(rng.uniform() - 0.5);
    return v;
  };
  const std::vector<float> w = random(static_cast<std::size_t>(sh.cout * sh.cin * sh.k * sh.k));
  const std::vector<float> x = random(xe.count()), dy = random(ye.count());
  std::vector<float> y(ye.count()), dx(xe.count()), grads(w.size());

  ctnn::backend::cpu::TrainingKernels<Arch> kernels;
  const ctnn::train::Tape tape = ctnn::train::make_tape(p, 0, 1);
  const std::vector<ctnn::Extents> extents{xe, ye};
  kernels.reserve(p, tape, extents);
  Times t{};
  t.flops = 2.0 * static_cast<double>(ye.count()) * sh.cin * sh.k * sh.k;
  t.forward = ctnn::bench::median_seconds(
      runs, [&] { kernels.conv_forward(op, {x.data(), xe}, {y.data(), ye}, w.data()); });
  t.weight_gradient = ctnn::bench::median_seconds(runs, [&] {
    kernels.conv_backward(op, {x.data(), xe}, {dy.data(), ye}, {nullptr, xe}, false, w.data(), grads.data());
  });
  const double both = ctnn::bench::median_seconds(runs, [&] {
    kernels.conv_backward(op, {x.data(), xe}, {dy.data(), ye}, {dx.data(), xe}, false, w.data(), grads.data());
  });
  t.input_gradient = std::max(0.0, both - t.weight_gradient);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, runs = 15;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") json = true;
    else if (i + 1 < argc && a == "--threads") threads = std::atoi(argv[++i]);
    else if (i + 1 < argc && a == "--runs") runs = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: ctnn-bench-train-layers [--threads T] [--runs N] [--json]\n");
      return 2;
    }
  }
  threads = ctnn::bench::use_threads(threads);
  if (runs <= 0) return 2;
  const double peak = ctnn::bench::fma_peak_gflops(threads);
  if (!json)
    std::printf("%s, %d threads, FMA peak %.1f GFLOP/s; ms and %% of peak (the input gradient is the backward pass"
                " with it minus the one without)\n%-28s %16s %16s %16s\n",
                Arch::name(), threads, peak, "conv (batch as in the network)", "forward", "input gradient",
                "weight gradient");
  for (const Shape& sh : shapes) {
    const Times t = time_op(sh, runs);
    const auto pct = [&](double s) { return s > 0 ? 100.0 * t.flops / s / 1e9 / peak : 0.0; };
    if (json)
      std::printf("{\"layer\": \"%s\", \"threads\": %d, \"forward_ms\": %.4f, \"forward_percent\": %.2f, "
                  "\"input_gradient_ms\": %.4f, \"input_gradient_percent\": %.2f, \"weight_gradient_ms\": %.4f, "
                  "\"weight_gradient_percent\": %.2f}\n",
                  sh.name, threads, t.forward * 1e3, pct(t.forward), t.input_gradient * 1e3, pct(t.input_gradient),
                  t.weight_gradient * 1e3, pct(t.weight_gradient));
    else
      std::printf("%-28s %8.3f %5.1f%% %8.3f %5.1f%% %8.3f %5.1f%%\n", sh.name, t.forward * 1e3, pct(t.forward),
                  t.input_gradient * 1e3, pct(t.input_gradient), t.weight_gradient * 1e3, pct(t.weight_gradient));
  }
  return 0;
}

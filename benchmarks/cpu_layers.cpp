// Per-layer throughput of the CPU backend's convolution kernels on the
// ResNet-18/50 shapes at 224x224: GFLOP/s and the fraction of the measured
// FMA peak. Times the conv step alone (blocked layout in and out, BatchNorm
// folded, ReLU fused), as it runs inside a network.
//
//   ctnn-bench-cpu-layers [--batch B] [--threads T] [--runs N] [--json]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <ctnn/backend/cpu/cpu.hpp>

#include "bench_threads.hpp"
#include "fma_peak.hpp"
#include "timing.hpp"

namespace {

using Arch = ctnn::backend::cpu::default_arch;
using namespace ctnn::backend::cpu;

struct Shape {
  const char* name;
  int cin, cout, k, s, pad, size;
};

// The distinct convolutions of ResNet-18 and ResNet-50 at 224x224 input.
const Shape shapes[] = {
    {"stem 7x7/2 3->64 @224", 3, 64, 7, 2, 3, 224},
    {"3x3 64->64 @56", 64, 64, 3, 1, 1, 56},
    {"3x3/2 64->128 @56", 64, 128, 3, 2, 1, 56},
    {"3x3 128->128 @28", 128, 128, 3, 1, 1, 28},
    {"3x3/2 128->256 @28", 128, 256, 3, 2, 1, 28},
    {"3x3 256->256 @14", 256, 256, 3, 1, 1, 14},
    {"3x3/2 256->512 @14", 256, 512, 3, 2, 1, 14},
    {"3x3 512->512 @7", 512, 512, 3, 1, 1, 7},
    {"1x1/2 64->128 @56 (ds)", 64, 128, 1, 2, 0, 56},
    {"1x1/2 128->256 @28 (ds)", 128, 256, 1, 2, 0, 28},
    {"1x1/2 256->512 @14 (ds)", 256, 512, 1, 2, 0, 14},
    {"r50 1x1 64->256 @56", 64, 256, 1, 1, 0, 56},
    {"r50 1x1 256->64 @56", 256, 64, 1, 1, 0, 56},
    {"r50 1x1 256->128 @56", 256, 128, 1, 1, 0, 56},
    {"r50 3x3/2 128->128 @56", 128, 128, 3, 2, 1, 56},
    {"r50 1x1 512->128 @28", 512, 128, 1, 1, 0, 28},
    {"r50 1x1 128->512 @28", 128, 512, 1, 1, 0, 28},
    {"r50 1x1 1024->256 @14", 1024, 256, 1, 1, 0, 14},
    {"r50 1x1 256->1024 @14", 256, 1024, 1, 1, 0, 14},
    {"r50 1x1 2048->512 @7", 2048, 512, 1, 1, 0, 7},
    {"r50 1x1 512->2048 @7", 512, 2048, 1, 1, 0, 7},
    {"r50 1x1/2 512->1024 @28 (ds)", 512, 1024, 1, 2, 0, 28},
};

double time_layer(const Shape& sh, std::size_t batch, int runs, bool winograd, int threads, double& flops) {
  // conv -> bn -> relu, lowered and packed by the backend's own planner.
  ctnn::Program p;
  p.input_channels = sh.cin;
  std::vector<float> params;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  ctnn::Op conv;
  conv.kind = ctnn::OpKind::conv;
  conv.input = 0;
  conv.output = p.new_value();
  conv.in_channels = sh.cin;
  conv.out_channels = sh.cout;
  conv.kernel = sh.k;
  conv.stride = sh.s;
  conv.padding = sh.pad;
  conv.weight = 0;
  params.resize(static_cast<std::size_t>(sh.cout * sh.cin * sh.k * sh.k));
  for (float& v : params) v = nd(rng);
  ctnn::Op bn;
  bn.kind = ctnn::OpKind::batch_norm;
  bn.input = bn.output = conv.output;
  bn.weight = params.size();
  params.resize(params.size() + static_cast<std::size_t>(sh.cout), 1.0f);
  ctnn::Op relu;
  relu.kind = ctnn::OpKind::relu;
  relu.input = relu.output = conv.output;
  p.ops = {conv, bn, relu};
  p.features = p.output = conv.output;
  p.features_end = p.ops.size();

  Plan<Arch> plan(p, params, Options{.winograd = winograd});
  const Step& step = plan.steps()[1];
  const std::vector<ctnn::Extents> e =
      ctnn::infer_extents(p, {batch, static_cast<std::size_t>(sh.cin), static_cast<std::size_t>(sh.size),
                              static_cast<std::size_t>(sh.size)});
  ctnn::AlignedBuffer in_buf(plan.value_floats(0, e[0])), out_buf(plan.value_floats(1, e[1]));
  const Layout in = plan.layout(0, e[0], in_buf.data());
  const Layout out = plan.layout(1, e[1], out_buf.data());
  for (std::size_t i = 0; i < in_buf.size(); ++i) in_buf.data()[i] = nd(rng);

  flops = 2.0 * static_cast<double>(e[1].count()) * sh.cin * sh.k * sh.k;
  ctnn::AlignedBuffer scratch(std::max<std::size_t>(1, plan.winograd_scratch() * static_cast<std::size_t>(threads)));
  ThreadPool pool(threads);
  const Parallel par{&pool, threads};
  const auto once = [&] {
    if (step.conv.winograd == 2)
      run_winograd<Arch, 2>(step.conv, plan.arena(), plan.zeros(), in, out, nullptr, scratch.data(),
                            plan.winograd_scratch(), par);
    else if (step.conv.winograd == 4)
      run_winograd<Arch, 4>(step.conv, plan.arena(), plan.zeros(), in, out, nullptr, scratch.data(),
                            plan.winograd_scratch(), par);
    else
      run_conv<Arch>(step.conv, plan.arena(), in, out, nullptr, par);
  };
  return ctnn::bench::median_seconds(runs, once);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t batch = 1;
  int threads = 0, runs = 30;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") json = true;
    else if (i + 1 < argc && a == "--batch") batch = std::strtoul(argv[++i], nullptr, 10);
    else if (i + 1 < argc && a == "--threads") threads = std::atoi(argv[++i]);
    else if (i + 1 < argc && a == "--runs") runs = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: ctnn-bench-cpu-layers [--batch B] [--threads T] [--runs N] [--json]\n");
      return 2;
    }
  }
  threads = ctnn::bench::use_threads(threads);
  if (batch == 0 || runs <= 0) return 2;
  const double peak = ctnn::bench::fma_peak_gflops(threads);
  if (!json)
    std::printf("%s, batch %zu, %d threads, FMA peak %.1f GFLOP/s\n%-36s %10s %10s %8s\n", Arch::name(), batch,
                threads, peak, "layer", "ms", "GFLOP/s", "% peak");
  for (const Shape& sh : shapes) {
    for (bool winograd : {false, true}) {
      const int tile = winograd_tile<Arch>(sh.cin, sh.cout, sh.k, sh.s, sh.pad, block_width<Arch>);
      if (winograd && !tile) continue;
      double flops = 0;
      const double s = time_layer(sh, batch, runs, winograd, threads, flops);
      const double g = flops / s / 1e9;  // direct-convolution FLOPs per second ("effective" for Winograd)
      const std::string name = std::string(sh.name) + (winograd ? " winograd F" + std::to_string(tile) : "");
      if (json)
        std::printf("{\"layer\": \"%s\", \"batch\": %zu, \"threads\": %d, \"median_ms\": %.4f, \"gflops\": %.2f, "
                    "\"percent_of_peak\": %.2f}\n",
                    name.c_str(), batch, threads, s * 1e3, g, 100.0 * g / peak);
      else
        std::printf("%-36s %10.4f %10.1f %7.1f%%\n", name.c_str(), s * 1e3, g, 100.0 * g / peak);
    }
  }
  return 0;
}

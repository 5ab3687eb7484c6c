// ctnn-bench: whole-network latency of ctnn's CPU backend.
//
//   ctnn-bench --model resnet18|resnet34|resnet50 --batch B --threads T --runs N
//              [--warmup W] [--size 224] [--json] [--direct]
//   ctnn-bench --train --model resnet20|resnet18|resnet50 --batch B [--size S]
//              [--backend cpu|reference]
//
// --train times whole-network training steps (forward, cross-entropy,
// backward, SGD with Nesterov momentum and weight decay) on random data:
// images/s and GFLOP/s counting a step as three forward passes. resnet20 is
// the CIFAR ResNet-20 on one channel (default 28x28, Fashion-MNIST's shape);
// resnet18/50 take three channels (default 64x64).
//
// --direct turns Winograd off (direct convolution everywhere), for comparison.
// --profile also prints each plan step's median time; with --train, each
// op's median forward and backward time and their sums per op kind.
// Prints median / min / max latency per forward pass, images per second, and
// achieved GFLOP/s (conv + linear multiply-adds x 2) against a measured FMA
// peak for the same thread count. --json prints one JSON object per line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <ctnn/backend/cpu/cpu.hpp>
#include <ctnn/ctnn.hpp>

#include "bench_threads.hpp"
#include "fma_peak.hpp"

namespace {

struct Options {
  std::string model = "resnet18";
  std::size_t batch = 1, size = 224;
  int threads = 0, runs = 20, warmup = 3;
  bool json = false;
  bool winograd = true;
  bool profile = false;
  bool train = false;
  bool size_given = false;
  std::string backend = "cpu";
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "ctnn-bench: %s\nusage: ctnn-bench --model resnet18|resnet34|resnet50 --batch B --threads T --runs N "
               "[--warmup W] [--size 224] [--json] [--direct] [--profile]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    const auto number = [&]() -> long {
      const std::string v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 0) usage(("bad number '" + v + "' for " + a).c_str());
      return n;
    };
    if (a == "--model") o.model = value();
    else if (a == "--batch") o.batch = static_cast<std::size_t>(number());
    else if (a == "--threads") o.threads = static_cast<int>(number());
    else if (a == "--runs") o.runs = static_cast<int>(number());
    else if (a == "--warmup") o.warmup = static_cast<int>(number());
    else if (a == "--size") o.size = static_cast<std::size_t>(number()), o.size_given = true;
    else if (a == "--json") o.json = true;
    else if (a == "--direct") o.winograd = false;
    else if (a == "--profile") o.profile = true;
    else if (a == "--train") o.train = true;
    else if (a == "--backend") o.backend = value();
    else usage(("unknown option " + a).c_str());
  }
  if (o.batch == 0 || o.size == 0 || o.runs == 0) usage("batch, size and runs must be positive");
  return o;
}

// Multiply-adds x 2 of every convolution and linear layer for this input.
double program_flops(const ctnn::Program& p, ctnn::Extents in) {
  const std::vector<ctnn::Extents> e = ctnn::infer_extents(p, in);
  double f = 0;
  for (const ctnn::Op& op : p.ops) {
    const ctnn::Extents& o = e[static_cast<std::size_t>(op.output)];
    if (op.kind == ctnn::OpKind::conv || op.kind == ctnn::OpKind::grouped_conv)
      f += 2.0 * static_cast<double>(o.count()) * (op.in_channels / op.groups) * op.kernel * op.kernel;
    else if (op.kind == ctnn::OpKind::linear)
      f += 2.0 * static_cast<double>(o.count()) * op.in_channels;
  }
  return f;
}

template <class Net>
int run(const Options& o) {
  ctnn::Model<Net, ctnn::backend::Cpu> model(ctnn::Init::torchvision, 0);
  // Non-trivial BatchNorm statistics, as in a trained network.
  model.update([](ctnn::Parameters& p) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(0.5f, 1.5f), c(-0.2f, 0.2f);
    for (const auto& t : p.infos()) {
      if (t.role == ctnn::TensorRole::bn_running_var || t.role == ctnn::TensorRole::bn_weight)
        for (float& v : p.tensor(t.name)) v = u(rng);
      else if (t.role == ctnn::TensorRole::bn_running_mean || t.role == ctnn::TensorRole::bn_bias)
        for (float& v : p.tensor(t.name)) v = c(rng);
    }
  });
  const ctnn::Extents shape{o.batch, 3, o.size, o.size};
  ctnn::Tensor input(shape);
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (std::size_t i = 0; i < input.size(); ++i) input.data()[i] = nd(rng);

  // The model's own executor, or one with non-default options.
  const ctnn::backend::Cpu::Executor custom(model.program(), model.parameters(),
                                            ctnn::backend::cpu::Options{.winograd = o.winograd});
  const auto forward = [&](auto& ctx) {
    if (o.winograd)
      model.forward(input, ctx);
    else
      custom.run(input, ctx, ctnn::Stage::output);
  };
  auto ctx = model.make_context({o.batch, o.size, o.size});
  for (int i = 0; i < o.warmup; ++i) forward(ctx);
  std::vector<double> ms;
  for (int i = 0; i < o.runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    forward(ctx);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  if (o.profile) {
    std::vector<std::vector<double>> steps;
    std::vector<std::string> names;
    for (int i = 0; i < o.runs; ++i) {
      const auto times = custom.profile(input, ctx, ctnn::Stage::output);
      steps.resize(times.size());
      names.resize(times.size());
      for (std::size_t k = 0; k < times.size(); ++k) {
        steps[k].push_back(times[k].ms);
        names[k] = times[k].name;
      }
    }
    double total = 0;
    for (std::size_t k = 0; k < steps.size(); ++k) {
      std::sort(steps[k].begin(), steps[k].end());
      const double m = steps[k][steps[k].size() / 2];
      total += m;
      std::printf("  %8.4f ms  %s\n", m, names[k].c_str());
    }
    std::printf("  %8.4f ms  sum of step medians\n", total);
  }
  const double median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  const double flops = program_flops(model.program(), shape);
  const double gflops = flops / (median * 1e-3) / 1e9;
  const int threads = o.threads;
  const double peak = ctnn::bench::fma_peak_gflops(threads);
  const double images = static_cast<double>(o.batch) / (median * 1e-3);
  if (o.json) {
    std::printf(
        "{\"library\": \"ctnn\", \"model\": \"%s\", \"batch\": %zu, \"size\": %zu, \"threads\": %d, \"runs\": %d, "
        "\"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, \"images_per_s\": %.2f, \"gflops\": %.2f, "
        "\"peak_gflops\": %.2f, \"percent_of_peak\": %.2f, \"winograd\": %s, \"backend\": \"%s\"}\n",
        o.model.c_str(), o.batch, o.size, threads, o.runs, median, ms.front(), ms.back(), images, gflops, peak,
        100.0 * gflops / peak, o.winograd ? "true" : "false", model.backend_description().c_str());
  } else {
    std::printf("%s batch %zu size %zu, %s, %s\n", o.model.c_str(), o.batch, o.size,
                model.backend_description().c_str(), o.winograd ? "winograd" : "direct only");
    std::printf("  latency ms: median %.3f  min %.3f  max %.3f  (%d runs, %d warm-up)\n", median, ms.front(),
                ms.back(), o.runs, o.warmup);
    std::printf("  %.1f images/s, %.1f GFLOP/s (%.2f GFLOP per pass), %.1f%% of the %.1f GFLOP/s FMA peak\n", images,
                gflops, flops / 1e9, 100.0 * gflops / peak, peak);
  }
  return 0;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Per op and per op kind: median forward and backward milliseconds over `runs` profiled steps.
template <class Trainer>
void print_training_profile(Trainer& trainer, const ctnn::Tensor& input, const std::vector<int>& labels, int runs) {
  auto& ex = trainer.executor();
  ex.set_profiling(true);
  std::vector<double> steps;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    trainer.step(input, {.classes = labels});
    steps.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const double step_ms = median_of(steps);
  std::printf("  %-34s %-16s %10s %10s\n", "op", "kind", "fwd ms", "bwd ms");
  std::vector<std::pair<double, double>> by_kind(ctnn::op_kind_count);
  double total = 0;
  for (const auto& p : ex.op_profile()) {
    const double f = median_of(p.forward_ms), b = median_of(p.backward_ms);
    std::printf("  %-34s %-16s %10.3f %10.3f\n", p.name.c_str(), std::string(ctnn::op_name(p.kind)).c_str(), f, b);
    by_kind[static_cast<std::size_t>(p.kind)].first += f;
    by_kind[static_cast<std::size_t>(p.kind)].second += b;
    total += f + b;
  }
  const double opt = median_of(ex.optimizer_profile());
  std::printf("  per op kind (sums of medians; share of the %.2f ms median profiled step):\n", step_ms);
  for (std::size_t k = 0; k < by_kind.size(); ++k) {
    const auto [f, b] = by_kind[k];
    if (f + b == 0) continue;
    std::printf("  %-16s fwd %9.3f ms  bwd %9.3f ms  %5.1f%%\n",
                std::string(ctnn::op_name(static_cast<ctnn::OpKind>(k))).c_str(), f, b, 100 * (f + b) / step_ms);
  }
  std::printf("  %-16s     %9.3f ms                %5.1f%%\n", "optimizer", opt, 100 * opt / step_ms);
  std::printf("  %-16s     %9.3f ms                %5.1f%%  (loss, copies, the rest)\n", "outside the ops",
              step_ms - total - opt, 100 * (step_ms - total - opt) / step_ms);
  ex.set_profiling(false);
}

template <class Net, class Backend>
int train(const Options& o) {
  const std::size_t c = static_cast<std::size_t>(Net::input::shape.c);
  ctnn::Model<Net, Backend> model(ctnn::Init::torchvision, 0);
  const ctnn::Extents shape{o.batch, c, o.size, o.size};
  ctnn::Tensor input(shape);
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (std::size_t i = 0; i < input.size(); ++i) input.data()[i] = nd(rng);
  std::vector<int> labels(o.batch);
  for (std::size_t i = 0; i < o.batch; ++i) labels[i] = static_cast<int>(i % model.classes());
  auto trainer = ctnn::train::make_trainer<ctnn::train::CrossEntropy>(
      model, ctnn::train::SGD{.lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true});
  trainer.sync_every_step(false);  // the inference view is refreshed once, not per step
  for (int i = 0; i < o.warmup; ++i) trainer.step(input, {.classes = labels});
  std::vector<double> ms;
  for (int i = 0; i < o.runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    trainer.step(input, {.classes = labels});
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  if (o.profile) print_training_profile(trainer, input, labels, o.runs);
  const double flops = 3 * program_flops(model.program(), shape);
  const double gflops = flops / (median * 1e-3) / 1e9, peak = ctnn::bench::fma_peak_gflops(o.threads);
  const double images = static_cast<double>(o.batch) / (median * 1e-3);
  if (o.json)
    std::printf("{\"library\": \"ctnn\", \"mode\": \"train\", \"model\": \"%s\", \"backend\": \"%s\", \"batch\": %zu, "
                "\"channels\": %zu, \"size\": %zu, \"threads\": %d, \"runs\": %d, \"median_ms\": %.3f, \"min_ms\": %.3f, "
                "\"max_ms\": %.3f, \"images_per_s\": %.2f, \"gflops\": %.2f, \"percent_of_peak\": %.2f}\n",
                o.model.c_str(), Backend::name, o.batch, c, o.size, o.threads, o.runs, median, ms.front(), ms.back(),
                images, gflops, 100.0 * gflops / peak);
  else
    std::printf("train %s (%s) batch %zu, %zux%zux%zu, %d threads: step median %.2f ms (min %.2f, max %.2f), "
                "%.1f images/s, %.1f GFLOP/s = %.1f%% of the %.1f GFLOP/s FMA peak\n",
                o.model.c_str(), Backend::name, o.batch, c, o.size, o.size, o.threads, median, ms.front(), ms.back(),
                images, gflops, 100.0 * gflops / peak, peak);
  return 0;
}

template <class Net>
int train_on(const Options& o) {
  if (o.backend == "cpu") return train<Net, ctnn::backend::Cpu>(o);
  if (o.backend == "reference") return train<Net, ctnn::backend::Reference>(o);
  usage(("unknown backend " + o.backend).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  o.threads = ctnn::bench::use_threads(o.threads);
  try {
    if (o.train) {
      if (!o.size_given) o.size = o.model == "resnet20" ? 28 : 64;
      if (o.model == "resnet20")
        return train_on<ctnn::ResNet20<ctnn::Linear<64, 10>, ctnn::Image<1, ctnn::dynamic, ctnn::dynamic>>>(o);
      if (o.model == "resnet18") return train_on<ctnn::ResNet18<ctnn::Linear<512, 10>>>(o);
      if (o.model == "resnet50") return train_on<ctnn::ResNet50<ctnn::Linear<2048, 10>>>(o);
      usage(("unknown model for --train " + o.model).c_str());
    }
    if (o.model == "resnet18") return run<ctnn::ResNet18<>>(o);
    if (o.model == "resnet34") return run<ctnn::ResNet34<>>(o);
    if (o.model == "resnet50") return run<ctnn::ResNet50<>>(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ctnn-bench: %s\n", e.what());
    return 1;
  }
  usage(("unknown model " + o.model).c_str());
}

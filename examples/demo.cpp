// ctnn-demo: the main demonstration.
//
//   1. The article's three head changes as typed networks, with the summaries
//      the compiler computes (parameter counts, output shapes, MACs).
//   2. A wrong head (ResNet-50's 2048-feature Linear on ResNet-18) refused by
//      the compiler: the diagnostic shown was produced while this program was
//      built (examples/capture_diagnostic.cmake).
//   3. Real images: Fashion-MNIST test images (Debian's dataset-fashion-mnist)
//      resized, replicated to three channels, normalised and run through
//      ResNet18<Linear<512, 10>>, with throughput and predicted classes.
//
// Usage: ctnn-demo [--batch N] [--size PIXELS] [--first INDEX] [--data DIR] [--weights FILE]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "fashion_mnist.hpp"
#include "wrong_head_diagnostic.hpp"

namespace {

#if defined(__clang__) && __clang_major__ < 18
using HalfDropout = ctnn::DropoutRatio<1, 2>;
#else
using HalfDropout = ctnn::Dropout<0.5>;
#endif

using TenClasses = ctnn::ResNet18<ctnn::Linear<512, 10>>;
using Binary = ctnn::ResNet18<ctnn::Sequential<ctnn::Linear<512, 1>, ctnn::Sigmoid>>;
using Regularised = ctnn::ResNet18<ctnn::Sequential<ctnn::Linear<512, 1000>, HalfDropout, ctnn::Softmax>>;

struct Options {
  std::size_t batch = 16, size = 64, first = 0;
  std::string data{fashion_mnist::default_dir};
  std::string weights;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument("missing value after " + std::string(a));
      return argv[++i];
    };
    const auto count = [&](std::size_t lo, std::size_t hi) {
      const std::string v = value();
      char* end = nullptr;
      const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < lo || n > hi)
        throw std::invalid_argument(std::string(a) + " takes a number in [" + std::to_string(lo) + ", " +
                                    std::to_string(hi) + "], got '" + v + "'");
      return static_cast<std::size_t>(n);
    };
    if (a == "--batch") o.batch = count(1, 1024);
    else if (a == "--size") o.size = count(32, 512);
    else if (a == "--first") o.first = count(0, 1u << 30);
    else if (a == "--data") o.data = value();
    else if (a == "--weights") o.weights = value();
    else if (a == "--help" || a == "-h") {
      std::printf("usage: ctnn-demo [--batch N] [--size PIXELS] [--first INDEX] [--data DIR] [--weights FILE]\n");
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown option '" + std::string(a) + "' (try --help)");
    }
  }
  return o;
}

std::string shorten(std::string_view s, std::size_t width) {
  return s.size() <= width ? std::string(s) : std::string(s.substr(0, width - 3)) + "...";
}

std::string grouped(std::size_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string shape_text(ctnn::Shape s) {
  return "[" + (s.c == ctnn::dynamic ? std::string("?") : std::to_string(s.c)) + ", " + std::to_string(s.h) + ", " +
         std::to_string(s.w) + "]";
}

// The summary the compiler computes, abbreviated: the stem's first rows, the
// residual stages folded into one line, then everything from the pooling on.
template <class Net>
void show_network(const char* pytorch, const char* type) {
  std::printf("  PyTorch:  %s\n  ctnn:     using Net = %s;\n\n", pytorch, type);
  const std::vector<ctnn::LayerRow> rows = ctnn::layer_rows<Net>(224, 224);
  const auto print = [](const ctnn::LayerRow& r) {
    std::printf("    %-12s %-58s %-14s %12s\n", r.name.c_str(), shorten(r.label, 58).c_str(), shape_text(r.output).c_str(),
                grouped(r.parameters).c_str());
  };
  std::printf("    %-12s %-58s %-14s %12s\n", "layer", "type", "output", "params");
  std::size_t i = 0, stage_rows = 0, stage_params = 0;
  for (; i < rows.size() && !rows[i].name.starts_with("layer"); ++i) print(rows[i]);
  for (; i < rows.size() && rows[i].name.starts_with("layer"); ++i, ++stage_rows) stage_params += rows[i].parameters;
  std::printf("    %-12s %-58s %-14s %12s\n", "layer1..4",
              ("... " + std::to_string(stage_rows) + " layers in 8 residual blocks ...").c_str(),
              shape_text(rows[i - 1].output).c_str(), grouped(stage_params).c_str());
  for (; i < rows.size(); ++i) print(rows[i]);
  std::printf("    total: %s parameters, %.2f GMACs at 224x224, output %s per image\n\n",
              grouped(Net::parameter_count).c_str(),
              static_cast<double>(ctnn::macs<Net>(224, 224)) * 1e-9, shape_text(Net::output_shape()).c_str());
}

void show_wrong_head() {
  std::printf("  using Bad = ctnn::ResNet18<ctnn::Linear<2048, 10>>;   // ResNet-50's head on ResNet-18\n\n");
  std::printf("  PyTorch accepts this line and fails at the first forward pass. ctnn refuses to compile it.\n");
  std::printf("  While this demo was built, %s ran:\n\n    $ %s\n\n", generated::compiler, generated::wrong_head_command);
  const std::string_view text = generated::wrong_head_diagnostic;
  std::size_t start = 0, shown = 0, total = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    if (shown < 12) {
      std::printf("    | %s\n", shorten(text.substr(start, end - start), 150).c_str());
      ++shown;
    }
    ++total;
    start = end + 1;
  }
  if (total > shown) std::printf("    | ... (%zu more lines)\n", total - shown);
  std::printf("\n  One error naming the rule (CTNN_HEAD_IN_FEATURES_MISMATCH) and both numbers (512 vs 2048).\n");
  std::printf("  examples/shape_check.cpp keeps one such failing variant per rule; ctest checks each.\n\n");
}

int classify(const Options& o) {
  const fashion_mnist::TestSet test = [&] {
    try {
      return fashion_mnist::load_test_set(o.data);
    } catch (const ctnn::io::LoadError& e) {
      throw std::runtime_error(std::string(e.what()) +
                               "\n(the images come from Debian's dataset-fashion-mnist package, which "
                               "scripts/install-deps.sh installs; or pass --data DIR)");
    }
  }();
  if (o.first >= test.count() || o.batch > test.count() - o.first)
    throw std::invalid_argument("--first " + std::to_string(o.first) + " --batch " + std::to_string(o.batch) +
                                " runs past the " + std::to_string(test.count()) + " test images");
  std::printf("  read %zu test images of %zux%zu and their labels from %s\n", test.count(), test.rows(), test.cols(),
              o.data.c_str());
  std::printf("  image %zu (%s):\n%s", o.first, std::string(fashion_mnist::label_names[static_cast<std::size_t>(test.label(o.first))]).c_str(),
              fashion_mnist::ascii_art(test.image(o.first), test.rows(), test.cols(), "      ").c_str());

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const ctnn::Tensor batch = fashion_mnist::make_batch(test, o.first, o.batch, o.size);
  const double prep_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::printf("\n  batch: %zu images, bilinear %zux%zu -> %zux%zu, grey -> 3 channels, normalised (mean %.4f, std %.4f)"
              " in %.1f ms\n",
              o.batch, test.rows(), test.cols(), o.size, o.size, fashion_mnist::mean, fashion_mnist::stddev, prep_ms);

  ctnn::Model<TenClasses> model(ctnn::Init::torchvision, /*seed=*/0);
  if (o.weights.empty()) {
    std::printf("  model: ResNet18<Linear<512, 10>>, RANDOM weights (torchvision's init, seed 0): this shows the\n"
                "         pipeline and its speed, not accuracy; pass --weights FILE for trained weights\n");
  } else {
    const ctnn::LoadReport r = model.load(o.weights, ctnn::Load::strict);
    std::printf("  model: ResNet18<Linear<512, 10>> with %zu tensors from %s\n", r.loaded.size(), r.source.c_str());
  }
  std::printf("  backend: %s\n", model.backend_description().c_str());

  auto ctx = model.make_context({o.batch, o.size, o.size});  // all workspace reserved here, none in forward
  const auto t1 = Clock::now();
  const ctnn::ConstTensorView logits = model.forward(batch, ctx);
  const double seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  std::printf("  forward: %zu images in %.1f ms = %.1f images/s (%.2f GMAC/s)\n\n", o.batch, seconds * 1e3,
              static_cast<double>(o.batch) / seconds,
              static_cast<double>(ctnn::macs<TenClasses>(static_cast<int>(o.size), static_cast<int>(o.size))) *
                  static_cast<double>(o.batch) / seconds * 1e-9);

  std::printf("  %5s  %-12s  %-12s  %7s\n", "image", "label", "predicted", "softmax");
  std::size_t correct = 0;
  for (std::size_t i = 0; i < o.batch; ++i) {
    const auto row = logits.item(i);
    std::size_t best = 0;
    for (std::size_t c = 1; c < row.size(); ++c)
      if (row[c] > row[best]) best = c;
    double sum = 0;
    for (float v : row) sum += std::exp(static_cast<double>(v - row[best]));
    const int truth = test.label(o.first + i);
    correct += static_cast<std::size_t>(truth) == best;
    std::printf("  %5zu  %-12s  %-12s  %7.3f%s\n", o.first + i,
                std::string(fashion_mnist::label_names[static_cast<std::size_t>(truth)]).c_str(),
                std::string(fashion_mnist::label_names[best]).c_str(), 1.0 / sum,
                static_cast<std::size_t>(truth) == best ? "  (correct)" : "");
  }
  std::printf("  %zu of %zu correct%s\n", correct, o.batch,
              o.weights.empty() ? " (random weights: expect about one in ten)" : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    std::printf("ctnn demo: compile-time typed ResNets\n\n");
    std::printf("1. The article's three head changes, as types the compiler checks\n\n");
    show_network<TenClasses>("model.fc = nn.Linear(512, 10)", "ctnn::ResNet18<ctnn::Linear<512, 10>>");
    show_network<Binary>("model.fc = nn.Sequential(nn.Linear(512, 1), nn.Sigmoid())",
                         "ctnn::ResNet18<ctnn::Sequential<ctnn::Linear<512, 1>, ctnn::Sigmoid>>");
    show_network<Regularised>("model.fc = nn.Sequential(nn.Linear(512, 1000), nn.Dropout(0.5), nn.Softmax(dim=1))",
                              "ctnn::ResNet18<ctnn::Sequential<ctnn::Linear<512, 1000>, ctnn::Dropout<0.5>, "
                              "ctnn::Softmax>>");
    std::printf("2. A wrong head does not compile\n\n");
    show_wrong_head();
    std::printf("3. Fashion-MNIST through ResNet18<Linear<512, 10>>\n\n");
    return classify(o);
  } catch (const std::exception& e) {
    std::fflush(stdout);  // keep the report in order when both streams go to one pipe
    std::fprintf(stderr, "ctnn-demo: %s\n", e.what());
    return 1;
  }
}

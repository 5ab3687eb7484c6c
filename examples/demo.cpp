// ctnn-demo: the main demonstration.
//
//   1. The article's three head changes as typed networks, with the summaries
//      the compiler computes (parameter counts, output shapes, MACs).
//   2. A wrong head (ResNet-50's 2048-feature Linear on ResNet-18) refused by
//      the compiler: the diagnostic shown was produced while this program was
//      built (examples/capture_diagnostic.cmake).
//   3. The article's workflow on real data: ResNet-20 trained from scratch on
//      Fashion-MNIST (Debian's dataset-fashion-mnist), its test accuracy;
//   4. then the head swapped for Sequential<Linear<64, 1>, Sigmoid> ("is it a
//      shirt?"), the backbone kept (Load::backbone_only), the new head
//      Xavier-initialised and trained alone on cached features.
//
// Usage: ctnn-demo [--epochs N] [--train-images N] [--test-images N] [--batch N] [--lr X] [--data DIR]
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <span>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <ctnn/ctnn.hpp>
#include <ctnn/data/batches.hpp>
#include <ctnn/data/dataset.hpp>
#include <ctnn/train/fit.hpp>

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

using Cifar = ctnn::ResNet20<ctnn::Linear<64, 10>, ctnn::Image<1, 28, 28>>;
using Shirt = ctnn::ResNet20<ctnn::Sequential<ctnn::Linear<64, 1>, ctnn::Sigmoid>, ctnn::Image<1, 28, 28>>;

struct Options {
  std::size_t epochs = 2, train_images = 60000, test_images = 10000, batch = 128;
  double lr = 0.1;
  std::string data{fashion_mnist::default_dir};
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
    if (a == "--epochs") o.epochs = count(1, 1000);
    else if (a == "--train-images") o.train_images = count(1, 60000);
    else if (a == "--test-images") o.test_images = count(1, 10000);
    else if (a == "--batch") o.batch = count(1, 1024);
    else if (a == "--lr") {
      const std::string v = value();
      char* end = nullptr;
      o.lr = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(o.lr > 0) || o.lr > 10)
        throw std::invalid_argument("--lr takes a learning rate in (0, 10], got '" + v + "'");
    } else if (a == "--data") o.data = value();
    else if (a == "--help" || a == "-h") {
      std::printf("usage: ctnn-demo [--epochs N] [--train-images N] [--test-images N] [--batch N] [--lr X] [--data DIR]\n");
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

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

ctnn::data::ImageDataset load(const Options& o, const char* part) {
  const std::filesystem::path dir = o.data;
  try {
    return ctnn::data::ImageDataset::from_idx(dir / (std::string(part) + "-images-idx3-ubyte.gz"),
                                              dir / (std::string(part) + "-labels-idx1-ubyte.gz"));
  } catch (const ctnn::io::LoadError& e) {
    throw std::runtime_error(std::string(e.what()) +
                             "\n(the images come from Debian's dataset-fashion-mnist package, which "
                             "scripts/install-deps.sh installs; or pass --data DIR)");
  }
}

constexpr int shirt = 6;  // Fashion-MNIST's hardest class: confused with T-shirts, pullovers and coats

int train_and_fine_tune(const Options& o) {
  const ctnn::data::ImageDataset full_train = load(o, "train"), full_test = load(o, "t10k");
  const ctnn::data::ImageDataset train = full_train.slice(0, std::min(o.train_images, full_train.size()));
  const ctnn::data::ImageDataset test = full_test.slice(0, std::min(o.test_images, full_test.size()));
  std::printf("  read %zu training and %zu test images of 28x28 from %s (using %zu and %zu)\n", full_train.size(),
              full_test.size(), o.data.c_str(), train.size(), test.size());
  std::printf("  image 0 of the test set (%s):\n%s\n",
              std::string(fashion_mnist::label_names[static_cast<std::size_t>(test.label(0))]).c_str(),
              fashion_mnist::ascii_art(test.image(0), 28, 28, "      ").c_str());

  // The whole network from scratch: He et al.'s CIFAR recipe on one channel.
  const ctnn::data::Normalize normalize{{fashion_mnist::mean}, {fashion_mnist::stddev}};
  ctnn::Model<Cifar> model(ctnn::Init::torchvision, /*seed=*/1);
  ctnn::data::Batches batches(train, o.batch, /*seed=*/1,
                              {.augment = {.crop_padding = 2, .horizontal_flip = true},
                               .normalize = normalize});
  const long steps = static_cast<long>(o.epochs * batches.count());
  auto trainer = ctnn::train::make_trainer<ctnn::train::CrossEntropy>(
      model, ctnn::train::SGD{.lr = o.lr, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true},
      ctnn::train::TrainOptions{.schedule = ctnn::train::Schedule::cosine(o.lr, std::max(1L, steps))});
  trainer.sync_every_step(false);  // the inference view is refreshed once, after training
  std::printf("  model: ResNet20<Linear<64, 10>, Image<1, 28, 28>> (%s parameters), SGD + Nesterov, lr %.3g cosine over "
              "%ld steps, batch %zu, RandomCrop(28, padding=2) + horizontal flip\n",
              grouped(Cifar::parameter_count).c_str(), o.lr, steps, o.batch);
  std::printf("  backend: %s\n", model.backend_description().c_str());
  const auto start = Clock::now();
  ctnn::train::fit(trainer, batches, /*validation=*/nullptr, {.epochs = o.epochs});
  const double train_seconds = seconds_since(start);
  const auto ten = ctnn::train::evaluate<ctnn::train::CrossEntropy>(model, test, 250, normalize);
  std::printf("  trained in %.1f s\n  test accuracy (10 classes): %.2f%%\n\n", train_seconds,
              100 * ten.confusion.accuracy());

  // The article's head swap: keep the backbone, a new Sigmoid head, train only the head.
  std::printf("4. The head swap: \"is it a shirt?\" on the trained backbone\n\n");
  ctnn::Model<Shirt> binary(ctnn::Init::torchvision, 2);
  const ctnn::LoadReport r = binary.load(ctnn::io::read_safetensors(model.save_to_memory(), "the trained model"),
                                         ctnn::Load::backbone_only);
  binary.init(ctnn::Init::xavier_uniform, /*seed=*/3, "fc");
  std::printf("  ResNet20<Sequential<Linear<64, 1>, Sigmoid>, Image<1, 28, 28>>: %zu backbone tensors loaded "
              "(Load::backbone_only), %zu head tensors Xavier-initialised\n",
              r.loaded.size(), r.kept.size());
  // Cache the frozen backbone's features once; the head then trains on them alone.
  const auto feature_start = Clock::now();
  ctnn::data::Batches plain(train, 250, 0, {.shuffle = false, .normalize = normalize});
  ctnn::Tensor features(train.size(), 64, 1, 1);
  std::vector<float> is_shirt(train.size());
  {
    auto ctx = binary.make_context({250, 28, 28});
    for (std::size_t b = 0; b < plain.count(); ++b) {
      const ctnn::data::Batch x = plain.get(b);
      const ctnn::ConstTensorView f = binary.features(x.images, ctx);
      std::copy(f.data, f.data + f.size(), features.data() + b * 250 * 64);
      for (std::size_t i = 0; i < x.labels.size(); ++i) is_shirt[b * 250 + i] = x.labels[i] == shirt ? 1.f : 0.f;
    }
  }
  std::printf("  cached %zu feature vectors in %.1f s\n", train.size(), seconds_since(feature_start));
  auto head = ctnn::train::make_trainer<ctnn::train::BCE>(binary, ctnn::train::Adam{.lr = 3e-3},
                                                          ctnn::train::Scope::head_only);
  head.sync_every_step(false);
  const std::size_t hb = 256;
  for (int epoch = 0; epoch < 20; ++epoch)
    for (std::size_t first = 0; first < train.size(); first += hb) {
      const std::size_t n = std::min(hb, train.size() - first);
      head.step_on_features({features.data() + first * 64, {n, 64, 1, 1}},
                            {.binary = std::span<const float>(is_shirt.data() + first, n)});
    }
  head.sync_model();
  const double shirts = 100 * ctnn::train::evaluate<ctnn::train::BCE>(binary, test, 250, normalize, shirt).confusion.accuracy();
  std::printf("  head trained for 20 epochs on the cached features (Adam, BCE)\n");
  std::printf("  test accuracy (shirt vs rest): %.2f%% (always answering \"not a shirt\" scores 90%%)\n", shirts);
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
    std::printf("3. Training ResNet-20 on Fashion-MNIST (the article's workflow on real data)\n\n");
    return train_and_fine_tune(o);
  } catch (const std::exception& e) {
    std::fflush(stdout);  // keep the report in order when both streams go to one pipe
    std::fprintf(stderr, "ctnn-demo: %s\n", e.what());
    return 1;
  }
}

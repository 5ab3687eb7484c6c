// ctnn-train: train a compiled ResNet (architecture x input channels x head,
// from a fixed menu) on an IDX or image-folder data set, or fine-tune a new
// head on a trained backbone. `ctnn-train --help` has the options;
// docs/training.md has the recipes.
//
//   ctnn-train --arch resnet20 --data fashion-mnist --epochs 28 --batch 128 --optimizer sgd --lr 0.1
//              --momentum 0.9 --nesterov --weight-decay 5e-4 --schedule cosine --augment crop:2,flip
//              --save resnet20.safetensors
//   ctnn-train --arch resnet20 --head sigmoid --from resnet20.safetensors --train head
//              --positive-class Shirt --data fashion-mnist --epochs 5 --save shirt.safetensors
//
// Every failure ends with exit status 1 and one line on stderr.

// This translation unit compiles stb_image for ctnn/io/image.hpp (image folders).
#define CTNN_IMAGE_IMPLEMENTATION
#include <ctnn/io/image.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include <ctnn/data/image_folder.hpp>

#include "menu.hpp"
#include "options.hpp"

#if defined(CTNN_TRAIN_WITH_MPI)
#include <ctnn/distributed/mpi.hpp>
#endif

namespace fs = std::filesystem;
using namespace ctnn_train;

namespace {

constexpr const char* fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";
constexpr std::array<const char*, 10> fashion_mnist_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::string idx_file(const fs::path& dir, const std::string& stem) {
  for (const char* suffix : {".gz", ""})
    if (fs::is_regular_file(dir / (stem + suffix))) return (dir / (stem + suffix)).string();
  return {};
}

// ToTensor + Normalize's statistics of the training images, per channel.
ctnn::data::Normalize measure_normalization(const ctnn::data::ImageDataset& d) {
  ctnn::data::Normalize n;
  const std::size_t plane = d.height() * d.width();
  for (std::size_t c = 0; c < d.channels(); ++c) {
    double sum = 0, squares = 0;
    for (std::size_t i = 0; i < d.size(); ++i) {
      const std::uint8_t* p = d.image(i).data() + c * plane;
      for (std::size_t k = 0; k < plane; ++k) sum += p[k], squares += static_cast<double>(p[k]) * p[k];
    }
    const double count = static_cast<double>(d.size() * plane);
    const double mean = sum / count / 255, var = squares / count / (255.0 * 255) - mean * mean;
    n.mean.push_back(static_cast<float>(mean));
    n.std.push_back(static_cast<float>(var > 1e-12 ? std::sqrt(var) : 1.0));
  }
  return n;
}

DataSets load_data(const Options& o) {
  DataSets d;
  const bool named = o.data == "fashion-mnist";
  const fs::path dir = named ? fs::path(fashion_mnist_dir) : fs::path(o.data);
  if (!fs::is_directory(dir))
    throw UsageError(named ? std::string("--data fashion-mnist: ") + fashion_mnist_dir +
                                 " is missing (Debian: apt install dataset-fashion-mnist)"
                           : "--data " + o.data + ": no such directory");
  const std::string train_images = idx_file(dir, "train-images-idx3-ubyte");
  if (!train_images.empty()) {
    const std::string train_labels = idx_file(dir, "train-labels-idx1-ubyte"),
                      test_images = idx_file(dir, "t10k-images-idx3-ubyte"), test_labels = idx_file(dir, "t10k-labels-idx1-ubyte");
    if (train_labels.empty() || test_images.empty() || test_labels.empty())
      throw UsageError(dir.string() + ": an IDX data set needs train-images/-labels and t10k-images/-labels files");
    d.train = ctnn::data::ImageDataset::from_idx(train_images, train_labels);
    d.test = ctnn::data::ImageDataset::from_idx(test_images, test_labels);
    std::error_code ec;
    if (named || fs::equivalent(dir, fashion_mnist_dir, ec))
      d.class_names.assign(fashion_mnist_names.begin(), fashion_mnist_names.end());
    d.description = named ? "Fashion-MNIST" : dir.filename().string();
  } else {
    fs::path test_dir = dir / "test";
    if (!fs::is_directory(test_dir)) test_dir = dir / "val";
    if (!fs::is_directory(dir / "train") || !fs::is_directory(test_dir))
      throw UsageError(dir.string() +
                       ": expected IDX files (train-images-idx3-ubyte[.gz], ...) or image folders train/ and test/ (or val/)");
    const ctnn::data::FolderOptions fo{.size = o.size, .channels = o.grey ? 1u : 3u};
    ctnn::data::ImageFolder train = ctnn::data::load_image_folder(dir / "train", fo);
    ctnn::data::ImageFolder test = ctnn::data::load_image_folder(test_dir, fo);
    if (train.classes != test.classes)
      throw UsageError(test_dir.string() + ": its class folders differ from " + (dir / "train").string() + "'s");
    d.train = std::move(train.data), d.test = std::move(test.data), d.class_names = std::move(train.classes);
    d.description = dir.filename().string();
  }
  if (d.class_names.empty())
    for (int k = 0; k < d.train.classes(); ++k) d.class_names.push_back(std::to_string(k));
  if (o.train_images) d.train = d.train.slice(0, std::min(o.train_images, d.train.size()));
  if (o.test_images) d.test = d.test.slice(0, std::min(o.test_images, d.test.size()));
  d.normalize = measure_normalization(d.train);
  if (!o.positive_class.empty()) {
    for (std::size_t k = 0; k < d.class_names.size(); ++k)
      if (d.class_names[k] == o.positive_class) d.positive_class = static_cast<int>(k);
    if (d.positive_class < 0)
      if (const auto k = whole_number(o.positive_class, 0, d.train.classes() - 1)) d.positive_class = static_cast<int>(*k);
    if (d.positive_class < 0) {
      std::string list;
      for (const auto& n : d.class_names) list += (list.empty() ? "" : ", ") + n;
      throw UsageError("--positive-class '" + o.positive_class + "' is not a class of the data (" + list + ")");
    }
  }
  return d;
}

Registry menu() {
  Registry r;
  register_cifar(r);
  register_cifar_option_a(r);
  register_imagenet(r);
  return r;
}

int run(const std::vector<std::string>& args) {
  const Options o = parse_options(args);
  if (o.help) {
    std::fputs(usage_text.data(), stdout);
    return 0;
  }
  const Registry registry = menu();
  if (o.list) {
    for (const Entry& e : registry)
      std::printf("%-11s %zu channel%s  %s\n", e.arch.c_str(), e.channels, e.channels == 1 ? " " : "s",
                  e.head == Head::linear ? "linear" : "sigmoid");
    return 0;
  }
  const DataSets d = load_data(o);
  std::printf("data: %s, %zu training and %zu test images of %zux%zux%zu, %d classes\n", d.description.c_str(),
              d.train.size(), d.test.size(), d.train.channels(), d.train.height(), d.train.width(), d.train.classes());
  for (const Entry& e : registry)
    if (e.arch == o.arch && e.channels == d.train.channels() && e.head == o.head) return e.train(o, d);
  throw UsageError("no compiled " + o.arch + " for " + std::to_string(d.train.channels()) + "-channel images");
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  // --distributed: MPI for the whole run. The configuration check, which every
  // rank takes part in, ends each rank cleanly; any other error may be one
  // rank's alone (a file missing on one host), so it aborts the job and no
  // rank is left waiting in a collective.
  bool distributed = false;
  for (const std::string& a : args) distributed |= a == "--distributed";
#if defined(CTNN_TRAIN_WITH_MPI)
  std::optional<ctnn::distributed::Mpi> mpi;
  if (distributed) mpi.emplace(argc, argv);
  const std::string who = mpi ? "ctnn-train: rank " + std::to_string(mpi->rank()) + ": " : "ctnn-train: ";
  if (mpi && mpi->rank() != 0 && !std::freopen("/dev/null", "w", stdout)) return 1;  // rank 0 reports
  const auto fail = [&](const char* what, bool everywhere) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s%s\n", who.c_str(), what);
    if (mpi && !everywhere) mpi->abort(1);
    return 1;
  };
#else
  const auto fail = [&](const char* what, bool) {
    std::fflush(stdout);
    std::fprintf(stderr, "ctnn-train: %s\n", what);
    return 1;
  };
#endif
  try {
#if !defined(CTNN_TRAIN_WITH_MPI)
    if (distributed) throw UsageError("--distributed needs a ctnn-train built with MPI (Debian: libopenmpi-dev)");
#endif
    return run(args);
  } catch (const std::bad_alloc&) {
    return fail("out of memory", false);
  } catch (const UsageError& e) {
    return fail(e.what(), false);
#if defined(CTNN_TRAIN_WITH_MPI)
  } catch (const ctnn::distributed::MpiError& e) {
    return fail(e.what(), true);  // a configuration check every rank took part in
#endif
  } catch (const std::exception& e) {
    return fail(e.what(), false);
  }
}

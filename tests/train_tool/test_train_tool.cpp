// ctnn-train end to end, on small slices of Debian's Fashion-MNIST and on an
// image folder made of the image fixtures: the run's report (log, curves,
// confusion matrix, final line), the saved model against the library's own
// evaluation, resume equal to the uninterrupted run byte for byte, head
// fine-tuning on a saved backbone, and every kind of bad usage ending with
// exit status 1 and one line on stderr.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>
#include <ctnn/train/metrics.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>

#include "run_tool.hpp"

namespace fs = std::filesystem;

namespace {

#if defined(CTNN_TRAIN_EXE)
constexpr bool have_tool = true;
const std::string tool = CTNN_TRAIN_EXE;
#else
constexpr bool have_tool = false;
const std::string tool;
#endif

const fs::path fashion = "/usr/share/datasets/fashion-mnist";
const bool have_data = fs::exists(fashion / "train-images-idx3-ubyte.gz");

fs::path scratch() {
  static const fs::path dir = ctnn_test::scratch_dir("train-tool");
  return dir;
}
std::string q(const fs::path& p) { return ctnn_test::shell_quote(p); }
ctnn_test::ToolRun run(const std::string& args) { return ctnn_test::run_tool(tool, args, scratch()); }

// A small, quick run: 384 training and 200 test images, batch 64, 1 thread.
const std::string small = " --data fashion-mnist --train-images 384 --test-images 200 --batch 64 --progress lines";

double reported_accuracy(const std::string& out) {
  std::smatch m;
  const std::regex last(R"(test accuracy: ([0-9]+\.[0-9]{2})%\n$)");
  REQUIRE(std::regex_search(out, m, last));
  return std::stod(m[1]);
}

void check_refused(const std::string& args, const std::string& expected) {
  const ctnn_test::ToolRun r = run(args);
  INFO("args: ", args, "\nstderr: ", r.err);
  CHECK(r.status == 1);
  CHECK(r.err.rfind("ctnn-train: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find(expected) != std::string::npos);
}

using Net = ctnn::ResNet20<ctnn::Linear<64, ctnn::dynamic>, ctnn::Image<1, ctnn::dynamic, ctnn::dynamic>>;

}  // namespace

TEST_CASE("train tool: a run reports, logs, draws, saves, and resumes bit for bit" *
          doctest::skip(!have_tool || !have_data)) {
  const fs::path d = scratch() / "run";
  fs::create_directories(d);
  const std::string outputs = " --log " + q(d / "log.jsonl") + " --curves " + q(d / "curves.svg") + " --save " +
                              q(d / "final.safetensors") + " --best " + q(d / "best.safetensors");
  const auto r = run("--arch resnet20 --epochs 2 --augment crop:2,flip" + small + outputs);
  INFO(r.out, r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  CHECK(r.out.find("epoch 2/2  train loss") != std::string::npos);
  CHECK(r.out.find("Ankle boot") != std::string::npos);  // the confusion matrix names the classes
  const double accuracy = reported_accuracy(r.out);

  // The log: one JSON object per epoch, numbered.
  const std::string log = ctnn_test::slurp(d / "log.jsonl");
  CHECK(std::count(log.begin(), log.end(), '\n') == 2);
  CHECK(log.rfind("{\"epoch\":1,\"train_loss\":", 0) == 0);
  CHECK(log.find("{\"epoch\":2,") != std::string::npos);
  // The curves: an SVG with a training and a validation line in each panel.
  const std::string svg = ctnn_test::slurp(d / "curves.svg");
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
  std::size_t lines = 0;
  for (std::size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++lines;
  CHECK(lines == 4);

  // The saved model scores, by the library's evaluation, what the tool printed.
  ctnn::Model<Net> model(10);
  model.load(d / "final.safetensors");
  const auto test = ctnn::data::ImageDataset::from_idx(fashion / "t10k-images-idx3-ubyte.gz",
                                                       fashion / "t10k-labels-idx1-ubyte.gz").slice(0, 200);
  const auto train = ctnn::data::ImageDataset::from_idx(fashion / "train-images-idx3-ubyte.gz",
                                                        fashion / "train-labels-idx1-ubyte.gz").slice(0, 384);
  // The tool normalises with the training slice's own statistics.
  double sum = 0, squares = 0;
  for (std::size_t i = 0; i < train.size(); ++i)
    for (std::uint8_t p : train.image(i)) sum += p, squares += double(p) * p;
  const double n = double(train.size() * 784), mean = sum / n / 255, var = squares / n / (255.0 * 255) - mean * mean;
  const auto e = ctnn::train::evaluate<ctnn::train::CrossEntropy>(model, test, 250,
                                                                  {{float(mean)}, {float(std::sqrt(var))}});
  CHECK(100 * e.confusion.accuracy() == doctest::Approx(accuracy).epsilon(0.0001));
  CHECK(fs::exists(d / "best.safetensors"));

  SUBCASE("stopping after one epoch and resuming from its checkpoint gives the same model, byte for byte") {
    const auto first = run("--arch resnet20 --epochs 2 --stop-after 1 --augment crop:2,flip" + small +
                           " --checkpoint " + q(d / "ckpt.safetensors"));
    REQUIRE(first.status == 0);
    CHECK(first.out.find("epoch 2/2") == std::string::npos);
    const auto second = run("--arch resnet20 --epochs 2 --augment crop:2,flip" + small + " --resume " +
                            q(d / "ckpt.safetensors") + " --save " + q(d / "resumed.safetensors"));
    INFO(second.out, second.err);
    REQUIRE(second.status == 0);
    CHECK(second.out.find("resumed from") != std::string::npos);
    CHECK(ctnn_test::slurp(d / "resumed.safetensors") == ctnn_test::slurp(d / "final.safetensors"));
    CHECK(reported_accuracy(second.out) == accuracy);
  }
  SUBCASE("the article's head swap: a sigmoid head fine-tuned alone on the saved backbone") {
    const auto h = run("--arch resnet20 --head sigmoid --from " + q(d / "final.safetensors") +
                       " --train head --positive-class Shirt --epochs 1 --optimizer adam --lr 0.003" + small);
    INFO(h.out, h.err);
    REQUIRE(h.status == 0);
    CHECK(h.out.find("backbone only; the head is new") != std::string::npos);
    CHECK(h.out.find("not Shirt") != std::string::npos);  // a 2 x 2 confusion matrix
    reported_accuracy(h.out);
  }
}

TEST_CASE("train tool: an image folder, one sub-folder per class" * doctest::skip(!have_tool)) {
  const fs::path images = fs::path(CTNN_TEST_DATA_DIR) / "image";
  const fs::path root = scratch() / "folder";
  for (const char* part : {"train", "test"})
    for (const auto& [cls, file] : {std::pair{"cat", "photo_161x121.jpg"}, {"cat", "progressive_120x90.jpg"},
                                     {"dog", "grey_64x48.png"}, {"dog", "palette_80x60.png"}}) {
      fs::create_directories(root / part / cls);
      fs::copy_file(images / file, root / part / cls / file, fs::copy_options::overwrite_existing);
    }
  fs::create_directories(root / "train" / "cat");
  { std::FILE* f = std::fopen((root / "train" / "cat" / "notes.txt").c_str(), "w"); std::fputs("not an image", f); std::fclose(f); }
  const auto r = run("--arch resnet20 --data " + q(root) + " --size 16 --epochs 1 --batch 2 --progress quiet --prefetch");
  INFO(r.out, r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("4 training and 4 test images of 3x16x16, 2 classes") != std::string::npos);
  CHECK(r.out.find("cat") != std::string::npos);
  reported_accuracy(r.out);
  check_refused("--arch resnet20 --data " + q(root / "train" / "cat"), "expected IDX files");
}

TEST_CASE("train tool: each menu entry builds the network it names" * doctest::skip(!have_tool || !have_data)) {
  // One-channel parameter counts from the published ones: option-A ResNet-20 269,722 on 3 channels,
  // torchvision's ResNet-18 11,689,512 (3 channels, 1000 classes); 10 classes here.
  const std::pair<const char*, const char*> nets[] = {
      {"resnet20", "272186"}, {"resnet20a", "269434"}, {"resnet18", "11175370"}};
  for (const auto& [arch, count] : nets) {
    const auto r = run(std::string("--arch ") + arch +
                       " --data fashion-mnist --train-images 8 --test-images 8 --epochs 1 --batch 8 --progress quiet");
    INFO(arch, "\n", r.out, r.err);
    CHECK(r.status == 0);
    CHECK(r.out.find(std::string("network: ") + arch + ", linear:10 head, " + count + " parameters") != std::string::npos);
  }
}

TEST_CASE("train tool: bad usage is one line and exit status 1" * doctest::skip(!have_tool)) {
  check_refused("", "missing --arch");
  check_refused("--arch resnet21 --data fashion-mnist", "unknown architecture 'resnet21'");
  check_refused("--arch resnet20", "missing --data");
  check_refused("--arch resnet20 --data fashion-mnist --epochs 0", "--epochs '0'");
  check_refused("--arch resnet20 --data fashion-mnist --lr fast", "--lr 'fast'");
  check_refused("--arch resnet20 --data fashion-mnist --bogus", "unknown option '--bogus'");
  check_refused("--arch resnet20 --data fashion-mnist --head sigmoid", "--positive-class");
  check_refused("--arch resnet20 --data fashion-mnist --train head", "--train head needs --from");
  check_refused("--arch resnet20 --data fashion-mnist --optimizer adam --nesterov", "--nesterov is an SGD option");
  check_refused("--arch resnet20 --data " + q(scratch() / "nowhere"), "no such directory");
  if (!have_data) return;
  check_refused("--arch resnet20" + small + " --head linear:5", "--head linear:5 for data with 10 classes");
  check_refused("--arch resnet20" + small + " --head sigmoid --positive-class Hat", "'Hat' is not a class");
  check_refused("--arch resnet20" + small + " --schedule wavy", "unknown --schedule 'wavy'");
  check_refused("--arch resnet20" + small + " --augment crop", "bad --augment 'crop'");
  check_refused("--arch resnet20" + small + " --from " + q(scratch() / "none.safetensors"), "none.safetensors");
  check_refused("--arch resnet20" + small + " --resume " + q(scratch() / "none.ckpt"), "none.ckpt");
  check_refused("--arch resnet20" + small + " --freeze layer9", "cannot freeze 'layer9'");
}

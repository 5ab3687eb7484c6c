// ctnn-infer end to end: the executable is run through the shell on the
// PyTorch fixtures of tests/data/infer/ (make_infer_fixtures.py) and its
// output .npy compared with torch's (max |diff| / max |expected| <= 1e-4),
// for every weight format; and every kind of bad usage or input must end
// with exit status 1 and exactly one line on stderr.
#include <doctest/doctest.h>

#include <ctnn/io/npy.hpp>

#include "run_tool.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

#if defined(CTNN_INFER_EXE)
constexpr bool have_tool = true;
const std::string tool = CTNN_INFER_EXE;
#else
constexpr bool have_tool = false;
const std::string tool;
#endif

const fs::path data = fs::path(CTNN_TEST_DATA_DIR) / "infer";
const fs::path images = fs::path(CTNN_TEST_DATA_DIR) / "image";

fs::path scratch() {
  static const fs::path dir = ctnn_test::scratch_dir("infer");
  return dir;
}

using ctnn_test::slurp;
using Run = ctnn_test::ToolRun;
std::string quote(const std::string& s) { return ctnn_test::shell_quote(s); }
Run run(const std::string& args) { return ctnn_test::run_tool(tool, args, scratch()); }

std::string q(const fs::path& p) { return quote(p.string()); }

double relative_error(const ctnn::io::NpyArray& got, const ctnn::io::NpyArray& want) {
  REQUIRE(got.shape == want.shape);
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < want.data.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(got.data[i]) - want.data[i]));
    scale = std::max(scale, std::abs(static_cast<double>(want.data[i])));
  }
  REQUIRE(scale > 0);
  return diff / scale;
}

constexpr double tolerance = 1e-4;

// Runs to an output file and compares it with an expected .npy.
void check_parity(const std::string& args, const std::string& expected, const char* what) {
  static int counter = 0;
  const fs::path out = scratch() / ("y" + std::to_string(counter++) + ".npy");
  const Run r = run(args + " --output " + q(out));
  INFO(std::string(what), ": ", args, "\nstderr: ", r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  const double err = relative_error(ctnn::io::read_npy(out), ctnn::io::read_npy(data / expected));
  MESSAGE(std::string(what) << ": max relative error " << err);
  CHECK(err <= tolerance);
}

void check_refused(const std::string& args, const std::string& expected) {
  const Run r = run(args);
  INFO("args: ", args, "\nstderr: ", r.err, "\nstdout: ", r.out);
  CHECK(r.status == 1);
  CHECK(r.out.empty());
  CHECK(r.err.rfind("ctnn-infer: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one line
  CHECK(r.err.find(expected) != std::string::npos);
}

const std::string input = " --input " + q(data / "input_3x3x29x35.npy");
std::string fc10(const char* file) { return "--arch resnet20 --weights " + q(data / file); }

}  // namespace

TEST_CASE("infer: resnet20 from every weight format matches PyTorch" * doctest::skip(!have_tool)) {
  for (const char* file : {"resnet20_fc10_p2.pth", "resnet20_fc10_p4.pth", "resnet20_fc10_state_dict.pth",
                           "resnet20_fc10_checkpoint.pth", "resnet20_fc10.safetensors"}) {
    check_parity(fc10(file) + " --head linear:10" + input, "expected_fc10.npy", file);
  }
  // The class count from the checkpoint when the head gives none; every backend.
  check_parity(fc10("resnet20_fc10_p2.pth") + input + " --backend reference", "expected_fc10.npy", "reference");
  check_parity(fc10("resnet20_fc10_p2.pth") + input + " --backend cpu", "expected_fc10.npy", "cpu");
}

TEST_CASE("infer: sigmoid and dropout-softmax heads match PyTorch" * doctest::skip(!have_tool)) {
  check_parity("--arch resnet20 --head sigmoid --weights " + q(data / "resnet20_sigmoid.pth") + input,
               "expected_sigmoid.npy", "sigmoid");
  check_parity("--arch resnet20 --head dropout-softmax:7 --weights " + q(data / "resnet20_dropout_softmax7.pth") + input,
               "expected_dropout_softmax7.npy", "dropout-softmax:7");
  check_parity("--arch resnet20 --head dropout-softmax --weights " + q(data / "resnet20_dropout_softmax7.pth") + input +
                   " --backend reference",
               "expected_dropout_softmax7.npy", "dropout-softmax (7 from the checkpoint), reference");
}

TEST_CASE("infer: PNG images through the torchvision preprocessing match PyTorch" * doctest::skip(!have_tool)) {
  check_parity(fc10("resnet20_fc10.safetensors") + " --image " + q(images / "rgb_97x131.png") + " " +
                   q(images / "rgb_250x61.png") + " --resize 40 --crop 32",
               "expected_images_fc10.npy", "two PNGs, Resize(40), CenterCrop(32)");
}

TEST_CASE("infer: --top prints the largest outputs with their labels" * doctest::skip(!have_tool)) {
  const fs::path labels = scratch() / "labels.txt";
  {
    std::ofstream f(labels);
    for (int i = 0; i < 10; ++i) f << "name" << i << "\n";
  }
  const Run r = run(fc10("resnet20_fc10_p2.pth") + input + " --top 2 --labels " + q(labels));
  INFO(r.err);
  REQUIRE(r.status == 0);
  // torch: expected_fc10.npy's largest logit in row 0.
  const ctnn::io::NpyArray want = ctnn::io::read_npy(data / "expected_fc10.npy");
  const auto best = std::max_element(want.data.begin(), want.data.begin() + 10) - want.data.begin();
  const std::string first = "input 0:\n  1. class " + std::to_string(best) + " (name" + std::to_string(best) + ")";
  CHECK(r.out.rfind(first, 0) == 0);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 3 * 3);  // 3 inputs x (name + 2 lines)

  const Run s = run("--arch resnet20 --head sigmoid --weights " + q(data / "resnet20_sigmoid.pth") + input);
  REQUIRE(s.status == 0);
  CHECK(s.out.find("probability") != std::string::npos);
  CHECK(s.out.find("positive") != std::string::npos);  // torch: 0.99 for the first input
}

TEST_CASE("infer: --help and --list exit 0" * doctest::skip(!have_tool)) {
  const Run h = run("--help");
  CHECK(h.status == 0);
  CHECK(h.out.find("usage: ctnn-infer") == 0);
  const Run l = run("--list");
  CHECK(l.status == 0);
  CHECK(l.out.find("resnet152\tdropout-softmax\tcpu\n") != std::string::npos);
  CHECK(l.out.find("resnet20\tsigmoid\treference\n") != std::string::npos);
  CHECK(std::count(l.out.begin(), l.out.end(), '\n') >= 42);  // 7 archs x 3 heads x 2 host backends
}

TEST_CASE("infer: bad usage and bad input exit 1 with one line on stderr" * doctest::skip(!have_tool)) {
  const std::string ok_weights = fc10("resnet20_fc10_p2.pth");
  // A 3-d array, a 1-channel array and a garbage file, written here.
  const fs::path rank3 = scratch() / "rank3.npy", grey = scratch() / "grey.npy", junk = scratch() / "junk.npy";
  ctnn::io::write_npy(rank3, std::vector<float>(3 * 8 * 8, 0.5f), {3, 8, 8});
  ctnn::io::write_npy(grey, std::vector<float>(2 * 1 * 8 * 8, 0.5f), {2, 1, 8, 8});
  std::ofstream(junk) << "not numpy";
  const fs::path labels9 = scratch() / "labels9.txt";
  {
    std::ofstream f(labels9);
    for (int i = 0; i < 9; ++i) f << "n" << i << "\n";
  }

  SUBCASE("command line") {
    check_refused("", "missing --arch");
    check_refused("--frobnicate", "unknown option '--frobnicate'");
    check_refused("stray", "unexpected argument 'stray'");
    check_refused("--arch resnet19" + input + " --weights x", "unknown architecture 'resnet19'");
    check_refused("--arch resnet20" + input, "missing --weights");
    check_refused(ok_weights, "missing input");
    check_refused(ok_weights + input + " --image " + q(images / "rgb_97x131.png"), "either --input or --image");
    check_refused(ok_weights + input + " --resize 64", "--resize and --crop apply to --image only");
    check_refused(ok_weights + input + " --backend tpu", "unknown --backend 'tpu'");
    check_refused(ok_weights + input + " --top 0", "--top '0': expected a whole number");
    check_refused(ok_weights + input + " --top", "--top needs a value");
    check_refused(ok_weights + " --image", "--image needs at least one file");
    check_refused(ok_weights + " --image " + q(images / "rgb_97x131.png") + " --crop --verbose", "--crop needs a value");
    check_refused(ok_weights + " --image " + q(images / "rgb_97x131.png") + " --crop -5", "--crop '-5'");
    check_refused(ok_weights + " --image " + q(images / "rgb_97x131.png") + " --crop=-5", "--crop '-5'");
  }
  SUBCASE("bad --head") {
    check_refused(ok_weights + input + " --head softmax", "bad --head 'softmax'");
    check_refused(ok_weights + input + " --head linear:-3", "bad --head 'linear:-3': N must be a whole number");
    check_refused(ok_weights + input + " --head linear:0", "bad --head 'linear:0'");
    check_refused(ok_weights + input + " --head linear:ten", "bad --head 'linear:ten'");
    check_refused(ok_weights + input + " --head linear:99999999999", "bad --head 'linear:99999999999'");
    check_refused(ok_weights + input + " --head sigmoid:2", "the sigmoid head has exactly one output");
    check_refused(ok_weights + input + " --head dropout-softmax:1", "a softmax needs at least 2 outputs");
    check_refused(ok_weights + input + " --head linear:5", "the checkpoint's head has 10 outputs, but --head asked for 5");
  }
  SUBCASE("weights") {
    check_refused("--arch resnet20 --weights " + q(data / "missing.pth") + input, "no such weight file");
    check_refused("--arch resnet56 --weights " + q(data / "resnet20_fc10_p2.pth") + input, "tensor(s) missing");
    check_refused("--arch resnet18 --weights " + q(data / "resnet20_fc10.safetensors") + input,
                  "tensor 'conv1.weight' has shape [16, 3, 3, 3], the model expects [64, 3, 7, 7]");
    check_refused("--arch resnet20 --head sigmoid --weights " + q(data / "resnet20_fc10_p2.pth") + input,
                  "tensor(s) missing: fc.0.weight");
    check_refused("--arch resnet20 --weights " + q(images / "rgb_97x131.png") + input, "rgb_97x131.png");
  }
  SUBCASE("inputs") {
    check_refused(ok_weights + " --input " + q(rank3), "expected a 4-dimensional N x C x H x W array, found shape [3, 8, 8]");
    check_refused(ok_weights + " --input " + q(grey), "the input has 1 channels; the networks in ctnn-infer's menu take 3-channel");
    check_refused(ok_weights + " --input " + q(junk), "junk.npy");
    check_refused(ok_weights + " --input " + q(scratch() / "absent.npy"), "absent.npy");
    check_refused(ok_weights + " --image " + q(images / "no_such_image.png"), "no such image file");
    check_refused(ok_weights + " --image " + q(images / "bad" / "png_bit_flip.png"), "corrupt PNG: CRC mismatch");
    check_refused(ok_weights + " --image " + q(images / "bad" / "jpeg_truncated_half.jpg"), "truncated JPEG");
    check_refused(ok_weights + " --image " + q(images / "rgb_97x131.png") + " " + q(images / "rgb_250x61.png") +
                      " --resize 40 --crop 1000000",
                  "--crop '1000000': expected a whole number from 1 to 4096");
    check_refused(ok_weights + " --image " + q(images / "rgb_97x131.png") + " --resize 5000",
                  "--resize '5000': expected a whole number from 1 to 4096");
  }
  SUBCASE("outputs") {
    check_refused(ok_weights + input + " --labels " + q(labels9), "9 class names for a model with 10 outputs");
    check_refused(ok_weights + input + " --labels " + q(scratch() / "absent.txt"), "cannot open the labels file");
    check_refused(ok_weights + input + " --output " + q(scratch() / "no" / "such" / "dir" / "y.npy"), "y.npy");
  }
  SUBCASE("backend") {
    const Run l = run("--list");
    if (l.out.find("\tcuda\n") == std::string::npos)
      check_refused(ok_weights + input + " --backend cuda", "this ctnn-infer was built without CUDA");
  }
}

// With CUDA in the build: parity on a GPU, a clear refusal without one.
TEST_CASE("infer: --backend cuda" * doctest::skip(!have_tool)) {
  const Run l = run("--list");
  if (l.out.find("\tcuda\n") == std::string::npos) {
    MESSAGE("ctnn-infer was built without CUDA");
    return;
  }
  const Run probe = run(fc10("resnet20_fc10_p2.pth") + input + " --backend cuda --top 1");
  if (probe.status != 0) {
    check_refused(fc10("resnet20_fc10_p2.pth") + input + " --backend cuda", "--backend cuda: no usable CUDA GPU");
    return;
  }
  check_parity(fc10("resnet20_fc10.safetensors") + input + " --backend cuda", "expected_fc10.npy", "cuda, linear:10");
  check_parity("--arch resnet20 --head dropout-softmax:7 --weights " + q(data / "resnet20_dropout_softmax7.pth") + input +
                   " --backend cuda",
               "expected_dropout_softmax7.npy", "cuda, dropout-softmax:7");
  check_parity(fc10("resnet20_fc10_p4.pth") + " --image " + q(images / "rgb_97x131.png") + " " +
                   q(images / "rgb_250x61.png") + " --resize 40 --crop 32 --backend cuda",
               "expected_images_fc10.npy", "cuda, two PNGs");
}

TEST_CASE("infer: the tool is part of this build") {
  if (!have_tool)
    MESSAGE("ctnn-infer is not built (the top-level CMakeLists.txt has no add_subdirectory(tools)); its tests were "
            "skipped");
  CHECK(true);
}

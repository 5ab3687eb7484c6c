// ctnn-infer: run a compiled ResNet (architecture x head x backend from a
// fixed menu) on a .npy tensor or on images, with weights from a .safetensors
// or .pth file. `ctnn-infer --help` has the options; docs/interop.md has
// examples.
//
// Every failure (bad usage, unreadable or hostile file, weights for another
// architecture, input too small, no GPU) ends with exit status 1 and one line
// on stderr; nothing escapes main().

// This translation unit compiles stb_image for ctnn/io/image.hpp.
#define CTNN_IMAGE_IMPLEMENTATION
#include <ctnn/io/image.hpp>

#include <ctnn/core/tensor.hpp>
#include <ctnn/io/npy.hpp>
#include <ctnn/io/preprocess.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <new>
#include <numeric>
#include <string>
#include <vector>

#include "networks.hpp"
#include "options.hpp"

namespace ctnn_infer {
namespace {

ctnn::Tensor load_npy_input(const std::string& path) {
  const ctnn::io::NpyArray a = ctnn::io::read_npy(std::filesystem::path(path));
  if (a.shape.size() != 4)
    throw UsageError(path + ": expected a 4-dimensional N x C x H x W array, found shape " +
                     ctnn::io::shape_string(a.shape));
  if (a.shape[1] != 3)
    throw UsageError(path + ": the input has " + std::to_string(a.shape[1]) +
                     " channels; the networks in ctnn-infer's menu take 3-channel images (Image<3, dynamic, "
                     "dynamic>); replicate a grey channel 3 times, or build a typed model with Image<1, H, W>");
  for (int d : {0, 2, 3})
    if (a.shape[static_cast<std::size_t>(d)] == 0 || a.shape[static_cast<std::size_t>(d)] > (1u << 20))
      throw UsageError(path + ": shape " + ctnn::io::shape_string(a.shape) + " has an empty or implausibly large " +
                       (d == 0 ? "batch" : "spatial") + " dimension");
  ctnn::Tensor t(a.shape[0], 3, a.shape[2], a.shape[3]);
  std::copy(a.data.begin(), a.data.end(), t.data());
  return t;
}

// Each image is resized and cropped as soon as it is decoded, so that only
// crops, not whole photographs, are held at once.
ctnn::Tensor load_images(const Options& o) {
  std::vector<ctnn::io::RgbImage> crops;
  crops.reserve(o.images.size());
  const ctnn::io::ImageTransform transform{o.resize, o.crop, ctnn::io::imagenet_normalization};
  for (const std::string& f : o.images) crops.push_back(ctnn::io::transform_pixels(ctnn::io::read_image(f), transform));
  return ctnn::io::preprocess(crops, {0, 0, ctnn::io::imagenet_normalization});
}

std::vector<std::string> load_labels(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(path + ": cannot open the labels file");
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  return labels;
}

const Entry& find_entry(const Registry& menu, const Options& o, const std::string& backend) {
  for (const Entry& e : menu)
    if (e.arch == o.arch && e.head == o.head && e.backend == backend) return e;
  throw UsageError("no compiled network for --arch " + o.arch + " --head " + std::string(head_name(o.head)) +
                   " on backend " + backend);
}

std::string choose_backend(const Options& o) {
#if defined(CTNN_INFER_WITH_CUDA)
  if (o.backend.empty()) return cuda_device_available() ? "cuda" : "cpu";
  if (o.backend == "cuda" && !cuda_device_available())
    throw UsageError("--backend cuda: no usable CUDA GPU (no device, or no working driver)");
#else
  if (o.backend == "cuda")
    throw UsageError("--backend cuda: this ctnn-infer was built without CUDA (configure with nvcc on the PATH "
                     "and CTNN_CUDA=ON); use --backend cpu or reference");
  if (o.backend.empty()) return "cpu";
#endif
  return o.backend;
}

void print_top(const Options& o, const ctnn::Tensor& y, const std::vector<std::string>& labels) {
  const std::size_t k_all = y.shape().c, k = std::min<std::size_t>(static_cast<std::size_t>(*o.top), k_all);
  const char* kind = o.head == HeadKind::linear ? "logit" : "probability";
  for (std::size_t n = 0; n < y.shape().n; ++n) {
    const float* row = y.data() + n * k_all;
    std::vector<std::size_t> order(k_all);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      [&](std::size_t a, std::size_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    // Softmax of the logits, in double, for linear heads.
    double max = row[order[0]], sum = 0;
    for (std::size_t c = 0; c < k_all; ++c) sum += std::exp(static_cast<double>(row[c]) - max);
    const std::string name = o.images.empty() ? "input " + std::to_string(n) : o.images[n];
    std::printf("%s:\n", name.c_str());
    for (std::size_t r = 0; r < k; ++r) {
      const std::size_t c = order[r];
      std::printf("  %zu. class %zu", r + 1, c);
      if (!labels.empty()) std::printf(" (%s)", labels[c].c_str());
      std::printf("  %s %.6g", kind, static_cast<double>(row[c]));
      if (o.head == HeadKind::linear) std::printf("  softmax %.6f", std::exp(static_cast<double>(row[c]) - max) / sum);
      if (o.head == HeadKind::sigmoid) std::printf("  %s", row[c] >= 0.5f ? "positive" : "negative");
      std::printf("\n");
    }
  }
}

int run(const std::vector<std::string>& args) {
  const Options o = parse_options(args);
  if (o.help) {
    std::fputs(usage_text.data(), stdout);
    return 0;
  }
  Registry menu;
  register_reference(menu);
  register_cpu(menu);
#if defined(CTNN_INFER_WITH_CUDA)
  register_cuda(menu);
#endif
  if (o.list) {
    for (const Entry& e : menu) std::printf("%s\t%s\t%s\n", e.arch.c_str(), std::string(head_name(e.head)).c_str(), e.backend.c_str());
    return 0;
  }
  const std::string backend = choose_backend(o);
  const Entry& entry = find_entry(menu, o, backend);

  // Everything the run needs is checked before the (possibly slow) forward pass.
  if (!std::filesystem::is_regular_file(o.weights))
    throw UsageError(o.weights + ": no such weight file (expected a .safetensors or .pth file)");
  const std::vector<std::string> labels = o.labels.empty() ? std::vector<std::string>{} : load_labels(o.labels);
  const ctnn::Tensor x = o.images.empty() ? load_npy_input(o.input) : load_images(o);

  Request req;
  req.weights = o.weights;
  req.classes = o.classes;
  req.verbose = o.verbose;
  const Result r = entry.run(req, x);
  const ctnn::Extents& s = r.output.shape();
  if (!labels.empty() && labels.size() != s.c)
    throw UsageError(o.labels + ": " + std::to_string(labels.size()) + " class names for a model with " +
                     std::to_string(s.c) + " outputs");
  if (o.verbose)
    std::fprintf(stderr,
                 "ctnn-infer: %s, head %s, %zu outputs; %zu tensors loaded from %s in %.1f ms; input %s; forward "
                 "%.1f ms on %s\n",
                 o.arch.c_str(), std::string(head_name(o.head)).c_str(), s.c, r.loaded, o.weights.c_str(), r.load_ms,
                 ctnn::to_string(x.shape()).c_str(), r.forward_ms, r.backend.c_str());
  if (!o.output.empty())
    ctnn::io::write_npy(o.output, std::span<const float>(r.output.data(), r.output.size()), {s.n, s.c});
  if (o.top) print_top(o, r.output, labels);
  return 0;
}

// One line: the message with any line breaks folded.
void report(const std::string& message) {
  std::string line = message;
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::fprintf(stderr, "ctnn-infer: %s\n", line.c_str());
}

}  // namespace
}  // namespace ctnn_infer

int main(int argc, char** argv) {
  try {
    return ctnn_infer::run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::bad_alloc&) {
    ctnn_infer::report("out of memory");
  } catch (const std::exception& e) {
    ctnn_infer::report(e.what());
  } catch (...) {
    ctnn_infer::report("unknown error");
  }
  return 1;
}

// Shared by the three article examples (ten_classes, binary_sigmoid,
// dropout_softmax): a deterministic input batch, the head re-initialisation
// the article recommends (He or Xavier) with a check of what it produced, and
// the fine-tuning workflow's first step: keep a pretrained backbone, give the
// new head fresh weights.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <ctnn/ctnn.hpp>

namespace example {

// n smooth, different images of 3 x h x w (a stand-in for a decoded,
// normalised photo batch; the demo uses real Fashion-MNIST images).
inline ctnn::Tensor pattern_batch(std::size_t n, std::size_t h, std::size_t w) {
  ctnn::Tensor x(n, 3, h, w);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < 3; ++c)
      for (std::size_t y = 0; y < h; ++y)
        for (std::size_t xx = 0; xx < w; ++xx)
          x(i, c, y, xx) = static_cast<float>(std::sin(0.3 * static_cast<double>(y * (i + 1)) + static_cast<double>(c)) *
                                              std::cos(0.2 * static_cast<double>(xx) - static_cast<double>(i)));
  return x;
}

struct Stats {
  double mean = 0, stddev = 0, min = 0, max = 0;
};

inline Stats stats(std::span<const float> v) {
  Stats s;
  if (v.empty()) return s;
  s.min = s.max = v[0];
  for (float x : v) {
    s.mean += x;
    s.min = std::min<double>(s.min, x);
    s.max = std::max<double>(s.max, x);
  }
  s.mean /= static_cast<double>(v.size());
  for (float x : v) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = std::sqrt(s.stddev / static_cast<double>(v.size()));
  return s;
}

// Re-initialises the head ("fc" and everything under it) and prints what the
// scheme promises next to what the weights show. He (Kaiming) suits layers
// followed by ReLU-like maps; Xavier (Glorot) suits sigmoid/softmax outputs.
template <class M>
void init_head(M& model, ctnn::Init scheme, std::uint64_t seed) {
  model.init(scheme, seed, "fc");
  const char* name = scheme == ctnn::Init::he_normal        ? "He (Kaiming) normal"
                     : scheme == ctnn::Init::he_uniform     ? "He (Kaiming) uniform"
                     : scheme == ctnn::Init::xavier_normal  ? "Xavier (Glorot) normal"
                     : scheme == ctnn::Init::xavier_uniform ? "Xavier (Glorot) uniform"
                                                            : "other";
  std::printf("head re-initialised: model.init(%s, seed %llu, \"fc\")\n", name, static_cast<unsigned long long>(seed));
  for (const ctnn::TensorInfo& t : model.tensors()) {
    if (!t.name.starts_with("fc.")) continue;
    const Stats s = stats(model.tensor(t.name));
    const double fi = t.fan_in, fo = t.fan_out;
    std::string promise;
    if (t.role == ctnn::TensorRole::linear_bias) {
      promise = "bias = 0";
    } else if (scheme == ctnn::Init::he_normal) {
      promise = "N(0, std " + std::to_string(std::sqrt(2.0 / fi)) + ")";
    } else if (scheme == ctnn::Init::he_uniform) {
      promise = "U(+-" + std::to_string(std::sqrt(6.0 / fi)) + ")";
    } else if (scheme == ctnn::Init::xavier_normal) {
      promise = "N(0, std " + std::to_string(std::sqrt(2.0 / (fi + fo))) + ")";
    } else if (scheme == ctnn::Init::xavier_uniform) {
      promise = "U(+-" + std::to_string(std::sqrt(6.0 / (fi + fo))) + ")";
    }
    std::printf("  %-12s fan_in %4d fan_out %4d  expected %-22s found mean %+.4f std %.4f range [%+.4f, %+.4f]\n",
                t.name.c_str(), t.fan_in, t.fan_out, promise.c_str(), s.mean, s.stddev, s.min, s.max);
  }
}

// The article's workflow: start from pretrained weights, replace the head.
// Without a checkpoint on the command line a stand-in "pretrained" ImageNet
// ResNet-18 (random weights, 1000 classes) is saved to a temporary file;
// with one (resnet18.safetensors or resnet18.pth from torchvision, see
// docs/export-weights.md) the real backbone is used.
template <class M>
void keep_backbone(M& model, int argc, char** argv) {
  std::filesystem::path path;
  std::filesystem::path temporary;
  if (argc > 1) {
    path = argv[1];
    std::printf("pretrained weights: %s\n", path.string().c_str());
  } else {
    temporary = std::filesystem::temp_directory_path() /
                ("ctnn-example-" + std::to_string(std::random_device{}()) + ".safetensors");
    ctnn::Model<ctnn::ResNet18<>> imagenet(ctnn::Init::torchvision, /*seed=*/2024);
    imagenet.save(temporary);
    path = temporary;
    std::printf("pretrained weights: a stand-in ResNet18<Linear<512, 1000>> saved to %s\n", path.string().c_str());
  }
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() {
      std::error_code ec;
      if (!p.empty()) std::filesystem::remove(p, ec);
    }
  } cleanup{temporary};

  // Loading everything fails (PyTorch's strict=True); the message says why and what to do.
  try {
    model.load(path, ctnn::Load::strict);
    std::printf("Load::strict: loaded (the checkpoint's head matches this one)\n");
  } catch (const ctnn::io::LoadError& e) {
    std::printf("Load::strict refuses it:\n  %s\n", e.what());
  }

  std::vector<float> head_before;
  for (const ctnn::TensorInfo& t : model.tensors())
    if (t.name.starts_with("fc.")) {
      const auto v = model.tensor(t.name);
      head_before.insert(head_before.end(), v.begin(), v.end());
    }

  const ctnn::LoadReport report = model.load(path, ctnn::Load::backbone_only);
  std::printf("Load::backbone_only: %zu tensors loaded, %zu kept (", report.loaded.size(), report.kept.size());
  for (std::size_t i = 0; i < report.kept.size(); ++i) std::printf("%s%s", i ? ", " : "", report.kept[i].c_str());
  std::printf("), %zu in the file not used\n", report.unexpected.size());

  // Check what the policy promises: the backbone equals the file, the head is untouched.
  const ctnn::io::TensorFile file = ctnn::io::read_weights(path);
  std::size_t equal = 0;
  for (const std::string& name : report.loaded) {
    const ctnn::io::TensorRecord* r = file.find(name);
    const auto mine = model.tensor(name);
    std::vector<float> theirs(mine.size());
    ctnn::io::convert_to_f32(*r, theirs, file.source);
    equal += std::equal(mine.begin(), mine.end(), theirs.begin());
  }
  std::vector<float> head_after;
  for (const ctnn::TensorInfo& t : model.tensors())
    if (t.name.starts_with("fc.")) {
      const auto v = model.tensor(t.name);
      head_after.insert(head_after.end(), v.begin(), v.end());
    }
  std::printf("  backbone tensors equal to the file: %zu of %zu; head unchanged: %s\n", equal, report.loaded.size(),
              head_after == head_before ? "yes" : "NO");
}

}  // namespace example

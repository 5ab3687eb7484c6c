// The one function template behind every menu entry: build the model, load
// the checkpoint strictly, run one forward pass, copy the output out.
// Included only by the nets_*.cpp / nets_cuda.cu translation units.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <ctnn/ctnn.hpp>

#include "networks.hpp"

namespace ctnn_infer {

// clang before 18 has no floating-point template arguments.
#if defined(__clang__) && __clang_major__ < 18
using HalfDropout = ctnn::DropoutRatio<1, 2>;
#else
using HalfDropout = ctnn::Dropout<0.5>;
#endif

template <int Features>
struct Heads {
  using linear = ctnn::Linear<Features, ctnn::dynamic>;
  using sigmoid = ctnn::Sequential<ctnn::Linear<Features, 1>, ctnn::Sigmoid>;
  using dropout_softmax = ctnn::Sequential<ctnn::Linear<Features, ctnn::dynamic>, HalfDropout, ctnn::Softmax>;
};

template <class Net, class Backend>
Result run_network(const Request& req, ctnn::ConstTensorView input) {
  using Model = ctnn::Model<Net, Backend>;
  using clock = std::chrono::steady_clock;
  const auto ms = [](clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };

  const auto t0 = clock::now();
  const ctnn::io::TensorFile file = ctnn::io::read_weights(req.weights);
  // Zeros, not a random initialisation: the strict load overwrites every
  // tensor. A run-time-width head is built at the checkpoint's width from the
  // start (Model::load would otherwise rebuild and re-initialise it, which
  // costs more than reading a ResNet-18).
  std::unique_ptr<Model> model;
  if constexpr (Model::dynamic_classes) {
    std::size_t classes = req.classes.value_or(0);
    for (const char* name : {"fc.weight", "fc.0.weight"}) {
      const ctnn::io::TensorRecord* r = file.find(name);
      if (!classes && r && r->shape.size() == 2 && r->shape[0] > 0 && r->shape[0] <= (1u << 24))
        classes = static_cast<std::size_t>(r->shape[0]);
    }
    model = std::make_unique<Model>(classes ? classes : 1, ctnn::Init::zeros);
  } else {
    model = std::make_unique<Model>(ctnn::Init::zeros);
  }
  const ctnn::LoadReport report = model->load(file, ctnn::Load::strict);
  // A run-time-width head takes its width from the checkpoint; a width given
  // on the command line is a claim about the checkpoint, checked here.
  if (req.classes && model->classes() != *req.classes)
    throw UsageError(req.weights + ": the checkpoint's head has " + std::to_string(model->classes()) +
                     " outputs, but --head asked for " + std::to_string(*req.classes));
  if constexpr (ctnn::detail::head_is_softmax<Net>())
    if (model->classes() < 2)
      throw UsageError(req.weights + ": a softmax head needs at least 2 outputs, the checkpoint's head has " +
                       std::to_string(model->classes()));
  const auto t1 = clock::now();

  auto ctx = model->make_context({input.shape.n, input.shape.h, input.shape.w});
  const ctnn::ConstTensorView y = model->forward(input, ctx);
  Result r;
  r.output = ctnn::Tensor::copy_of(y);
  const auto t2 = clock::now();
  r.backend = model->backend_description();
  r.loaded = report.loaded.size();
  r.load_ms = ms(t1 - t0);
  r.forward_ms = ms(t2 - t1);
  return r;
}

// The three heads of one architecture on one backend.
template <template <class, class> class Arch, int Features, class Backend>
void add_heads(Registry& registry, const std::string& arch) {
  using H = Heads<Features>;
  using Input = ctnn::Image<3, ctnn::dynamic, ctnn::dynamic>;
  registry.push_back({arch, HeadKind::linear, Backend::name, &run_network<Arch<typename H::linear, Input>, Backend>});
  registry.push_back({arch, HeadKind::sigmoid, Backend::name, &run_network<Arch<typename H::sigmoid, Input>, Backend>});
  registry.push_back(
      {arch, HeadKind::dropout_softmax, Backend::name, &run_network<Arch<typename H::dropout_softmax, Input>, Backend>});
}

template <class H, class I> using R18 = ctnn::ResNet18<H, I>;
template <class H, class I> using R34 = ctnn::ResNet34<H, I>;
template <class H, class I> using R50 = ctnn::ResNet50<H, I>;
template <class H, class I> using R101 = ctnn::ResNet101<H, I>;
template <class H, class I> using R152 = ctnn::ResNet152<H, I>;
template <class H, class I> using R20 = ctnn::ResNet20<H, I>;
template <class H, class I> using R56 = ctnn::ResNet56<H, I>;

// The whole menu on one backend. The CIFAR nets take any spatial size too
// (Image<3, dynamic, dynamic>), 32x32 being their native one.
template <class Backend>
void add_menu(Registry& r) {
  add_heads<R18, 512, Backend>(r, "resnet18");
  add_heads<R34, 512, Backend>(r, "resnet34");
  add_heads<R50, 2048, Backend>(r, "resnet50");
  add_heads<R101, 2048, Backend>(r, "resnet101");
  add_heads<R152, 2048, Backend>(r, "resnet152");
  add_heads<R20, 64, Backend>(r, "resnet20");
  add_heads<R56, 64, Backend>(r, "resnet56");
}

}  // namespace ctnn_infer

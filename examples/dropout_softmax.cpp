// Article example 3: add regularisation.
//
//   model.fc = torch.nn.Sequential(
//       torch.nn.Linear(model.fc.in_features, model.fc.out_features),
//       torch.nn.Dropout(p=0.5), torch.nn.Softmax(dim=1))
//
// Dropout is the identity at inference and keeps the layer numbering (fc.0,
// fc.1, fc.2) that PyTorch's state_dict uses; Softmax makes predict() return
// a class and its probability per image. Dropout<1.0> does not compile.
// Usage: ctnn-dropout-softmax [resnet18.safetensors|resnet18.pth]
#include <cstdio>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "example_support.hpp"

// clang before 18 has no floating-point template arguments.
#if defined(__clang__) && __clang_major__ < 18
using HalfDropout = ctnn::DropoutRatio<1, 2>;
#else
using HalfDropout = ctnn::Dropout<0.5>;
#endif

using Regularised = ctnn::ResNet18<ctnn::Sequential<ctnn::Linear<512, 1000>, HalfDropout, ctnn::Softmax>>;

static_assert(Regularised::parameter_count == 11'689'512);  // Dropout and Softmax add no parameters

int main(int argc, char** argv) try {
  ctnn::Model<Regularised> model;
  std::printf("%s\n", model.summary().c_str());
  std::printf("parameters: %zu (compile time), %zu (model)\n\n", Regularised::parameter_count,
              model.parameter_count());

  example::init_head(model, ctnn::Init::xavier_uniform, /*seed=*/7);
  example::keep_backbone(model, argc, argv);

  const ctnn::Tensor images = example::pattern_batch(3, 64, 64);
  const std::vector<ctnn::ClassPrediction> p = model.predict(images);
  std::printf("\npredict on %zu images of 64x64 (Softmax head: most likely class and its probability):\n", p.size());
  for (std::size_t i = 0; i < p.size(); ++i)
    std::printf("  image %zu: class %4d, p = %.5f\n", i, p[i].label, p[i].probability);

  // Inference ignores dropout: the same input gives the same output.
  const std::vector<ctnn::ClassPrediction> again = model.predict(images);
  std::printf("dropout is the identity at inference: repeated predict %s\n",
              again[0].probability == p[0].probability && again[0].label == p[0].label ? "identical" : "DIFFERS");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "ctnn-dropout-softmax: %s\n", e.what());
  return 1;
}

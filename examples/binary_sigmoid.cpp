// Article example 2: change the activation, a binary classifier.
//
//   model.fc = torch.nn.Sequential(torch.nn.Linear(model.fc.in_features, 1), torch.nn.Sigmoid())
//
// The head's type says what predict() returns: a 1-wide Linear followed by
// Sigmoid gives a probability and a decision per image. Softmax over that one
// output would be the constant 1, and does not compile (shape_check.cpp).
// Usage: ctnn-binary-sigmoid [resnet18.safetensors|resnet18.pth]
#include <cstdio>
#include <type_traits>
#include <vector>

#include <ctnn/ctnn.hpp>

#include "example_support.hpp"

using Binary = ctnn::ResNet18<ctnn::Sequential<ctnn::Linear<512, 1>, ctnn::Sigmoid>>;

static_assert(Binary::output_shape().c == 1);
static_assert(Binary::parameter_count == 11'177'025);

int main(int argc, char** argv) try {
  ctnn::Model<Binary> model;
  std::printf("%s\n", model.summary().c_str());
  std::printf("parameters: %zu (compile time), %zu (model)\n", Binary::parameter_count, model.parameter_count());
  std::printf("the head's tensors are named as PyTorch names them:");
  for (const ctnn::TensorInfo& t : model.tensors())
    if (t.name.starts_with("fc.")) std::printf(" %s", t.name.c_str());
  std::printf("\n\n");

  example::init_head(model, ctnn::Init::xavier_uniform, /*seed=*/7);
  example::keep_backbone(model, argc, argv);

  const ctnn::Tensor images = example::pattern_batch(4, 64, 64);
  const std::vector<ctnn::BinaryPrediction> p = model.predict(images);
  static_assert(std::is_same_v<decltype(model.predict(images)), std::vector<ctnn::BinaryPrediction>>);
  std::printf("\npredict on %zu images of 64x64 (probability of the positive class, decision at 0.5):\n", p.size());
  for (std::size_t i = 0; i < p.size(); ++i)
    std::printf("  image %zu: p = %.4f -> %s\n", i, p[i].probability, p[i].positive ? "positive" : "negative");
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "ctnn-binary-sigmoid: %s\n", e.what());
  return 1;
}

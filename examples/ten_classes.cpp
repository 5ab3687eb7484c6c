// Article example 1: change the number of classes.
//
//   model = models.resnet18(pretrained=True)
//   model.fc = torch.nn.Linear(model.fc.in_features, 10)
//
// In ctnn the head is part of the type, so "512" is checked against the
// backbone by the compiler (ResNet18<Linear<2048, 10>> does not compile; see
// shape_check.cpp). Usage: ctnn-ten-classes [resnet18.safetensors|resnet18.pth]
#include <cstdio>

#include <ctnn/ctnn.hpp>

#include "example_support.hpp"

using TenClasses = ctnn::ResNet18<ctnn::Linear<512, 10>>;

static_assert(TenClasses::features == 512);                  // model.fc.in_features
static_assert(TenClasses::output_shape().c == 10);           // model.fc.out_features
static_assert(TenClasses::parameter_count == 11'181'642);    // as torchvision counts them

int main(int argc, char** argv) try {
  ctnn::Model<TenClasses> model;  // torchvision's initialisation, seed 0
  std::printf("%s\n", model.summary().c_str());
  std::printf("parameters: %zu (compile time), %zu (model)\n\n", TenClasses::parameter_count, model.parameter_count());

  example::init_head(model, ctnn::Init::he_normal, /*seed=*/7);
  example::keep_backbone(model, argc, argv);

  // Logits for a small batch (the head has no activation: predict returns them as a tensor).
  const ctnn::Tensor images = example::pattern_batch(2, 64, 64);
  const ctnn::Tensor logits = model.predict(images);
  std::printf("\npredict on %zu images of 64x64: logits [%zu, %zu]\n", logits.shape().n, logits.shape().n,
              logits.shape().c);
  for (std::size_t i = 0; i < logits.shape().n; ++i) {
    std::size_t best = 0;
    std::printf("  image %zu:", i);
    for (std::size_t c = 0; c < logits.shape().c; ++c) {
      std::printf(" %+.3f", logits(i, c));
      if (logits(i, c) > logits(i, best)) best = c;
    }
    std::printf("  -> class %zu\n", best);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "ctnn-ten-classes: %s\n", e.what());
  return 1;
}

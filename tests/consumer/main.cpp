// What a downstream project does first: name a network, check it at compile
// time, build a model and run a forward pass.
#include <cmath>
#include <cstdio>

#include <ctnn/ctnn.hpp>

using Net = ctnn::ResNet18<ctnn::Linear<512, 10>>;
static_assert(Net::parameter_count == 11'181'642, "torchvision's resnet18(num_classes=10) count");

int main() {
  ctnn::Model<Net> model(ctnn::Init::torchvision, /*seed=*/1);
  ctnn::Tensor x(2, 3, 40, 48);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = std::sin(0.01f * static_cast<float>(i));
  auto ctx = model.make_context({2, 40, 48});
  const ctnn::ConstTensorView y = model.forward(x, ctx);
  if (y.shape != ctnn::Extents{2, 10, 1, 1}) {
    std::printf("wrong output shape %s\n", ctnn::to_string(y.shape).c_str());
    return 1;
  }
  bool finite = true, differs = false;
  for (std::size_t i = 0; i < y.size(); ++i) {
    finite = finite && std::isfinite(y.data[i]);
    differs = differs || y.data[i] != y.data[0];
  }
  if (!finite || !differs) {
    std::printf("implausible output (finite %d, non-constant %d)\n", finite, differs);
    return 1;
  }
  std::printf("ctnn consumer ok: %zu parameters, output %s, backend %s\n", model.parameter_count(),
              ctnn::to_string(y.shape).c_str(), model.backend_description().c_str());
  return 0;
}

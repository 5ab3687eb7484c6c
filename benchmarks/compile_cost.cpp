// Compile-cost probe: one translation unit that instantiates CPU inference for
// ResNet-18 and ResNet-50, each with the three heads of the article (10-class
// logits, a 1-wide sigmoid, a 1000-class softmax behind dropout). It is not
// built by CMake: benchmarks/compile_cost.sh compiles it with /usr/bin/time
// next to a dlib ResNet-18 translation unit (dlib_resnet18.cpp) and reports
// seconds and peak memory of the compiler.
//
// The program also runs, so the instantiations are real code rather than
// declarations: build it with the same flags and run it to print one
// checksum per network (a 64x64 image keeps the run short).
#include <cstdio>
#include <random>

#include <ctnn/backend/cpu/cpu.hpp>
#include <ctnn/inference.hpp>

namespace {

using namespace ctnn;

template <int F>
using TenClasses = Linear<F, 10>;
template <int F>
using Binary = Sequential<Linear<F, 1>, Sigmoid>;
template <int F>
using ImageNet = Sequential<Linear<F, 1000>, Dropout<0.5>, Softmax>;

// Builds the model (which prepares the CPU plan) and runs one forward pass;
// returns the sum of the outputs so the call cannot be dropped.
template <class Net>
double infer(const char* label, const Tensor& image) {
  Model<Net, backend::Cpu> model(Init::torchvision, 0);
  auto ctx = model.make_context({image.shape().n, image.shape().h, image.shape().w});
  const ConstTensorView y = model.forward(image, ctx);
  double sum = 0;
  for (std::size_t i = 0; i < y.size(); ++i) sum += y.data[i];
  std::printf("%-10s %zu outputs, sum %.6g\n", label, y.size(), sum);
  return sum;
}

}  // namespace

int main() {
  Tensor image(Extents{1, 3, 64, 64});
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (std::size_t i = 0; i < image.size(); ++i) image.data()[i] = nd(rng);

  double total = 0;
  total += infer<ResNet18<TenClasses<512>>>("r18/10", image);
  total += infer<ResNet18<Binary<512>>>("r18/sig", image);
  total += infer<ResNet18<ImageNet<512>>>("r18/1000", image);
  total += infer<ResNet50<TenClasses<2048>>>("r50/10", image);
  total += infer<ResNet50<Binary<2048>>>("r50/sig", image);
  total += infer<ResNet50<ImageNet<2048>>>("r50/1000", image);
  return total == total ? 0 : 1;  // NaN anywhere fails the run
}

// Parity of the CUDA backend (FP32, TF32 and BF16) with the reference backend on
// every architecture of the ResNet family and on the article's heads, at
// small odd input sizes and batch 1 (split-K, small tiles) and batch 3; and
// with PyTorch itself on the torchvision fixtures at ImageNet sizes.
#include "helpers.cuh"

#include "parity_fixture.hpp"

using namespace ctnn;
using ctnn::cuda_test::check_against_reference;

namespace {
const std::vector<Extents> small_sizes{{1, 3, 37, 45}, {3, 3, 50, 33}};
}

TEST_CASE("cuda parity: ResNet18 with the article's heads") {
  check_against_reference<ResNet18<Linear<512, 10>>>("ResNet18<Linear<512,10>>", small_sizes);
  check_against_reference<ResNet18<Sequential<Linear<512, 1>, Sigmoid>>>("ResNet18<Linear<512,1>, Sigmoid>",
                                                                         {{3, 3, 41, 39}});
  check_against_reference<ResNet18<Sequential<Linear<512, 1000>, Dropout<0.5>, Softmax>>>(
      "ResNet18<Linear<512,1000>, Dropout, Softmax>", {{2, 3, 41, 39}});
  check_against_reference<ResNet18<Linear<512, dynamic>>>("ResNet18<Linear<512,dynamic>> (7 classes)",
                                                          {{2, 3, 33, 35}}, std::size_t{7});
}

TEST_CASE("cuda parity: ResNet34, ResNet50, ResNet101, ResNet152") {
  check_against_reference<ResNet34<Linear<512, 10>>>("ResNet34<Linear<512,10>>", small_sizes);
  check_against_reference<ResNet50<Linear<2048, 10>>>("ResNet50<Linear<2048,10>>", small_sizes);
  check_against_reference<ResNet101<Linear<2048, 10>>>("ResNet101<Linear<2048,10>>", {{2, 3, 33, 35}});
  check_against_reference<ResNet152<Linear<2048, 10>>>("ResNet152<Linear<2048,10>>", {{1, 3, 33, 35}});
}

TEST_CASE("cuda parity: the CIFAR family (ResNet20 ... ResNet110)") {
  check_against_reference<ResNet20<Linear<64, 10>, Image<1, 28, 28>>>("ResNet20<Linear<64,10>, Image<1,28,28>>",
                                                                       {{1, 1, 28, 28}, {5, 1, 28, 28}});
  check_against_reference<ResNet32<Linear<64, 10>>>("ResNet32<Linear<64,10>>", {{4, 3, 32, 32}});
  check_against_reference<ResNet44<Sequential<Linear<64, 1>, Sigmoid>>>("ResNet44<Linear<64,1>, Sigmoid>",
                                                                        {{2, 3, 32, 32}});
  check_against_reference<ResNet56<Linear<64, 10>>>("ResNet56<Linear<64,10>>", {{2, 3, 31, 29}});
  check_against_reference<ResNet110<Sequential<Linear<64, 100>, Dropout<0.5>, Softmax>>>(
      "ResNet110<Linear<64,100>, Dropout, Softmax>", {{2, 3, 32, 32}});
}

// The torchvision fixtures (tests/data/parity) hold PyTorch's own outputs,
// with calibrated BatchNorm statistics, at ImageNet sizes: the CUDA backend
// against PyTorch directly, big tiles and all.
namespace {
template <class Net, class Backend>
void check_fixture(const std::string& name, double tol, bool features) {
  const test::Fixture fx(name);
  Model<Net, Backend> model;
  fx.fill(model);
  const Tensor x = fx.input();
  auto ctx = model.make_context({fx.input_shape.n, fx.input_shape.h, fx.input_shape.w});
  for (int pass = 0; pass < (features ? 2 : 1); ++pass) {
    const bool feat = pass == 1;
    const std::vector<float> want = fx.floats(feat ? "expected.features" : "expected.output");
    const ConstTensorView got = feat ? model.features(x, ctx) : model.forward(x, ctx);
    const double err = test::relative_error(got, want);
    std::printf("  torchvision %-26s %-9s %-10s rel %.2e (tolerance %.0e)\n", name.c_str(), feat ? "features" : "output",
                Backend::name, err, tol);
    CHECK_MESSAGE(err <= tol, name << " " << Backend::name << (feat ? " features" : " output") << ": relative error "
                                   << err);
  }
}
template <class Net>
void check_fixture_both(const std::string& name, bool features) {
  check_fixture<Net, backend::Cuda>(name, cuda_test::fp32_tolerance, features);
  check_fixture<Net, backend::CudaTF32>(name, cuda_test::tf32_tolerance, features);
  check_fixture<Net, backend::CudaBF16>(name, cuda_test::bf16_tolerance, features);
}
}  // namespace

TEST_CASE("cuda parity: torchvision fixtures (PyTorch outputs) at ImageNet sizes") {
  check_fixture_both<ResNet18<>>("resnet18_fc1000", true);
  check_fixture_both<ResNet18<Linear<512, 10>>>("resnet18_fc10", false);
  check_fixture_both<ResNet18<Sequential<Linear<512, 1>, Sigmoid>>>("resnet18_sigmoid", false);
  check_fixture_both<ResNet18<Sequential<Linear<512, 1000>, Dropout<0.5>, Softmax>>>("resnet18_dropout_softmax", false);
  check_fixture_both<ResNet34<>>("resnet34_160x208", true);
  check_fixture_both<ResNet50<>>("resnet50", true);
  check_fixture_both<ResNet20<Linear<64, 10>, Image<1, 28, 28>>>("resnet20_1x28x28", true);
}

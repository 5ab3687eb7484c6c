// The CPU training executor against the reference one (the oracle): the same
// forward values, gradients and parameters after a few optimiser steps, for
// every op kind (grouped convolutions, strided and 1x1 convs, max pooling,
// dropout, Sigmoid and Softmax heads), and bitwise the same results for any
// thread count.
#include <doctest/doctest.h>

#include <ctnn/ctnn.hpp>

#include "training_agreement.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

using namespace ctnn;
using namespace ctnn::train;

namespace {
using test::tensor_error;
Tensor input(Extents e, std::uint64_t seed) { return test::random_tensor(e, seed); }

template <class Loss, class Net, class Opt>
void agree(Extents in, const Targets& targets, Opt opt, int steps = 3, std::uint64_t seed = 7) {
  test::agree_with_reference<Loss, Net, backend::Cpu>(in, targets, opt, steps, seed);
}
}  // namespace

TEST_CASE("cpu training matches the reference: ResNet-20, SGD with Nesterov") {
  const std::vector<int> labels{3, 1, 4, 1, 5};
  // Input seed 1: with seed 7, step 3 meets a ReLU input at the rounding limit (see agree).
  agree<CrossEntropy, ResNet20<Linear<64, 6>, Image<1, 11, 9>>>(
      {5, 1, 11, 9}, {.classes = labels}, SGD{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true}, 3,
      1);
}

TEST_CASE("cpu training matches the reference: ResNet-20 with option-A shortcuts") {
  const std::vector<int> labels{0, 2, 1, 2};
  agree<CrossEntropy, ResNet20A<Linear<64, 3>, Image<3, 9, 11>>>({4, 3, 9, 11}, {.classes = labels},
                                                                 SGD{.lr = 0.1, .momentum = 0.9}, 2);
}

TEST_CASE("cpu training matches the reference: 7x7 stride-2 stem, max pooling, grouped and strided 1x1 convs") {
  // No BatchNorm: its backward at small batches is ill-conditioned in any
  // float32 implementation, which would hide what this checks.
  using Net = Network<Image<3, 23, 21>, Conv<3, 16, 7, 2, 3>, ReLU, MaxPool<3, 2, 1>, Conv<16, 32, 3, 1, 1, true, 4>,
                      ReLU, Conv<32, 32, 3, 2, 1, false, 32>, ReLU, Conv<32, 48, 1, 2, 0>, ReLU,
                      Conv<48, 48, 3, 1, 1, false, 3>, GlobalAvgPool, Linear<48, 5>>;
  const std::vector<int> labels{2, 0, 1, 4};
  agree<CrossEntropy, Net>({4, 3, 23, 21}, {.classes = labels}, SGD{.lr = 0.05, .momentum = 0.9});
}

TEST_CASE("cpu training forward of ResNeXt-50 matches the reference") {
  using Net = ResNeXt50_32x4d<Linear<2048, 3>, Image<3, 35, 33>>;
  Model<Net, backend::Reference> ref_model(Init::torchvision, 5);
  Model<Net, backend::Cpu> cpu_model(Init::torchvision, 5);
  const Tensor x = input({3, 3, 35, 33}, 7);
  const std::vector<int> labels{2, 0, 1};
  auto ref = make_trainer<CrossEntropy>(ref_model, SGD{.lr = 0.0});
  auto cpu = make_trainer<CrossEntropy>(cpu_model, SGD{.lr = 0.0});
  CHECK(cpu.step(x, {.classes = labels}) == doctest::Approx(ref.step(x, {.classes = labels})).epsilon(1e-4));
  for (const TensorInfo& t : ref_model.tensors())  // BatchNorm statistics of the batch
    if (!t.trainable()) CHECK(tensor_error(cpu_model.parameters(), ref_model.parameters(), t) < 1e-4);
}

TEST_CASE("cpu training matches the reference: dropout, Sigmoid and Softmax heads") {
  using Drop = Network<Image<3, 10, 9>, Conv<3, 8, 3, 2, 1, true>, BatchNorm<8>, ReLU, MaxPool<3, 2, 1>,
                       Conv<8, 12, 1>, ReLU, GlobalAvgPool, Linear<12, 7>, DropoutRatio<1, 3>, Linear<7, 4>, Softmax>;
  const std::vector<int> classes{3, 0, 2, 1};
  agree<CrossEntropyOnProbabilities, Drop>({4, 3, 10, 9}, {.classes = classes}, SGD{.lr = 0.05, .momentum = 0.9});
  using Bin = Network<Image<2, 8, 8>, Conv<2, 6, 3, 1, 1>, BatchNorm<6>, ReLU, BasicBlock<6, 8, 2>, GlobalAvgPool,
                      Linear<8, 1>, Sigmoid>;
  const std::vector<float> binary{1.f, 0.f, 0.f, 1.f};
  agree<BCE, Bin>({4, 2, 8, 8}, {.binary = binary}, AdamW(1e-2, 0.1));
}

TEST_CASE("cpu training gives the same bits for any thread count") {
#if defined(_OPENMP)
  using Net = ResNet20<Linear<64, 4>, Image<1, 12, 12>>;
  const Tensor x = input({16, 1, 12, 12}, 2);
  const std::vector<int> labels{0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0};
  const auto train_with = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Model<Net> model(Init::torchvision, 1);
    auto trainer = make_trainer<CrossEntropy>(model, SGD{.lr = 0.1, .momentum = 0.9});
    for (int i = 0; i < 2; ++i) trainer.step(x, {.classes = labels});
    omp_set_num_threads(saved);
    return std::vector<float>(model.parameters().begin(), model.parameters().end());
  };
  const std::vector<float> one = train_with(1), two = train_with(2), three = train_with(3);
  CHECK(one == two);
  CHECK(one == three);
#else
  MESSAGE("built without OpenMP: the thread count cannot be varied in-process");
#endif
}

// Training on the GPU against the reference backend: whole-network steps
// (losses, first-step gradients, parameters after several steps; ResNet-50's
// forward and batch statistics), head-only
// fine-tuning on the backbone's CUDA features, bitwise repeatable steps, and
// the refusal of data-parallel exchange (host gradients only).
#include "helpers.cuh"
#include "training_agreement.hpp"

using namespace ctnn;
using namespace ctnn::train;

TEST_CASE("cuda training matches the reference: ResNet-20, SGD with Nesterov") {
  const std::vector<int> labels{3, 1, 4, 1, 5};
  test::agree_with_reference<CrossEntropy, ResNet20<Linear<64, 6>, Image<1, 11, 9>>, backend::Cuda>(
      {5, 1, 11, 9}, {.classes = labels}, SGD{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true}, 3,
      2);
}

TEST_CASE("cuda bf16 training (CudaBF16, mixed precision) within its bound: ResNet-20, SGD with Nesterov") {
  // The simulator's case (tests/cuda_host/training_test.cpp) on the GPU, same bounds.
  const std::vector<int> labels{3, 1, 4, 1, 5};
  const SGD opt{.lr = 0.05, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true};
  const auto a = test::bf16_against_reference<ResNet20<Linear<64, 6>, Image<1, 11, 9>>, backend::CudaBF16>(
      {5, 1, 11, 9}, {.classes = labels}, opt, 4, 2);
  CHECK(a.first_loss < 5e-3);
  CHECK(a.first_loss > 1e-5);
  CHECK(a.gradient < 0.5);
  CHECK(a.progress < 0.2);
  CHECK(a.final_loss < 0.3);
}

TEST_CASE("cuda training forward of ResNet-50 matches the reference: loss and batch statistics") {
  // Gradients are not compared here: at 2x2 maps BatchNorm's backward cancels
  // so much that float32 itself (the CPU backend too) is 0.2 off double there.
  using Net = ResNet50<Linear<2048, 4>, Image<3, 40, 36>>;
  Model<Net, backend::Reference> ref_model(Init::torchvision, 5);
  Model<Net, backend::Cuda> gpu_model(Init::torchvision, 5);
  const Tensor x = test::random_tensor({3, 3, 40, 36}, 7);
  const std::vector<int> labels{2, 0, 1};
  auto ref = make_trainer<CrossEntropy>(ref_model, SGD{.lr = 0.0});
  auto gpu = make_trainer<CrossEntropy>(gpu_model, SGD{.lr = 0.0});
  CHECK(gpu.step(x, {.classes = labels}) == doctest::Approx(ref.step(x, {.classes = labels})).epsilon(1e-4));
  gpu.sync_model();
  for (const TensorInfo& t : ref_model.tensors())  // BatchNorm statistics of the batch
    if (!t.trainable()) {
      INFO(t.name);
      CHECK(test::tensor_error(gpu_model.parameters(), ref_model.parameters(), t) < 1e-4);
    }
}

TEST_CASE("cuda training matches the reference: dropout, Sigmoid and Softmax heads") {
  using Drop = Network<Image<3, 10, 9>, Conv<3, 8, 3, 2, 1, true>, BatchNorm<8>, ReLU, MaxPool<3, 2, 1>,
                       Conv<8, 12, 1>, ReLU, GlobalAvgPool, Linear<12, 7>, DropoutRatio<1, 3>, Linear<7, 4>, Softmax>;
  const std::vector<int> classes{3, 0, 2, 1};
  test::agree_with_reference<CrossEntropyOnProbabilities, Drop, backend::Cuda>(
      {4, 3, 10, 9}, {.classes = classes}, Adam{.lr = 1e-2, .weight_decay = 1e-3});
  using Bin = Network<Image<2, 8, 8>, Conv<2, 6, 3, 1, 1>, BatchNorm<6>, ReLU, BasicBlock<6, 8, 2>, GlobalAvgPool,
                      Linear<8, 1>, Sigmoid>;
  const std::vector<float> binary{1.f, 0.f, 0.f, 1.f};
  test::agree_with_reference<BCE, Bin, backend::Cuda>({4, 2, 8, 8}, {.binary = binary}, AdamW(1e-2, 0.1));
}

TEST_CASE("cuda training: head-only fine-tuning on CUDA features matches the reference") {
  using Net = ResNet18<Linear<512, 3>, Image<3, 32, 32>>;
  Model<Net, backend::Reference> ref_model(Init::torchvision, 9);
  Model<Net, backend::Cuda> gpu_model(Init::torchvision, 9);
  const Tensor x = test::random_tensor({6, 3, 32, 32}, 4);
  const std::vector<int> labels{0, 1, 2, 2, 1, 0};
  auto ref = make_trainer<CrossEntropy>(ref_model, SGD{.lr = 0.05, .momentum = 0.9}, Scope::head_only);
  auto gpu = make_trainer<CrossEntropy>(gpu_model, SGD{.lr = 0.05, .momentum = 0.9}, Scope::head_only);
  CHECK_FALSE(gpu.syncs_every_step());  // parameters stay on the GPU
  for (int s = 0; s < 3; ++s) CHECK(gpu.step(x, {.classes = labels}) == doctest::Approx(ref.step(x, {.classes = labels})).epsilon(1e-4));
  gpu.sync_model();
  for (const TensorInfo& t : ref_model.tensors())
    if (t.name.rfind("fc", 0) == 0) {
      INFO(t.name);
      CHECK(test::tensor_error(gpu_model.parameters(), ref_model.parameters(), t) < 1e-3);
    }
}

TEST_CASE("cuda training: the same steps give the same bits") {
  using Net = ResNet20<Linear<64, 4>, Image<1, 16, 16>>;
  const Tensor x = test::random_tensor({16, 1, 16, 16}, 2);
  const std::vector<int> labels{0, 1, 2, 3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0};
  const auto run = [&] {
    Model<Net, backend::Cuda> model(Init::torchvision, 1);
    auto trainer = make_trainer<CrossEntropy>(model, SGD{.lr = 0.1, .momentum = 0.9});
    for (int i = 0; i < 3; ++i) trainer.step(x, {.classes = labels});
    trainer.sync_model();
    return std::vector<float>(model.parameters().begin(), model.parameters().end());
  };
  CHECK(run() == run());
}

TEST_CASE("cuda training: data-parallel exchange is refused with a clear error") {
  struct NoExchange : GradientExchange {
    void start(std::span<float>) override {}
    void gradient_ready(std::span<float>, std::size_t, std::size_t) override {}
    void gradients_done(std::span<float>) override {}
    void parameters_updated(std::span<float>) override {}
  } exchange;
  Model<ResNet20<Linear<64, 4>, Image<1, 16, 16>>, backend::Cuda> model(Init::torchvision, 1);
  auto trainer = make_trainer<CrossEntropy>(model, SGD{.lr = 0.1});
  try {
    trainer.set_exchange(&exchange);
    FAIL("set_exchange accepted a device executor");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("host memory") != std::string::npos);
  }
}

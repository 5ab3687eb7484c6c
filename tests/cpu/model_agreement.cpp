// Model<Net, backend::Cpu> against Model<Net, backend::Reference> with the
// same parameters: random initialisation plus random, non-trivial BatchNorm
// statistics, so that folding BN into the convolutions is really exercised.
// Sizes are small and odd (the reference backend is slow by design).
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <ctnn/backend/cpu/cpu.hpp>
#include <ctnn/ctnn.hpp>

#include "naive.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

using namespace ctnn;
using ctnn::test::random_input;
using ctnn::test::relative_error;

namespace {

// Running statistics and affine parameters as a trained network has them.
void randomize_batch_norm(Parameters& p, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> scale(0.5f, 1.5f), shift(-0.3f, 0.3f), var(0.4f, 2.0f);
  for (const TensorInfo& t : p.infos()) {
    std::span<float> v = p.tensor(t.name);
    if (t.role == TensorRole::bn_weight)
      for (float& x : v) x = scale(rng);
    else if (t.role == TensorRole::bn_bias || t.role == TensorRole::bn_running_mean)
      for (float& x : v) x = shift(rng);
    else if (t.role == TensorRole::bn_running_var)
      for (float& x : v) x = var(rng);
  }
}

template <class Cpu, class Ref>
void same_parameters(Cpu& cpu, Ref& ref, unsigned seed) {
  cpu.update([&](Parameters& p) { randomize_batch_norm(p, seed); });
  const std::span<const float> src = cpu.parameters();
  ref.update([&](Parameters& p) { std::copy(src.begin(), src.end(), p.arena().begin()); });
}

template <class CpuModel, class RefModel>
void agree(const CpuModel& cpu, const RefModel& ref, Extents in, unsigned seed = 3) {
  CAPTURE(to_string(in));
  const Tensor x = random_input(in, seed);
  auto cc = cpu.make_context({in.n, in.h, in.w});
  auto rc = ref.make_context({in.n, in.h, in.w});
  const Tensor want = Tensor::copy_of(ref.forward(x, rc));
  const ConstTensorView got = cpu.forward(x, cc);
  REQUIRE(got.shape == want.shape());
  const double err = relative_error(got, want);
  MESSAGE("output error " << err);
  CHECK(err <= 1e-4);
  const Tensor want_f = Tensor::copy_of(ref.features(x, rc));
  const ConstTensorView got_f = cpu.features(x, cc);
  REQUIRE(got_f.shape == want_f.shape());
  CHECK(relative_error(got_f, want_f) <= 1e-4);
}

template <class Net>
void check_network(std::initializer_list<Extents> sizes, unsigned seed = 1) {
  Model<Net, backend::Cpu> cpu(Init::torchvision, seed);
  Model<Net, backend::Reference> ref(Init::torchvision, seed);
  same_parameters(cpu, ref, seed + 100);
  for (const Extents& e : sizes) agree(cpu, ref, e);
}

}  // namespace

TEST_CASE("cpu agrees with reference: ResNet-18") {
  check_network<ResNet18<Linear<512, 10>>>({{2, 3, 37, 45}, {2, 3, 64, 64}, {1, 3, 225, 199}});
}

TEST_CASE("cpu agrees with reference: ResNet-50") {
  check_network<ResNet50<Linear<2048, 10>>>({{2, 3, 37, 45}, {2, 3, 64, 64}});
}

TEST_CASE("cpu agrees with reference: ResNeXt-50 (grouped convolutions) and Wide ResNet-50") {
  check_network<ResNeXt50_32x4d<Linear<2048, 10>>>({{2, 3, 37, 45}});
  check_network<WideResNet50_2<Linear<2048, 10>>>({{1, 3, 33, 35}});
}

TEST_CASE("cpu agrees with reference: CIFAR ResNet-20 on one-channel 28x28") {
  check_network<ResNet20<Linear<64, 10>, Image<1, 28, 28>>>({{2, 1, 28, 28}});
  check_network<ResNet20A<Linear<64, 10>, Image<1, 28, 28>>>({{2, 1, 28, 28}});  // option A shortcuts
}

TEST_CASE("cpu agrees with reference: every head kind") {
  check_network<ResNet18<Sequential<Linear<512, 1>, Sigmoid>>>({{2, 3, 33, 35}});
  check_network<ResNet18<Sequential<Linear<512, 1000>, DropoutRatio<1, 2>, Softmax>>>({{2, 3, 33, 35}});
  {
    Model<ResNet18<Linear<512, dynamic>>, backend::Cpu> cpu(7, Init::torchvision, 5);
    Model<ResNet18<Linear<512, dynamic>>, backend::Reference> ref(7, Init::torchvision, 5);
    same_parameters(cpu, ref, 9);
    agree(cpu, ref, {3, 3, 32, 40});
  }
}

TEST_CASE("cpu results do not depend on the thread count") {
#if defined(_OPENMP)
  Model<ResNet18<Linear<512, 10>>, backend::Cpu> model(Init::torchvision, 2);
  model.update([](Parameters& p) { randomize_batch_norm(p, 4); });
  const Tensor x = random_input({2, 3, 45, 37}, 8);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  auto c1 = model.make_context({2, 45, 37});
  const Tensor one = Tensor::copy_of(model.forward(x, c1));
  omp_set_num_threads(2);
  auto c2 = model.make_context({2, 45, 37});
  const ConstTensorView two = model.forward(x, c2);
  omp_set_num_threads(saved);
  REQUIRE(one.shape() == two.shape);
  CHECK(std::memcmp(one.data(), two.data, one.size() * sizeof(float)) == 0);
#endif
}

TEST_CASE("cpu: two threads share one const model, each with its own context") {
  Model<ResNet18<Linear<512, 10>>, backend::Cpu> model(Init::torchvision, 3);
  model.update([](Parameters& p) { randomize_batch_norm(p, 6); });
  const auto& shared = model;
  const Tensor a = random_input({1, 3, 40, 48}, 1), b = random_input({2, 3, 33, 29}, 2);
  auto ca = shared.make_context({1, 40, 48});
  auto cb = shared.make_context({2, 33, 29});
  const Tensor want_a = Tensor::copy_of(shared.forward(a, ca)), want_b = Tensor::copy_of(shared.forward(b, cb));

  std::vector<Tensor> got_a, got_b;
  std::thread ta([&] {
    auto ctx = shared.make_context({1, 40, 48});
    for (int i = 0; i < 4; ++i) got_a.push_back(Tensor::copy_of(shared.forward(a, ctx)));
  });
  std::thread tb([&] {
    auto ctx = shared.make_context({2, 33, 29});
    for (int i = 0; i < 4; ++i) got_b.push_back(Tensor::copy_of(shared.forward(b, ctx)));
  });
  ta.join();
  tb.join();
  for (const Tensor& t : got_a) CHECK(std::memcmp(t.data(), want_a.data(), want_a.size() * sizeof(float)) == 0);
  for (const Tensor& t : got_b) CHECK(std::memcmp(t.data(), want_b.data(), want_b.size() * sizeof(float)) == 0);
}

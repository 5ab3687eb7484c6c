// The CUDA backend's run-time behaviour: the no-GPU error, CUDA graph
// capture and recapture, input paths (pageable, pinned, device), error
// messages, allocation-free forward passes, and concurrent contexts.
#include "helpers.cuh"

#include <atomic>
#include <cstring>
#include <thread>

using namespace ctnn;
using namespace ctnn::cuda_test;

namespace ctnn::cuda_test {  // alloc_count.cpp
void start_counting_allocations();
long stop_counting_allocations();
}  // namespace ctnn::cuda_test

namespace {

using Net = ResNet18<Linear<512, 10>>;

bool same_bits(ConstTensorView a, ConstTensorView b) {
  return a.shape == b.shape && std::memcmp(a.data, b.data, a.size() * sizeof(float)) == 0;
}

}  // namespace

// ---- runs everywhere ----------------------------------------------------------

TEST_CASE("cuda: without a GPU, making a CUDA model throws a clear CudaError (no crash)") {
  if (cuda::device_available()) {
    MESSAGE("a GPU is present: the no-GPU path is not observable here");
    return;
  }
  try {
    Model<Net, backend::Cuda> model;
    FAIL("a CUDA model was constructed without a GPU");
  } catch (const backend::CudaError& e) {
    const std::string what = e.what();
    MESSAGE("message: " << what);
    CHECK(what.find("no usable CUDA GPU") != std::string::npos);
    CHECK(what.find("cudaGetDeviceCount") != std::string::npos);
    CHECK(what.find("backend::Cpu") != std::string::npos);
  }
  backend::Cuda::Executor empty;
  Tensor x(1, 3, 32, 32);
  backend::Cuda::Executor::Context ctx;
  CHECK_THROWS_AS(empty.run(x, ctx, Stage::output), std::logic_error);
  CHECK(std::string(empty.describe()).find("not prepared") != std::string::npos);
}

TEST_CASE("cuda: a failed CUDA call without a GPU names the call, the CUDA error and the layer") {
  try {
    cuda::check(cudaErrorMemoryAllocation, "cudaMalloc(4096 bytes)", cuda::in_layer("layer3.1.conv2 + bn2"));
    FAIL("check() did not throw");
  } catch (const cuda::Error& e) {
    const std::string what = e.what();
    CHECK(what.find("cudaMalloc(4096 bytes)") != std::string::npos);
    CHECK(what.find("cudaErrorMemoryAllocation") != std::string::npos);
    CHECK(what.find("layer 'layer3.1.conv2 + bn2'") != std::string::npos);
    CHECK(e.code() == cudaErrorMemoryAllocation);
  }
}

// ---- needs a GPU ----------------------------------------------------------------

TEST_CASE("cuda: CUDA graphs replay repeated shapes bit-identically and recapture when the shape changes") {
  Model<Net, backend::Cuda> model;
  randomize_batchnorm(model, 3);
  const Tensor a = random_input({2, 3, 64, 64}, 1);
  const Tensor b = random_input({2, 3, 48, 64}, 2);
  auto ctx = model.make_context({2, 64, 64});
  auto plain = model.make_context({2, 64, 64});
  plain.use_graphs(false);

  const Tensor ya = Tensor::copy_of(model.forward(a, plain));
  const Tensor yb = Tensor::copy_of(model.forward(b, plain));
  const Tensor fa = Tensor::copy_of(model.features(a, plain));
  CHECK(plain.graph_captures() == 0);

  CHECK(same_bits(model.forward(a, ctx), ya));  // first run of the shape: direct launches
  CHECK(ctx.graph_captures() == 0);
  CHECK_FALSE(ctx.replaying_graph());
  CHECK(same_bits(model.forward(a, ctx), ya));  // second in a row: captured and replayed
  CHECK(ctx.graph_captures() == 1);
  CHECK(ctx.replaying_graph());
  CHECK(same_bits(model.forward(a, ctx), ya));  // replayed again
  CHECK(ctx.graph_captures() == 1);

  CHECK(same_bits(model.forward(b, ctx), yb));  // new shape: direct
  CHECK(same_bits(model.forward(b, ctx), yb));  // recaptured
  CHECK(ctx.graph_captures() == 2);
  CHECK(same_bits(model.features(a, ctx), fa));  // another stage is another key
  CHECK(same_bits(model.features(a, ctx), fa));
  CHECK(ctx.graph_captures() == 3);
  CHECK(same_bits(model.forward(a, ctx), ya));
}

TEST_CASE("cuda: a context and its graph survive new weights (Model::update) and follow them") {
  Model<Net, backend::Cuda> model;
  const Tensor x = random_input({1, 3, 40, 40}, 13);
  auto ctx = model.make_context({1, 40, 40});
  (void)model.forward(x, ctx);
  const Tensor before = Tensor::copy_of(model.forward(x, ctx));  // captured
  REQUIRE(ctx.graph_captures() == 1);
  model.update([](Parameters& p) { p.tensor("fc.bias")[3] += 1.0f; });
  const ConstTensorView after = model.forward(x, ctx);  // the old graph must not be replayed
  CHECK(after.data[3] == doctest::Approx(before.data()[3] + 1.0f).epsilon(1e-5));
  CHECK(after.data[2] == before.data()[2]);
}

TEST_CASE("cuda: pageable, pinned and device-resident inputs give identical results") {
  Model<Net, backend::CudaTF32> model;
  randomize_batchnorm(model, 4);
  const Extents e{3, 3, 57, 61};
  const Tensor x = random_input(e, 5);
  auto ctx = model.make_context({4, 64, 64});
  const Tensor want = Tensor::copy_of(model.forward(x, ctx));

  const TensorView pinned = ctx.input_buffer(e);
  std::memcpy(pinned.data, x.data(), x.size() * sizeof(float));
  CHECK(same_bits(model.forward(pinned, ctx), want));

  float* dev = nullptr;
  REQUIRE(cudaMalloc(&dev, x.size() * sizeof(float)) == cudaSuccess);
  REQUIRE(cudaMemcpy(dev, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
  CHECK(same_bits(model.forward(ConstTensorView{dev, e}, ctx), want));
  cudaFree(dev);

  // A large pageable input goes through the chunked, overlapped staging.
  const Extents big{4, 3, 224, 224};
  Model<ResNet18<Linear<512, 10>>, backend::CudaTF32> m2;
  copy_parameters(m2, model);
  auto c2 = m2.make_context({4, 224, 224});
  const Tensor xb = random_input(big, 6);
  const Tensor yb = Tensor::copy_of(m2.forward(xb, c2));
  const TensorView pb = c2.input_buffer(big);
  std::memcpy(pb.data, xb.data(), xb.size() * sizeof(float));
  CHECK(same_bits(m2.forward(pb, c2), yb));
}

TEST_CASE("cuda: forward passes within the capacity allocate nothing (graphs on and off)") {
  Model<Net, backend::Cuda> model;
  const Tensor x = random_input({2, 3, 40, 40}, 7);
  for (bool graphs : {true, false}) {
    auto ctx = model.make_context({2, 64, 64});
    ctx.use_graphs(graphs);
    for (int i = 0; i < 3; ++i) (void)model.forward(x, ctx);  // warm-up (and capture)
    start_counting_allocations();
    (void)model.forward(x, ctx);
    (void)model.features(x, ctx);  // another stage: a direct run, no new allocation either
    const long n = stop_counting_allocations();
    CHECK_MESSAGE(n == 0, "graphs " << graphs << ": " << n << " allocations");
  }
}

TEST_CASE("cuda: errors name what was expected and what was found") {
  Model<Net, backend::Cuda> model;
  auto ctx = model.make_context({2, 64, 64});
  SUBCASE("input beyond the context's capacity") {
    const Tensor x(3, 3, 32, 32);
    CHECK_THROWS_WITH_AS(model.forward(x, ctx), doctest::Contains("exceeds the context's capacity"),
                         std::invalid_argument);
  }
  SUBCASE("wrong channel count") {
    const Tensor x(1, 4, 32, 32);
    CHECK_THROWS_WITH_AS(model.forward(x, ctx), doctest::Contains("channels"), std::invalid_argument);
  }
  SUBCASE("input too small for the network") {
    // ResNets pad every window, so (like torchvision) they accept even 1x1
    // inputs; an unpadded 7x7 conv does not.
    Model<Network<Image<3, dynamic, dynamic>, Conv<3, 4, 7>, GlobalAvgPool, Linear<4, 2>>, backend::Cuda> unpadded;
    auto small_ctx = unpadded.make_context({1, 8, 8});
    const Tensor x(1, 3, 5, 5);
    CHECK_THROWS_WITH_AS(unpadded.forward(x, small_ctx), doctest::Contains("too small"), std::invalid_argument);
  }
  SUBCASE("context of another network") {
    Model<ResNet34<Linear<512, 10>>, backend::Cuda> other;
    auto foreign = other.make_context({2, 64, 64});
    const Tensor x(1, 3, 32, 32);
    CHECK_THROWS_AS(model.forward(x, foreign), std::logic_error);
  }
  SUBCASE("device memory exhausted: the CUDA call and the phase are named") {
    try {
      (void)model.make_context({200000, 224, 224});
      FAIL("a 200000-image context was allocated");
    } catch (const backend::CudaError& e) {
      const std::string what = e.what();
      MESSAGE("message: " << what);
      CHECK(what.find("cudaMalloc") != std::string::npos);
      CHECK(what.find("workspace") != std::string::npos);
    }
    // The failure is not sticky: the model still runs.
    const Tensor x = random_input({1, 3, 32, 32}, 8);
    CHECK(model.forward(x, ctx).shape == Extents{1, 10, 1, 1});
  }
}

TEST_CASE("cuda: per-layer synchronisation (debug mode) changes nothing but speed") {
  Model<Net, backend::Cuda> model;
  const Tensor x = random_input({2, 3, 45, 37}, 9);
  auto a = model.make_context({2, 45, 37});
  auto b = model.make_context({2, 45, 37});
  b.sync_each_layer(true);
  CHECK(same_bits(model.forward(x, a), Tensor::copy_of(model.forward(x, b))));
}

TEST_CASE("cuda: one model, two threads, one context each") {
  Model<Net, backend::CudaTF32> model;
  randomize_batchnorm(model, 10);
  const Tensor x1 = random_input({2, 3, 64, 48}, 11), x2 = random_input({1, 3, 48, 64}, 12);
  auto c = model.make_context({2, 64, 64});
  const Tensor y1 = Tensor::copy_of(model.forward(x1, c));
  const Tensor y2 = Tensor::copy_of(model.forward(x2, c));
  std::atomic<int> mismatches{0};
  auto worker = [&](const Tensor& x, const Tensor& y) {
    auto ctx = model.make_context({2, 64, 64});
    for (int i = 0; i < 6; ++i)
      if (!same_bits(model.forward(x, ctx), y)) ++mismatches;
  };
  std::thread t1(worker, std::cref(x1), std::cref(y1)), t2(worker, std::cref(x2), std::cref(y2));
  t1.join();
  t2.join();
  CHECK(mismatches.load() == 0);
}

TEST_CASE("cuda: describe() names the GPU and the precision") {
  Model<Net, backend::CudaTF32> model;
  const std::string d = model.backend_description();
  MESSAGE(d);
  CHECK(d.find("cuda-tf32") != std::string::npos);
  CHECK(d.find("TF32") != std::string::npos);
  CHECK(d.find("SMs") != std::string::npos);
  Model<Net, backend::CudaBF16> bf16;
  const std::string e = bf16.backend_description();
  MESSAGE(e);
  CHECK(e.find("cuda-bf16") != std::string::npos);
  CHECK(e.find("BF16 tensor cores") != std::string::npos);
}

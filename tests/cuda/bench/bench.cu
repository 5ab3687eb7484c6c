// ctnn-cuda-bench: whole-network latency of the CUDA backend, for
// scripts/gpu-check.sh. ResNet-18 and ResNet-50 (1000 classes, 224x224) at
// batch 1 and 64, FP32 and TF32, with the input resident on the device (what
// PyTorch's usual benchmark measures) and in pinned host memory (the
// host-to-host latency an application sees). Training: one whole-network
// SGD step (FP32) of ResNet-50 224x224 at batch 64 and of ResNet-20 on
// Fashion-MNIST-sized images at batch 128, input from host memory, the loss
// on the host. Reports, never asserts.
//
//   ctnn-cuda-bench [--csv FILE] [--quick]
//
// CSV columns: impl,model,batch,mode,input,median_ms,min_ms,images_per_s
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <ctnn/backend/cuda/cuda.cuh>
#include <ctnn/ctnn.hpp>

using namespace ctnn;

namespace {

struct Row {
  std::string model, mode, input;
  std::size_t batch = 0;
  double median_ms = 0, min_ms = 0;
};

template <class M>
Row time_model(M& model, const char* model_name, const char* mode, std::size_t batch, bool device_input,
               bool graphs, int iters) {
  const Extents e{batch, 3, 224, 224};
  auto ctx = model.make_context({batch, 224, 224});
  ctx.use_graphs(graphs);
  const TensorView host = ctx.input_buffer(e);
  for (std::size_t i = 0; i < host.size(); ++i) host.data[i] = static_cast<float>((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  float* dev = nullptr;
  if (device_input) {
    if (cudaMalloc(&dev, host.size() * sizeof(float)) != cudaSuccess) throw std::runtime_error("cudaMalloc failed");
    cudaMemcpy(dev, host.data, host.size() * sizeof(float), cudaMemcpyHostToDevice);
  }
  const ConstTensorView in{device_input ? dev : host.data, e};
  for (int i = 0; i < 5; ++i) (void)model.forward(in, ctx);  // warm-up, graph capture
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)model.forward(in, ctx);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  if (dev) cudaFree(dev);
  std::sort(ms.begin(), ms.end());
  Row r;
  r.model = model_name;
  r.mode = std::string(mode) + (graphs ? "" : " (no graph)");
  r.input = device_input ? "device" : "pinned host";
  r.batch = batch;
  r.median_ms = ms[ms.size() / 2];
  r.min_ms = ms.front();
  return r;
}

template <class Net>
void bench_net(const char* name, bool quick, std::vector<Row>& rows) {
  auto run = [&](auto& model, const char* mode) {
    for (std::size_t batch : {std::size_t{1}, std::size_t{64}}) {
      const int iters = batch == 1 ? (quick ? 30 : 200) : (quick ? 5 : 20);
      for (bool device : {true, false}) {
        rows.push_back(time_model(model, name, mode, batch, device, true, iters));
        const Row& r = rows.back();
        std::printf("ctnn  %-9s batch %-3zu %-10s %-12s median %8.3f ms  min %8.3f ms  %9.1f img/s\n", r.model.c_str(),
                    r.batch, r.mode.c_str(), r.input.c_str(), r.median_ms, r.min_ms,
                    1000.0 * static_cast<double>(r.batch) / r.median_ms);
        std::fflush(stdout);
      }
    }
    if (!quick) {  // what the graphs buy at batch 1
      rows.push_back(time_model(model, name, mode, 1, true, false, 100));
      const Row& r = rows.back();
      std::printf("ctnn  %-9s batch %-3zu %-10s %-12s median %8.3f ms  min %8.3f ms\n", r.model.c_str(), r.batch,
                  r.mode.c_str(), r.input.c_str(), r.median_ms, r.min_ms);
    }
  };
  {
    Model<Net, backend::Cuda> model;
    run(model, "fp32");
  }
  {
    Model<Net, backend::CudaTF32> model;
    if (std::string(name) == "resnet18") std::printf("%s\n", model.backend_description().c_str());
    run(model, "tf32");
  }
  {
    Model<Net, backend::CudaBF16> model;
    run(model, "bf16");
  }
}

// Whole-network training steps: the step's wall time, the host-side loss included.
template <class Net, class Backend = backend::Cuda>
void bench_training(const char* name, Extents e, int iters, std::vector<Row>& rows) {
  Model<Net, Backend> model(Init::torchvision, 1);
  auto trainer = train::make_trainer<train::CrossEntropy>(model, train::SGD{.lr = 0.01, .momentum = 0.9});
  Tensor x(e);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  std::vector<int> labels(e.n);
  for (std::size_t i = 0; i < e.n; ++i) labels[i] = static_cast<int>(i % 10);
  for (int i = 0; i < 3; ++i) trainer.step(x, {.classes = labels});  // buffers sized, kernels loaded
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    trainer.step(x, {.classes = labels});
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  Row r;
  r.model = name;
  r.mode = Backend::training_precision == cuda::Precision::bf16 ? "train bf16" : "train fp32";
  r.input = "host";
  r.batch = e.n;
  r.median_ms = ms[ms.size() / 2];
  r.min_ms = ms.front();
  rows.push_back(r);
  std::printf("ctnn  %-9s batch %-3zu %-10s %-12s median %8.3f ms  min %8.3f ms  %9.1f img/s\n", r.model.c_str(),
              r.batch, r.mode.c_str(), r.input.c_str(), r.median_ms, r.min_ms,
              1000.0 * static_cast<double>(r.batch) / r.median_ms);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string csv;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--csv") && i + 1 < argc)
      csv = argv[++i];
    else if (!std::strcmp(argv[i], "--quick"))
      quick = true;
    else {
      std::fprintf(stderr, "usage: %s [--csv FILE] [--quick]\n", argv[0]);
      return 2;
    }
  }
  try {
    std::vector<Row> rows;
    bench_net<ResNet18<>>("resnet18", quick, rows);
    bench_net<ResNet50<>>("resnet50", quick, rows);
    bench_training<ResNet50<>>("resnet50", {64, 3, 224, 224}, quick ? 3 : 10, rows);
    bench_training<ResNet50<>, backend::CudaBF16>("resnet50", {64, 3, 224, 224}, quick ? 3 : 10, rows);
    bench_training<ResNet20<Linear<64, 10>, Image<1, 28, 28>>>("resnet20", {128, 1, 28, 28}, quick ? 5 : 30, rows);
    bench_training<ResNet20<Linear<64, 10>, Image<1, 28, 28>>, backend::CudaBF16>("resnet20", {128, 1, 28, 28},
                                                                                quick ? 5 : 30, rows);
    if (!csv.empty()) {
      FILE* f = std::fopen(csv.c_str(), "w");
      if (!f) {
        std::fprintf(stderr, "cannot write %s\n", csv.c_str());
        return 1;
      }
      std::fprintf(f, "impl,model,batch,mode,input,median_ms,min_ms,images_per_s\n");
      for (const Row& r : rows)
        std::fprintf(f, "ctnn,%s,%zu,%s,%s,%.4f,%.4f,%.1f\n", r.model.c_str(), r.batch, r.mode.c_str(), r.input.c_str(),
                     r.median_ms, r.min_ms, 1000.0 * static_cast<double>(r.batch) / r.median_ms);
      std::fclose(f);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ctnn-cuda-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

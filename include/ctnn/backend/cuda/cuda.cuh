// The CUDA backend: Model<Net, backend::Cuda> (FP32),
// Model<Net, backend::CudaTF32> (TF32 tensor cores) and
// Model<Net, backend::CudaBF16> (BF16 tensor cores) run every inference layer
// of the ResNet family and the article's heads on an NVIDIA GPU. The tensor-
// core precisions round the conv/linear GEMM operands and accumulate in FP32;
// activations between layers, BatchNorm (folded), bias, residual and the
// heads stay FP32 (docs/cuda-backend.md states the error of each).
//
// Training: Trainer<…, Model<Net, backend::Cuda>> trains on the GPU through
// TrainingExecutor (training.cuh); its buffers stay in device memory. With
// backend::CudaBF16 it trains in BF16 mixed precision (BF16 GEMM operands on
// the tensor cores; weights, optimiser state and BatchNorm in FP32).
//
// Include this header only from translation units that nvcc compiles (.cu);
// the rest of the library never needs nvcc. It pulls in core headers only (no
// Eigen, xsimd or OpenMP).
//
//   Executor(program, params)  folds BatchNorm in double, fuses epilogues,
//                              repacks weights and uploads them once.
//   make_context(capacity)     device workspace sized for the capacity, pinned
//                              host staging, and the context's own stream.
//   run(input, ctx, stage)     copies the input in (overlapping the host-side
//                              staging with the DMA), runs, copies the result
//                              into pinned memory owned by ctx, synchronises.
//                              From the second consecutive run with the same
//                              input extents and stage it replays a CUDA graph
//                              of the whole forward pass (recaptured when the
//                              shape changes).
//
// Errors: every CUDA call is checked and throws ctnn::cuda::Error (alias
// backend::CudaError) naming the call and the layer. Constructing an
// executor on a machine without a usable GPU throws the same type with a
// clear message. docs/cuda-backend.md has the design and measured numbers.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctnn/backend/cuda/error.cuh"
#include "ctnn/backend/cuda/kernels.cuh"
#include "ctnn/backend/cuda/plan.hpp"
#include "ctnn/backend/cuda/resources.cuh"
#include "ctnn/backend/cuda/schedule.cuh"
#include "ctnn/ir/program.hpp"
#include "ctnn/core/tensor.hpp"

namespace ctnn::cuda {

// True when a CUDA GPU with a working driver is present. Never throws.
inline bool device_available() noexcept {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) (void)cudaGetLastError();
  return e == cudaSuccess && n > 0;
}

// The current device, or an Error that says plainly why there is none.
inline int require_device() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    (void)cudaGetLastError();
    throw Error(std::string("ctnn cuda: no usable CUDA GPU: ") +
                    (e != cudaSuccess ? "cudaGetDeviceCount failed (" + describe_error(e) + ")"
                                      : std::string("cudaGetDeviceCount found no devices")) +
                    ". The CUDA backend needs an NVIDIA GPU and its driver; use backend::Cpu or "
                    "backend::Reference on this machine.",
                e != cudaSuccess ? e : cudaErrorNoDevice);
  }
  int dev = 0;
  CTNN_CUDA_CHECK(cudaGetDevice(&dev), "while selecting the GPU");
  return dev;
}

}  // namespace ctnn::cuda

#include "ctnn/backend/cuda/training.cuh"

namespace ctnn::backend {

using CudaError = cuda::Error;

using cuda::Precision;  // fp32, tf32, bf16 (plan.hpp)

template <Precision P>
struct CudaT {
  static constexpr Precision precision = P;
  static constexpr const char* name = P == Precision::fp32   ? "cuda"
                                      : P == Precision::tf32 ? "cuda-tf32"
                                                             : "cuda-bf16";
  // The op kinds this backend runs (Model refuses others: CTNN_BACKEND_CANNOT_RUN).
  // Grouped convolution and option-A shortcuts have no CUDA inference kernel yet: networks with them are refused.
  static constexpr std::uint32_t inference_ops =
      all_ops & ~op_bit(OpKind::grouped_conv) & ~op_bit(OpKind::pad_shortcut);
  // Training (training.cuh): FP32 for Cuda and CudaTF32; for CudaBF16 BF16
  // mixed precision (BF16 GEMM operands on the tensor cores, FP32 accumulation,
  // FP32 master weights, optimiser state, activations and BatchNorm).
  static constexpr std::uint32_t training_ops = inference_ops & cuda::trainable_ops;
  static constexpr Precision training_precision = P == Precision::bf16 ? Precision::bf16 : Precision::fp32;

  class TrainingExecutor : public train::TapeExecutor<cuda::DeviceTrainingKernels<training_precision>> {
   public:
    TrainingExecutor(const Program& program, std::span<const float> params, std::size_t begin = 0)
        : TrainingExecutor::TapeExecutor(program, params, begin, "ctnn cuda backend") {}
  };

  class Executor {
    struct Shared {
      std::uint64_t id = 0;  // distinguishes executors even when one reuses another's address
      Program program;
      cuda::Plan plan;  // its arena is released once uploaded
      cuda::DeviceMemory arena;
      int device = 0;
      int sm_count = 1;
      std::string device_name;
      int cc_major = 0, cc_minor = 0;
      std::size_t global_mem = 0;
      bool legacy_tiles = false;  // CTNN_CUDA_LEGACY_TILES
    };

   public:
    struct GraphKey {
      Extents input{};
      Stage stage = Stage::output;
      friend bool operator==(const GraphKey&, const GraphKey&) = default;
    };

    class Context {
     public:
      Context() = default;
      Context(Context&&) noexcept = default;
      Context& operator=(Context&&) noexcept = default;

      // CUDA graph replay of repeated same-shape batches (on by default).
      void use_graphs(bool on) {
        graphs_ = on;
        if (!on) graph_.reset();
      }
      // Synchronise after every layer, so that an asynchronous fault is
      // reported with its layer's name. Slow; for debugging. Disables graphs.
      void sync_each_layer(bool on) { sync_each_ = on; }

      // A pinned host buffer for the input: fill it and pass it to run() to
      // skip the staging copy. Valid until the context is destroyed.
      TensorView input_buffer(Extents e) {
        if (!host_in_ || e.count() > host_in_floats_)
          throw std::invalid_argument("ctnn cuda: input_buffer " + to_string(e) + " exceeds the context's capacity");
        return {static_cast<float*>(host_in_.get()), e};
      }

      Capacity capacity() const { return cap_; }
      cudaStream_t stream() const { return stream_.get(); }
      std::size_t graph_captures() const { return captures_; }
      bool replaying_graph() const { return replayed_; }

     private:
      friend class Executor;
      // What the context's buffers were laid out for. A context stays valid
      // across Model::update/load (same program, new weights) but not for
      // another network or device.
      std::vector<int> slot_map_, channels_;
      int device_ = -1;
      std::uint64_t graph_owner_ = 0;  // executor id the captured graph belongs to
      Capacity cap_{0, 0, 0};
      cuda::Stream stream_;
      cuda::DeviceMemory workspace_;
      std::vector<float*> slots_;
      float* raw_in_ = nullptr;
      float* out_dev_ = nullptr;
      float* partial_ = nullptr;
      std::size_t partial_floats_ = 0;
      cuda::PinnedMemory host_in_, host_out_;
      std::size_t host_in_floats_ = 0, host_out_floats_ = 0;
      std::vector<Extents> extents_;
      bool graphs_ = true, sync_each_ = false, replayed_ = false;
      cuda::GraphExec graph_;
      GraphKey graph_key_{}, last_key_{};
      bool have_last_ = false;
      std::size_t captures_ = 0;
    };

    // An empty executor (Model assigns a prepared one); it cannot run.
    Executor() = default;

    Executor(const Program& program, std::span<const float> params) : shared_(std::make_shared<Shared>()) {
      Shared& s = *shared_;
      static std::atomic<std::uint64_t> next_id{1};
      s.id = next_id.fetch_add(1);
      s.device = cuda::require_device();
      cudaDeviceProp prop{};
      CTNN_CUDA_CHECK(cudaGetDeviceProperties(&prop, s.device), "while reading the GPU's properties");
      s.sm_count = prop.multiProcessorCount;
      s.device_name = prop.name;
      s.cc_major = prop.major;
      s.cc_minor = prop.minor;
      s.global_mem = prop.totalGlobalMem;
      if (prop.major < 8)
        throw CudaError("ctnn cuda: the GPU '" + s.device_name + "' has compute capability " +
                            std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                            "; the kernels need 8.0 or newer (cp.async, TF32 and BF16 tensor cores)",
                        cudaErrorInvalidDevice);
      s.legacy_tiles = cuda::legacy_tiles_requested();
      cuda::prepare_conv_kernels<P>(prop, s.legacy_tiles);

      s.program = program;
      s.plan = cuda::build_plan(program, params);
      cuda::round_weights(s.plan, P);  // what every tensor-core kernel would do to them anyway
      const std::size_t bytes = s.plan.arena.size() * sizeof(float);
      s.arena = cuda::device_alloc(bytes, "while uploading the weights");
      CTNN_CUDA_CHECK(cudaMemcpy(s.arena.get(), s.plan.arena.data(), bytes, cudaMemcpyHostToDevice),
                      "while uploading the weights");
      std::vector<float>().swap(s.plan.arena);  // the device holds them now
    }

    Context make_context(Capacity cap) const {
      const Shared& s = shared();
      CTNN_CUDA_CHECK(cudaSetDevice(s.device), "while making a context");
      Context ctx;
      ctx.slot_map_ = s.plan.slot;
      ctx.channels_ = s.plan.channels;
      ctx.device_ = s.device;
      ctx.cap_ = cap;
      const Extents in{cap.batch, static_cast<std::size_t>(s.program.input_channels), cap.height, cap.width};
      ctx.extents_.resize(static_cast<std::size_t>(s.program.values));
      infer_extents(s.program, in, ctx.extents_);  // throws if the capacity is too small for the network
      const std::vector<std::size_t> slot_floats = cuda::slot_sizes(s.plan, ctx.extents_);

      const std::size_t out_floats =
          std::max(ctx.extents_[static_cast<std::size_t>(s.plan.features)].count(),
                   ctx.extents_[static_cast<std::size_t>(s.plan.output)].count());
      ctx.partial_floats_ = cuda::split_workspace_floats(s.sm_count);
      std::size_t total = 0;
      auto take = [&](std::size_t floats) {
        const std::size_t at = total;
        total += cuda::round_up(floats, cuda::arena_align);
        return at;
      };
      std::vector<std::size_t> slot_at;
      for (std::size_t f : slot_floats) slot_at.push_back(take(f));
      const std::size_t raw_at = take(in.count());
      const std::size_t out_at = take(out_floats);
      const std::size_t partial_at = take(ctx.partial_floats_);
      ctx.workspace_ = cuda::device_alloc(total * sizeof(float), "while allocating a context's device workspace");
      auto* base = static_cast<float*>(ctx.workspace_.get());
      for (std::size_t at : slot_at) ctx.slots_.push_back(base + at);
      ctx.raw_in_ = base + raw_at;
      ctx.out_dev_ = base + out_at;
      ctx.partial_ = base + partial_at;
      ctx.host_in_floats_ = in.count();
      ctx.host_out_floats_ = out_floats;
      ctx.host_in_ = cuda::pinned_alloc(in.count() * sizeof(float), "while allocating a context's pinned input");
      ctx.host_out_ = cuda::pinned_alloc(out_floats * sizeof(float), "while allocating a context's pinned output");
      ctx.stream_ = cuda::make_stream("while making a context's stream");
      return ctx;
    }

    ConstTensorView run(ConstTensorView input, Context& ctx, Stage stage) const {
      const Shared& s = shared();
      if (ctx.device_ != s.device || ctx.slot_map_ != s.plan.slot || ctx.channels_ != s.plan.channels ||
          ctx.extents_.size() != static_cast<std::size_t>(s.program.values))
        throw std::logic_error("ctnn cuda: this context was made for another network or GPU (use make_context)");
      if (ctx.graph_ && ctx.graph_owner_ != s.id) ctx.graph_.reset();  // it points at another executor's weights
      if (!input.data) throw std::invalid_argument("ctnn cuda: input has no data");
      if (input.shape.n > ctx.cap_.batch || input.shape.h > ctx.cap_.height || input.shape.w > ctx.cap_.width)
        throw std::invalid_argument("ctnn cuda: input " + to_string(input.shape) +
                                    " exceeds the context's capacity (batch " + std::to_string(ctx.cap_.batch) +
                                    ", " + std::to_string(ctx.cap_.height) + "x" + std::to_string(ctx.cap_.width) +
                                    "); make a context with a larger Capacity");
      infer_extents(s.program, input.shape, ctx.extents_);
      CTNN_CUDA_CHECK(cudaSetDevice(s.device), "before a forward pass");

      const int result = stage == Stage::features ? s.plan.features : s.plan.output;
      const Extents out = ctx.extents_[static_cast<std::size_t>(result)];
      const GraphKey key{input.shape, stage};
      bool use_graph = ctx.graphs_ && !ctx.sync_each_;
      if (use_graph && !(ctx.graph_ && ctx.graph_key_ == key)) {
        if (ctx.have_last_ && ctx.last_key_ == key)
          capture(ctx, key);  // the second run of this shape in a row: worth a graph
        else
          use_graph = false;
      }
      ctx.last_key_ = key;
      ctx.have_last_ = true;
      ctx.replayed_ = use_graph;

      upload(input, ctx);
      if (use_graph)
        CTNN_CUDA_CHECK(cudaGraphLaunch(ctx.graph_.get(), ctx.stream_.get()),
                        "while replaying the CUDA graph for input " + to_string(input.shape));
      else
        enqueue(ctx, stage, ctx.sync_each_);
      CTNN_CUDA_CHECK(cudaMemcpyAsync(ctx.host_out_.get(), result_ptr(ctx, result), out.count() * sizeof(float),
                                      cudaMemcpyDeviceToHost, ctx.stream_.get()),
                      "while copying the result to the host");
      const cudaError_t e = cudaStreamSynchronize(ctx.stream_.get());
      if (e != cudaSuccess)
        throw CudaError("ctnn cuda: cudaStreamSynchronize failed (" + cuda::describe_error(e) +
                            ") at the end of a forward pass on input " + to_string(input.shape) +
                            ": a kernel failed asynchronously; call ctx.sync_each_layer(true) to name the layer",
                        e);
      return {static_cast<const float*>(ctx.host_out_.get()), out};
    }

    std::string describe() const {
      if (!shared_) return std::string(name) + ": not prepared";
      const Shared& s = *shared_;
      std::size_t convs = 0;
      for (const auto& st : s.plan.steps) convs += st.kind == cuda::StepKind::conv;
      return std::string(name) + ": " + s.device_name + " (sm_" + std::to_string(s.cc_major) +
             std::to_string(s.cc_minor) + ", " + std::to_string(s.sm_count) + " SMs, " +
             std::to_string(s.global_mem >> 20) + " MiB), " +
             (P == Precision::tf32   ? "TF32 tensor cores (WMMA), FP32 accumulation"
              : P == Precision::bf16 ? "BF16 tensor cores (WMMA), FP32 accumulation and activations"
                                     : "FP32 FMA") +
             ", implicit-GEMM convs, " +
             std::to_string(s.plan.steps.size()) + " kernels per pass (" + std::to_string(convs) +
             " fused conv/linear), CUDA graphs for repeated shapes" +
             (s.legacy_tiles ? ", legacy conv kernels (CTNN_CUDA_LEGACY_TILES)" : "");
    }

    const cuda::Plan& plan() const { return shared_->plan; }

   private:
    const Shared& shared() const {
      if (!shared_) throw std::logic_error("ctnn cuda: this executor was never prepared with a program");
      return *shared_;
    }
    float* result_ptr(const Context& ctx, int v) const {
      const Extents& e = ctx.extents_[static_cast<std::size_t>(v)];
      if (needs_nchw(v, e)) return ctx.out_dev_;
      return ctx.slots_[static_cast<std::size_t>(shared_->plan.slot[static_cast<std::size_t>(v)])];
    }
    bool needs_nchw(int v, const Extents& e) const {
      return e.h * e.w != 1 ||
             cuda::stored_channels(shared_->plan.channels[static_cast<std::size_t>(v)]) !=
                 shared_->plan.channels[static_cast<std::size_t>(v)];
    }

    // Host -> device. A pinned or device-resident input is copied directly;
    // pageable memory goes through the pinned staging buffer in chunks, so
    // that copying chunk i+1 on the CPU overlaps the DMA of chunk i.
    void upload(ConstTensorView input, Context& ctx) const {
      const std::size_t bytes = input.size() * sizeof(float);
      cudaStream_t st = ctx.stream_.get();
      bool direct = input.data == ctx.host_in_.get();
      if (!direct) {
        cudaPointerAttributes attr{};
        if (cudaPointerGetAttributes(&attr, input.data) == cudaSuccess)
          direct = attr.type == cudaMemoryTypeHost || attr.type == cudaMemoryTypeDevice ||
                   attr.type == cudaMemoryTypeManaged;
        else
          (void)cudaGetLastError();
      }
      if (direct) {
        CTNN_CUDA_CHECK(cudaMemcpyAsync(ctx.raw_in_, input.data, bytes, cudaMemcpyDefault, st),
                        "while copying the input to the GPU");
        return;
      }
      const std::size_t chunk = std::max<std::size_t>(std::size_t{1} << 20, cuda::round_up(bytes / 8, std::size_t{256}));
      auto* staging = static_cast<char*>(ctx.host_in_.get());
      const auto* src = reinterpret_cast<const char*>(input.data);
      auto* dst = reinterpret_cast<char*>(ctx.raw_in_);
      for (std::size_t at = 0; at < bytes; at += chunk) {
        const std::size_t n = std::min(chunk, bytes - at);
        std::memcpy(staging + at, src + at, n);
        CTNN_CUDA_CHECK(cudaMemcpyAsync(dst + at, staging + at, n, cudaMemcpyHostToDevice, st),
                        "while copying the input to the GPU");
      }
    }

    void enqueue(Context& ctx, Stage stage, bool sync_each) const {
      const Shared& s = *shared_;
      cuda::DeviceState d;
      d.arena = static_cast<const float*>(s.arena.get());
      d.slots = ctx.slots_.data();
      d.partial = ctx.partial_;
      d.partial_floats = ctx.partial_floats_;
      d.raw_input = ctx.raw_in_;
      d.sm_count = s.sm_count;
      d.legacy_tiles = s.legacy_tiles;
      cuda::CudaLauncher<P> launch{ctx.stream_.get(), s.sm_count, sync_each};
      const std::size_t end = stage == Stage::features ? s.plan.features_steps : s.plan.steps.size();
      cuda::enqueue_steps(s.plan, ctx.extents_, d, end, launch);
      const int v = stage == Stage::features ? s.plan.features : s.plan.output;
      const Extents& e = ctx.extents_[static_cast<std::size_t>(v)];
      if (needs_nchw(v, e)) {
        cuda::LayoutArgs a{cuda::value_ptr(s.plan, d, v), ctx.out_dev_, static_cast<int>(e.n), static_cast<int>(e.c),
                           static_cast<int>(e.h), static_cast<int>(e.w),
                           cuda::stored_channels(static_cast<int>(e.c))};
        launch.to_nchw(a, static_cast<long>(e.count()), s.plan.steps[end - 1]);
      }
    }

    void capture(Context& ctx, const GraphKey& key) const {
      ctx.graph_.reset();
      cudaStream_t st = ctx.stream_.get();
      CTNN_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal), "while capturing a CUDA graph");
      cudaGraph_t raw = nullptr;
      try {
        enqueue(ctx, key.stage, false);
      } catch (...) {
        (void)cudaStreamEndCapture(st, &raw);  // leave the stream usable
        if (raw) (void)cudaGraphDestroy(raw);
        (void)cudaGetLastError();
        throw;
      }
      CTNN_CUDA_CHECK(cudaStreamEndCapture(st, &raw), "while capturing a CUDA graph");
      cuda::Graph graph(raw);
      cudaGraphExec_t exec = nullptr;
      CTNN_CUDA_CHECK(cudaGraphInstantiate(&exec, raw, 0), "while instantiating a CUDA graph");
      ctx.graph_ = cuda::GraphExec(exec);
      ctx.graph_key_ = key;
      ctx.graph_owner_ = shared_->id;
      ++ctx.captures_;
    }

    std::shared_ptr<Shared> shared_;
  };
};

using Cuda = CudaT<Precision::fp32>;
using CudaTF32 = CudaT<Precision::tf32>;
using CudaBF16 = CudaT<Precision::bf16>;

}  // namespace ctnn::backend

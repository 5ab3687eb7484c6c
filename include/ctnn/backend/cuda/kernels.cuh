// The __global__ entry points around the portable bodies, and the launcher
// policy schedule.cuh drives on a CUDA stream. Every launch is checked
// (cudaGetLastError) and a failure names the kernel and the layer.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "ctnn/backend/cuda/conv_kernel.cuh"
#include "ctnn/backend/cuda/error.cuh"
#include "ctnn/backend/cuda/schedule.cuh"
#include "ctnn/backend/cuda/simple_kernels.cuh"

namespace ctnn::cuda {

// Dynamic shared memory starts at the block's shared window (these kernels
// declare no static shared memory), which keeps WMMA tile pointers 32-byte
// aligned.
template <class Cfg, Precision P>
__global__ void __launch_bounds__(Cfg::NT, Cfg::MIN_BLOCKS) conv_kernel_resident(ConvArgs a) {
  extern __shared__ __align__(128) float conv_smem[];
  conv_block<Cfg, P>(a, conv_smem, static_cast<int>(threadIdx.x), static_cast<int>(blockIdx.x),
                        static_cast<int>(blockIdx.y), static_cast<int>(blockIdx.z));
}
// MIN_BLOCKS == 0: no residency request, exactly the legacy kernels' bounds
// (ptxas allocates differently even for an explicit 1).
template <class Cfg, Precision P>
__global__ void __launch_bounds__(Cfg::NT) conv_kernel_free(ConvArgs a) {
  extern __shared__ __align__(128) float conv_smem[];
  conv_block<Cfg, P>(a, conv_smem, static_cast<int>(threadIdx.x), static_cast<int>(blockIdx.x),
                        static_cast<int>(blockIdx.y), static_cast<int>(blockIdx.z));
}
// The FP32 kernels keep the legacy bounds: capped at 128 registers their
// 8x8 register tiles spill. So do BF16's: with its staging a 128x128 block
// needs 145 KB of shared memory, one block per multiprocessor whatever the
// registers, and capped at 128 registers it spilled (ptxas, sm_90), so only
// TF32 asks for residency.
template <class Cfg, Precision P>
constexpr auto conv_kernel() {
  if constexpr (P == Precision::tf32 && Cfg::MIN_BLOCKS > 0)
    return &conv_kernel_resident<Cfg, P>;
  else
    return &conv_kernel_free<Cfg, P>;
}

// Grid-stride loops over per-item bodies.
struct ToNhwc {
  CTNN_DEVICE void operator()(const LayoutArgs& a, long i) const { to_nhwc_item(a, i); }
};
struct ToNchw {
  CTNN_DEVICE void operator()(const LayoutArgs& a, long i) const { to_nchw_item(a, i); }
};
struct MaxPool {
  CTNN_DEVICE void operator()(const PoolArgs& a, long i) const { max_pool_item(a, i); }
};
struct AvgPool {
  CTNN_DEVICE void operator()(const PoolArgs& a, long i) const { avg_pool_item(a, i); }
};
struct Eltwise {
  CTNN_DEVICE void operator()(const EltwiseArgs& a, long i) const { eltwise_item(a, i); }
};

template <class F, class Args>
__global__ void items_kernel(Args a, long count) {
  const long stride = static_cast<long>(gridDim.x) * blockDim.x;
  for (long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) F{}(a, i);
}

// (Templates so that the header can be included by several translation units.)
template <class = void>
__global__ void splitk_kernel(ConvArgs a, int splits, long count) {
  const long stride = static_cast<long>(gridDim.x) * blockDim.x;
  for (long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    splitk_finish_item(a, splits, i);
}

template <class = void>
__global__ void softmax_kernel(SoftmaxArgs a) {
  __shared__ float red[softmax_threads];
  softmax_block(a, red, static_cast<int>(threadIdx.x), static_cast<int>(blockIdx.x));
}

inline constexpr int item_threads = 256;

// Raises the dynamic shared-memory limit of the conv kernels of one
// precision (they need more than the default 48 KB) and checks that this
// binary holds code for the device.
template <Precision P>
const char* conv_kernel_name(TileConfig c, bool legacy) {
  static const char* const names[2][3][3] = {
      {{"conv 128x128 fp32", "conv 128x64 fp32", "conv 64x64 fp32"},
       {"conv 128x128 tf32", "conv 128x64 tf32", "conv 64x64 tf32"},
       {"conv 128x128 bf16", "conv 128x64 bf16", "conv 64x64 bf16"}},
      {{"conv 128x128 fp32 (legacy)", "conv 128x64 fp32 (legacy)", "conv 64x64 fp32 (legacy)"},
       {"conv 128x128 tf32 (legacy)", "conv 128x64 tf32 (legacy)", "conv 64x64 tf32 (legacy)"},
       {"conv 128x128 bf16 (legacy)", "conv 128x64 bf16 (legacy)", "conv 64x64 bf16 (legacy)"}}};
  return names[legacy ? 1 : 0][static_cast<int>(P)][static_cast<int>(c)];
}

template <Precision P>
void prepare_conv_kernels(const cudaDeviceProp& prop, bool legacy) {
  auto one = [&](auto kernel, std::size_t bytes, const char* what) {
    cudaFuncAttributes attr{};
    const cudaError_t e = cudaFuncGetAttributes(&attr, kernel);
    if (e == cudaErrorInvalidDeviceFunction || e == cudaErrorNoKernelImageForDevice)
      throw Error("ctnn cuda: this program holds no kernel code for the GPU '" + std::string(prop.name) +
                      "' (compute capability " + std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                      "); rebuild with CMAKE_CUDA_ARCHITECTURES including " + std::to_string(prop.major) +
                      std::to_string(prop.minor) + " (" + describe_error(e) + ")",
                  e);
    check(e, std::string("cudaFuncGetAttributes(") + what + ")", "while preparing the kernels");
    if (bytes > prop.sharedMemPerBlockOptin)
      throw Error("ctnn cuda: kernel " + std::string(what) + " needs " + std::to_string(bytes) +
                      " bytes of shared memory per block, the GPU '" + prop.name + "' allows " +
                      std::to_string(prop.sharedMemPerBlockOptin),
                  cudaErrorInvalidValue);
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
          std::string("cudaFuncSetAttribute(") + what + ", MaxDynamicSharedMemorySize)", "while preparing the kernels");
  };
  if (legacy) {
    one(conv_kernel<LegacyConv128x128, P>(), conv_smem_bytes<LegacyConv128x128, P>, conv_kernel_name<P>(TileConfig::t128x128, true));
    one(conv_kernel<LegacyConv128x64, P>(), conv_smem_bytes<LegacyConv128x64, P>, conv_kernel_name<P>(TileConfig::t128x64, true));
    one(conv_kernel<LegacyConv64x64, P>(), conv_smem_bytes<LegacyConv64x64, P>, conv_kernel_name<P>(TileConfig::t64x64, true));
  } else {
    one(conv_kernel<Conv128x128, P>(), conv_smem_bytes<Conv128x128, P>, conv_kernel_name<P>(TileConfig::t128x128, false));
    one(conv_kernel<Conv128x64, P>(), conv_smem_bytes<Conv128x64, P>, conv_kernel_name<P>(TileConfig::t128x64, false));
    one(conv_kernel<Conv64x64, P>(), conv_smem_bytes<Conv64x64, P>, conv_kernel_name<P>(TileConfig::t64x64, false));
  }
}

template <Precision P>
struct CudaLauncher {
  cudaStream_t stream = nullptr;
  int sm_count = 1;
  bool sync_each_layer = false;  // debugging aid: attributes asynchronous faults to a layer

  unsigned blocks_for(long items) const {
    const long want = (items + item_threads - 1) / item_threads;
    return static_cast<unsigned>(std::max(1L, std::min(want, static_cast<long>(sm_count) * 16)));
  }
  void after(const char* kernel, const Step& s) const {
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess)
      check(e, std::string("launch of kernel '") + kernel + "'", in_layer(s.name));
    if (sync_each_layer)
      if (const cudaError_t e = cudaStreamSynchronize(stream); e != cudaSuccess)
        check(e, std::string("cudaStreamSynchronize after kernel '") + kernel + "'", in_layer(s.name));
  }
  template <class F, class Args>
  void items(const Args& a, long count, const char* kernel, const Step& s) const {
    if (count <= 0) return;
    items_kernel<F, Args><<<blocks_for(count), item_threads, 0, stream>>>(a, count);
    after(kernel, s);
  }
  void to_nhwc(const LayoutArgs& a, long n, const Step& s) const { items<ToNhwc>(a, n, "to_nhwc", s); }
  void to_nchw(const LayoutArgs& a, long n, const Step& s) const { items<ToNchw>(a, n, "to_nchw", s); }
  void max_pool(const PoolArgs& a, long n, const Step& s) const { items<MaxPool>(a, n, "max_pool", s); }
  void avg_pool(const PoolArgs& a, long n, const Step& s) const { items<AvgPool>(a, n, "avg_pool", s); }
  void eltwise(const EltwiseArgs& a, long n, const Step& s) const { items<Eltwise>(a, n, "eltwise", s); }
  void softmax(const SoftmaxArgs& a, int images, const Step& s) const {
    softmax_kernel<><<<static_cast<unsigned>(images), softmax_threads, 0, stream>>>(a);
    after("softmax", s);
  }
  void splitk(const ConvArgs& a, int splits, long count, const Step& s) const {
    splitk_kernel<><<<blocks_for(count), item_threads, 0, stream>>>(a, splits, count);
    after("split-K reduction", s);
  }
  template <class Cfg>
  void conv_with(const ConvArgs& a, const ConvTiling& t, const char* kernel, const Step& s) const {
    const dim3 grid(static_cast<unsigned>(t.grid_m), static_cast<unsigned>(t.grid_n), static_cast<unsigned>(t.splits));
    conv_kernel<Cfg, P>()<<<grid, Cfg::NT, conv_smem_bytes<Cfg, P>, stream>>>(a);
    after(kernel, s);
  }
  void conv(const ConvArgs& a, const ConvTiling& t, const Step& s) const {
    const char* name = conv_kernel_name<P>(t.config, t.legacy);
    switch (t.config) {
      case TileConfig::t128x128:
        t.legacy ? conv_with<LegacyConv128x128>(a, t, name, s) : conv_with<Conv128x128>(a, t, name, s);
        break;
      case TileConfig::t128x64:
        t.legacy ? conv_with<LegacyConv128x64>(a, t, name, s) : conv_with<Conv128x64>(a, t, name, s);
        break;
      case TileConfig::t64x64:
        t.legacy ? conv_with<LegacyConv64x64>(a, t, name, s) : conv_with<Conv64x64>(a, t, name, s);
        break;
    }
  }
};

}  // namespace ctnn::cuda

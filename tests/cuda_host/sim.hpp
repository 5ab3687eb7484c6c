// A host simulator for the CUDA backend's kernel bodies (see
// include/ctnn/backend/cuda/portable.cuh). Each simulated block runs its
// threads as real host threads joined by a std::barrier, so __syncthreads
// placement, shared-memory staging, the cp.async pipeline's stage indexing,
// split-K and the fused epilogues execute exactly as written for the GPU.
#pragma once

#define CTNN_CUDA_HOST_SIM 1

#include <barrier>
#include <cstddef>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ctnn/backend/cuda/schedule.cuh"

namespace ctnn::cuda::sim {

// Relative error (max |diff| / max |reference|) the simulated BF16 path must
// stay within on the test networks (docs/cuda-backend.md gives the measured
// errors). TF32's is 5e-3.
inline constexpr double bf16_tolerance = 2e-2;

// Exact TF32 fragment loads that met an unrounded value since the last run_plan.
long inexact_tf32_seen();

// Runs fn(tid) on `threads` host threads that share one barrier.
void run_block(int threads, const std::function<void(int)>& fn);

// The launcher policy schedule.cuh drives, running every kernel body here.
struct HostLauncher {
  int conv_launches = 0, split_launches = 0;

  void to_nhwc(const LayoutArgs& a, long items, const Step&) {
    for (long i = 0; i < items; ++i) to_nhwc_item(a, i);
  }
  void max_pool(const PoolArgs& a, long items, const Step&) {
    for (long i = 0; i < items; ++i) max_pool_item(a, i);
  }
  void avg_pool(const PoolArgs& a, long items, const Step&) {
    for (long i = 0; i < items; ++i) avg_pool_item(a, i);
  }
  void eltwise(const EltwiseArgs& a, long items, const Step&) {
    for (long i = 0; i < items; ++i) eltwise_item(a, i);
  }
  void softmax(const SoftmaxArgs& a, int images, const Step&) {
    std::vector<float> red(softmax_threads);
    for (int img = 0; img < images; ++img)
      run_block(softmax_threads, [&](int tid) { softmax_block(a, red.data(), tid, img); });
  }
  void splitk(const ConvArgs& a, int splits, long items, const Step&) {
    ++split_launches;
    for (long i = 0; i < items; ++i) splitk_finish_item(a, splits, i);
  }
  template <class Cfg>
  void conv_cfg(const ConvArgs& a, const ConvTiling& t) {
    switch (precision) {
      case Precision::fp32: return conv_in<Cfg, Precision::fp32>(a, t);
      case Precision::tf32: return conv_in<Cfg, Precision::tf32>(a, t);
      case Precision::bf16: return conv_in<Cfg, Precision::bf16>(a, t);
    }
  }
  template <class Cfg, Precision P>
  void conv_in(const ConvArgs& a, const ConvTiling& t) {
    std::vector<float> smem(conv_smem_bytes<Cfg, P> / sizeof(float));
    for (int z = 0; z < t.splits; ++z)
      for (long y = 0; y < t.grid_n; ++y)
        for (long x = 0; x < t.grid_m; ++x)
          run_block(Cfg::NT, [&](int tid) {
            conv_block<Cfg, P>(a, smem.data(), tid, static_cast<int>(x), static_cast<int>(y), z);
          });
  }
  void conv(const ConvArgs& a, const ConvTiling& t, const Step&) {
    ++conv_launches;
    ++config_launches[static_cast<int>(t.config)];
    ++(t.legacy ? legacy_launches : tuned_launches);
    switch (t.config) {
      case TileConfig::t128x128: t.legacy ? conv_cfg<LegacyConv128x128>(a, t) : conv_cfg<Conv128x128>(a, t); break;
      case TileConfig::t128x64: t.legacy ? conv_cfg<LegacyConv128x64>(a, t) : conv_cfg<Conv128x64>(a, t); break;
      case TileConfig::t64x64: t.legacy ? conv_cfg<LegacyConv64x64>(a, t) : conv_cfg<Conv64x64>(a, t); break;
    }
  }
  int config_launches[3] = {0, 0, 0};
  int legacy_launches = 0, tuned_launches = 0;
  Precision precision = Precision::fp32;
};

// Runs a whole plan on the host the way the CUDA executor runs it on the
// device: same slots, same schedule, same kernel bodies. Returns NCHW.
struct SimResult {
  std::vector<float> data;
  Extents shape;
  int conv_launches = 0, split_launches = 0;
  int config_launches[3] = {0, 0, 0};  // per TileConfig
  int legacy_launches = 0, tuned_launches = 0;
  // Exact (non-converting) fragment loads that met a value that is not a
  // TF32 value: a path that skipped its rounding. Must be 0.
  long inexact_tf32 = 0;
};
// Like the tensor-core executors, rounds a copy of the plan's weights to the
// precision first (round_weights). `legacy_tiles` selects the legacy kernel family.
SimResult run_plan(const Plan& plan, const Program& program, std::span<const float> input, Extents shape,
                   Stage stage, Precision precision, int sm_count, bool legacy_tiles = false);

}  // namespace ctnn::cuda::sim

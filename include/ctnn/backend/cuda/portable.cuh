// The few device primitives the kernel bodies use, written once for nvcc and
// once for the host simulator in tests/cuda_host.
//
// The kernel bodies (conv_kernel.cuh, simple_kernels.cuh) take their thread
// and block indices and their shared memory as arguments instead of reading
// threadIdx or declaring __shared__ arrays. nvcc compiles them into the real
// kernels (see kernels.cuh); the simulator compiles the very same bodies with
// g++, runs every simulated thread of a block as a host thread and maps
// block_sync() to a std::barrier. That way tile loaders, pipelining, split-K
// and epilogues are tested on machines without a GPU. Only the tensor-core
// fragments are replaced by a plain model (whole tiles in every lane).
#pragma once

#include <cstdint>
#include <cstring>

#include "ctnn/backend/cuda/precision.hpp"  // Precision; round_to_tf32 and bf16_bits model the conversions

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <mma.h>
#define CTNN_DEVICE __device__ __forceinline__
#define CTNN_HOST_DEVICE __host__ __device__ __forceinline__  // also for the launch code's arithmetic
#define CTNN_UNROLL _Pragma("unroll")
#define CTNN_UNROLL_4 _Pragma("unroll 4")
#else
#ifndef CTNN_CUDA_HOST_SIM
#error "ctnn/backend/cuda kernels compile with nvcc, or with g++ only inside the kernel simulator (tests/cuda_host)"
#endif
#include <cmath>
#define CTNN_DEVICE inline
#define CTNN_HOST_DEVICE inline
#define CTNN_UNROLL
#define CTNN_UNROLL_4
namespace ctnn::cuda::sim {
void block_sync();  // defined by the simulator: a barrier over the simulated block
int lane();         // defined by the simulator: this simulated thread's lane in its warp
void note_inexact_tf32();  // defined by the simulator: an exact fragment load met an unrounded value
}
#endif

namespace ctnn::cuda::dev {

CTNN_DEVICE void block_sync() {
#if defined(__CUDACC__)
  __syncthreads();
#else
  sim::block_sync();
#endif
}

// 16-byte global -> shared copy that bypasses registers (cp.async, sm_80+).
// `valid == false` fills the destination with zeros instead: that is how the
// implicit GEMM reads convolution padding and the ragged edges of a tile.
CTNN_DEVICE void cp_async16(float* smem_dst, const float* gmem_src, bool valid) {
#if defined(__CUDACC__)
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem_dst));
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(gmem_src), "r"(src_bytes));
#else
  if (valid)
    std::memcpy(smem_dst, gmem_src, 16);
  else
    std::memset(smem_dst, 0, 16);
#endif
}

CTNN_DEVICE void cp_async_commit() {
#if defined(__CUDACC__)
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most N of this thread's committed groups are in flight.
template <int N>
CTNN_DEVICE void cp_async_wait() {
#if defined(__CUDACC__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

struct float4v {
  float x, y, z, w;
};

CTNN_DEVICE float4v load4(const float* p) {
#if defined(__CUDACC__)
  const float4 v = *reinterpret_cast<const float4*>(p);
  return {v.x, v.y, v.z, v.w};
#else
  return {p[0], p[1], p[2], p[3]};
#endif
}

CTNN_DEVICE void store4(float* p, float4v v) {
#if defined(__CUDACC__)
  *reinterpret_cast<float4*>(p) = make_float4(v.x, v.y, v.z, v.w);
#else
  p[0] = v.x;
  p[1] = v.y;
  p[2] = v.z;
  p[3] = v.w;
#endif
}

CTNN_DEVICE float exp_full(float x) {  // full-precision expf on both sides (no --use_fast_math)
#if defined(__CUDACC__)
  return expf(x);
#else
  return std::exp(x);
#endif
}

// TF32 tensor-core tiles: 16x16 accumulators, 16x8 (A) and 8x16 (B) operands,
// both loaded row-major from shared memory.
#if defined(__CUDACC__)
using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 8, nvcuda::wmma::precision::tf32,
                                     nvcuda::wmma::row_major>;
using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 8, nvcuda::wmma::precision::tf32,
                                     nvcuda::wmma::row_major>;
using FragC = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 8, float>;

CTNN_DEVICE void frag_zero(FragC& c) { nvcuda::wmma::fill_fragment(c, 0.0f); }
CTNN_DEVICE void frag_load(FragA& a, const float* p, unsigned ldm) {
  nvcuda::wmma::load_matrix_sync(a, p, ldm);
CTNN_UNROLL
  for (int t = 0; t < a.num_elements; ++t) a.x[t] = nvcuda::wmma::__float_to_tf32(a.x[t]);
}
CTNN_DEVICE void frag_load(FragB& b, const float* p, unsigned ldm) {
  nvcuda::wmma::load_matrix_sync(b, p, ldm);
CTNN_UNROLL
  for (int t = 0; t < b.num_elements; ++t) b.x[t] = nvcuda::wmma::__float_to_tf32(b.x[t]);
}
// Loads of operands that are already TF32 values (weights rounded by the
// plan, A tiles rounded in shared memory by round_tf32_4): no conversion.
// `p` must point into shared memory. load_matrix_sync emits the generic
// form of wmma.load, which ptxas turns into 64-bit generic loads (LD.E)
// with a wide address computation per element; the .shared form of the same
// instruction fills the same fragment registers with LDS from a 32-bit
// address.
CTNN_DEVICE void frag_load_exact(FragA& a, const float* p, unsigned ldm) {
  static_assert(sizeof(a.x) == 4 * sizeof(float), "m16n16k8 tf32 A fragment: four registers");
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(p));
  unsigned r0, r1, r2, r3;
  asm volatile("wmma.load.a.sync.aligned.row.m16n16k8.shared.tf32 {%0, %1, %2, %3}, [%4], %5;\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr), "r"(ldm)
               : "memory");
  a.x[0] = __uint_as_float(r0);
  a.x[1] = __uint_as_float(r1);
  a.x[2] = __uint_as_float(r2);
  a.x[3] = __uint_as_float(r3);
}
CTNN_DEVICE void frag_load_exact(FragB& b, const float* p, unsigned ldm) {
  static_assert(sizeof(b.x) == 4 * sizeof(float), "m16n16k8 tf32 B fragment: four registers");
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(p));
  unsigned r0, r1, r2, r3;
  asm volatile("wmma.load.b.sync.aligned.row.m16n16k8.shared.tf32 {%0, %1, %2, %3}, [%4], %5;\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr), "r"(ldm)
               : "memory");
  b.x[0] = __uint_as_float(r0);
  b.x[1] = __uint_as_float(r1);
  b.x[2] = __uint_as_float(r2);
  b.x[3] = __uint_as_float(r3);
}
// Rounds four consecutive shared-memory floats (16-byte aligned) to TF32.
CTNN_DEVICE void round_tf32_4(float* p) {
  float4 v = *reinterpret_cast<float4*>(p);
  v.x = nvcuda::wmma::__float_to_tf32(v.x);
  v.y = nvcuda::wmma::__float_to_tf32(v.y);
  v.z = nvcuda::wmma::__float_to_tf32(v.z);
  v.w = nvcuda::wmma::__float_to_tf32(v.w);
  *reinterpret_cast<float4*>(p) = v;
}
CTNN_DEVICE void frag_mma(FragC& c, const FragA& a, const FragB& b) { nvcuda::wmma::mma_sync(c, a, b, c); }
CTNN_DEVICE void frag_store(float* p, const FragC& c, unsigned ldm, int /*lane*/) {
  nvcuda::wmma::store_matrix_sync(p, c, ldm, nvcuda::wmma::mem_row_major);
}
#else
// Host model: a warp's whole tile lives in its lane 0, which alone loads,
// multiplies and stores it (the other lanes' calls return: a 32-fold
// saving, nothing else differs); TF32 rounding as cvt.rna (round to
// nearest, ties away from zero, 10 mantissa bits kept).
inline float to_tf32(float x) { return round_to_tf32(x); }
struct FragA { float v[16][8]; };
struct FragB { float v[8][16]; };
struct FragC { float v[16][16]; };
inline void frag_zero(FragC& c) { std::memset(&c, 0, sizeof c); }
inline void frag_load(FragA& a, const float* p, unsigned ldm) {
  if (sim::lane() != 0) return;  // the tile lives in lane 0, which alone stores it
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 8; ++k) a.v[i][k] = to_tf32(p[i * ldm + k]);
}
inline void frag_load(FragB& b, const float* p, unsigned ldm) {
  if (sim::lane() != 0) return;  // the tile lives in lane 0, which alone stores it
  for (int k = 0; k < 8; ++k)
    for (int j = 0; j < 16; ++j) b.v[k][j] = to_tf32(p[k * ldm + j]);
}
// The exact loads convert nothing, like the GPU's; a value that is not
// already a TF32 value means some path skipped its rounding, which the
// simulator counts and the tests assert never happens.
inline float exact_tf32(float x) {
  if (to_tf32(x) != x) sim::note_inexact_tf32();
  return x;
}
inline void frag_load_exact(FragA& a, const float* p, unsigned ldm) {
  if (sim::lane() != 0) return;  // the tile lives in lane 0, which alone stores it
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 8; ++k) a.v[i][k] = exact_tf32(p[i * ldm + k]);
}
inline void frag_load_exact(FragB& b, const float* p, unsigned ldm) {
  if (sim::lane() != 0) return;  // the tile lives in lane 0, which alone stores it
  for (int k = 0; k < 8; ++k)
    for (int j = 0; j < 16; ++j) b.v[k][j] = exact_tf32(p[k * ldm + j]);
}
inline void round_tf32_4(float* p) {
  for (int i = 0; i < 4; ++i) p[i] = to_tf32(p[i]);
}
inline void frag_mma(FragC& c, const FragA& a, const FragB& b) {
  if (sim::lane() != 0) return;  // the tile lives in lane 0, which alone stores it
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float s = c.v[i][j];
      for (int k = 0; k < 8; ++k) s += a.v[i][k] * b.v[k][j];
      c.v[i][j] = s;
    }
}
// Only lane 0 holds the tile, so only lane 0 writes.
inline void frag_store(float* p, const FragC& c, unsigned ldm, int lane) {
  if (lane != 0) return;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) p[i * ldm + j] = c.v[i][j];
}
#endif

// BF16 tensor-core tiles: 16x16x16, operands row-major in shared memory as
// BF16, FP32 accumulators. The conv body keeps its FP32 pipeline and converts
// each landed tile into BF16 staging (to_bf16_4) before the fragment loads.
#if defined(__CUDACC__)
using Bf16 = __nv_bfloat16;
using FragA16 = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major>;
using FragB16 = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major>;
using FragC16 = nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float>;

// Four floats (16-byte aligned) to four BF16 (8-byte aligned), round to nearest even.
CTNN_DEVICE void to_bf16_4(Bf16* dst, const float* src) {
  const float4 v = *reinterpret_cast<const float4*>(src);
  __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y);
  __nv_bfloat162 hi = __floats2bfloat162_rn(v.z, v.w);
  uint2 packed;
  packed.x = *reinterpret_cast<unsigned*>(&lo);
  packed.y = *reinterpret_cast<unsigned*>(&hi);
  *reinterpret_cast<uint2*>(dst) = packed;
}
// The training GEMM stages A k-major (element (i, k) at p[k * ldm + i]).
using FragA16c = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::col_major>;

CTNN_DEVICE Bf16 to_bf16(float x) { return __float2bfloat16_rn(x); }
CTNN_DEVICE void frag_zero(FragC16& c) { nvcuda::wmma::fill_fragment(c, 0.0f); }
CTNN_DEVICE void frag_load(FragA16c& a, const Bf16* p, unsigned ldm) { nvcuda::wmma::load_matrix_sync(a, p, ldm); }
CTNN_DEVICE void frag_mma(FragC16& c, const FragA16c& a, const FragB16& b) { nvcuda::wmma::mma_sync(c, a, b, c); }
CTNN_DEVICE void frag_load(FragA16& a, const Bf16* p, unsigned ldm) { nvcuda::wmma::load_matrix_sync(a, p, ldm); }
CTNN_DEVICE void frag_load(FragB16& b, const Bf16* p, unsigned ldm) { nvcuda::wmma::load_matrix_sync(b, p, ldm); }
CTNN_DEVICE void frag_mma(FragC16& c, const FragA16& a, const FragB16& b) { nvcuda::wmma::mma_sync(c, a, b, c); }
CTNN_DEVICE void frag_store(float* p, const FragC16& c, unsigned ldm, int /*lane*/) {
  nvcuda::wmma::store_matrix_sync(p, c, ldm, nvcuda::wmma::mem_row_major);
}
#else
// Host model: BF16 as its 16 bits, converted as cvt.rn.bf16.f32; products
// of BF16 values are exact in FP32 and summed in FP32.
struct Bf16 {
  std::uint16_t bits;
};
inline void to_bf16_4(Bf16* dst, const float* src) {
  for (int i = 0; i < 4; ++i) dst[i].bits = bf16_bits(src[i]);
}
inline Bf16 to_bf16(float x) { return {bf16_bits(x)}; }
struct FragA16 { float v[16][16]; };
struct FragA16c : FragA16 {};  // the same tile, loaded from k-major storage
struct FragB16 { float v[16][16]; };
struct FragC16 { float v[16][16]; };
inline void frag_zero(FragC16& c) { std::memset(&c, 0, sizeof c); }
inline void frag_load(FragA16c& a, const Bf16* p, unsigned ldm) {
  if (sim::lane() != 0) return;  // the tile lives in lane 0, which alone stores it
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 16; ++k) a.v[i][k] = bf16_value(p[k * ldm + i].bits);
}
inline void frag_load(FragA16& a, const Bf16* p, unsigned ldm) {
  if (sim::lane() != 0) return;  // the tile lives in lane 0, which alone stores it
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 16; ++k) a.v[i][k] = bf16_value(p[i * ldm + k].bits);
}
inline void frag_load(FragB16& b, const Bf16* p, unsigned ldm) {
  if (sim::lane() != 0) return;  // the tile lives in lane 0, which alone stores it
  for (int k = 0; k < 16; ++k)
    for (int j = 0; j < 16; ++j) b.v[k][j] = bf16_value(p[k * ldm + j].bits);
}
inline void frag_mma(FragC16& c, const FragA16& a, const FragB16& b) {
  if (sim::lane() != 0) return;  // the tile lives in lane 0, which alone stores it
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) {
      float s = c.v[i][j];
      for (int k = 0; k < 16; ++k) s += a.v[i][k] * b.v[k][j];
      c.v[i][j] = s;
    }
}
inline void frag_store(float* p, const FragC16& c, unsigned ldm, int lane) {
  if (lane != 0) return;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) p[i * ldm + j] = c.v[i][j];
}
#endif

}  // namespace ctnn::cuda::dev

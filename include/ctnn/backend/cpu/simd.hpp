// The instruction-set layer of the CPU backend: which xsimd architecture the
// translation unit targets, and the handful of vector operations the kernels
// use. Every kernel is a template on `Arch`, so two translation units built
// with different -m flags instantiate differently named symbols instead of two
// definitions of one inline function (ODR).
//
// A scalar "architecture" (one float per vector) stands in when xsimd has no
// SIMD target (non-x86/ARM builds) or when CTNN_CPU_SCALAR is defined; the
// kernels are written for any vector width, so the same code path runs.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>

#include <xsimd/xsimd.hpp>

namespace ctnn::backend::cpu {

struct scalar_arch {
  static constexpr const char* name() noexcept { return "scalar"; }
};

#if defined(XSIMD_NO_SUPPORTED_ARCHITECTURE) || defined(CTNN_CPU_SCALAR)
using default_arch = scalar_arch;
#else
using default_arch = xsimd::default_arch;
#endif

// Everything else in the backend lives in an inline namespace named after the
// instruction set xsimd targets here, so that even its non-template code
// (layouts, plan structures) gets distinct symbols per -m flag set: the
// linker can never pick an AVX-512 copy of an inline function for a
// translation unit compiled for SSE2.
#if defined(XSIMD_NO_SUPPORTED_ARCHITECTURE) || defined(CTNN_CPU_SCALAR)
#define CTNN_CPU_ISA isa_scalar
#elif XSIMD_WITH_AVX512BW
#define CTNN_CPU_ISA isa_avx512bw
#elif XSIMD_WITH_AVX512DQ
#define CTNN_CPU_ISA isa_avx512dq
#elif XSIMD_WITH_AVX512CD
#define CTNN_CPU_ISA isa_avx512cd
#elif XSIMD_WITH_AVX512F
#define CTNN_CPU_ISA isa_avx512f
#elif XSIMD_WITH_FMA3_AVX2
#define CTNN_CPU_ISA isa_fma3_avx2
#elif XSIMD_WITH_AVX2
#define CTNN_CPU_ISA isa_avx2
#elif XSIMD_WITH_FMA3_AVX
#define CTNN_CPU_ISA isa_fma3_avx
#elif XSIMD_WITH_AVX
#define CTNN_CPU_ISA isa_avx
#elif XSIMD_WITH_FMA4
#define CTNN_CPU_ISA isa_fma4
#elif XSIMD_WITH_FMA3_SSE
#define CTNN_CPU_ISA isa_fma3_sse
#elif XSIMD_WITH_SSE4_2
#define CTNN_CPU_ISA isa_sse4_2
#elif XSIMD_WITH_SSE4_1
#define CTNN_CPU_ISA isa_sse4_1
#elif XSIMD_WITH_SSSE3
#define CTNN_CPU_ISA isa_ssse3
#elif XSIMD_WITH_SSE3
#define CTNN_CPU_ISA isa_sse3
#elif XSIMD_WITH_SSE2
#define CTNN_CPU_ISA isa_sse2
#elif XSIMD_WITH_NEON64
#define CTNN_CPU_ISA isa_neon64
#elif XSIMD_WITH_NEON
#define CTNN_CPU_ISA isa_neon
#else
#define CTNN_CPU_ISA isa_other
#endif

template <class Arch>
struct simd;

#if !defined(XSIMD_NO_SUPPORTED_ARCHITECTURE)
template <class Arch>
struct simd {
  using vec = xsimd::batch<float, Arch>;
  static constexpr int width = static_cast<int>(vec::size);
  // Architectural vector registers: bounds the register tile of the conv kernel.
  static constexpr int registers = std::is_base_of_v<xsimd::avx512f, Arch> ? 32 : 16;
  // Without a fused multiply-add (SSE), a*b+c needs one more temporary register.
  static constexpr bool native_fma = width >= 8;

  static vec zero() noexcept { return vec(0.0f); }
  static vec set1(float v) noexcept { return vec(v); }
  static vec load(const float* p) noexcept { return vec::load_aligned(p); }
  static void store(float* p, vec v) noexcept { v.store_aligned(p); }
  static vec load_unaligned(const float* p) noexcept { return vec::load_unaligned(p); }
  static void store_unaligned(float* p, vec v) noexcept { v.store_unaligned(p); }
  static vec fma(vec a, vec b, vec c) noexcept { return xsimd::fma(a, b, c); }
  static float reduce_add(vec v) noexcept {
#if XSIMD_VERSION_MAJOR >= 9
    return xsimd::reduce_add(v);
#else
    return xsimd::hadd(v);  // xsimd 8 (Debian 12); renamed reduce_add in 9
#endif
  }
  // v where select_by > 0, else 0 (ReLU and its gradient, without branches);
  // the float form serves loops' tails.
  static vec where_positive(vec select_by, vec v) noexcept { return xsimd::select(select_by > zero(), v, zero()); }
  static float where_positive(float select_by, float v) noexcept { return select_by > 0.0f ? v : 0.0f; }
  // A compare and blend: xsimd::max on AVX-512 trips g++ 12's
  // -Wmaybe-uninitialized inside the intrinsic header.
  static vec max(vec a, vec b) noexcept { return xsimd::select(a < b, b, a); }
  // Transposes the width x width block held in rows[0 .. width), in place:
  // reorders between NCHW and the blocked layout use it. On AVX-512 and AVX
  // in registers (interleave pairs, then quads, then 128-bit lanes); other
  // widths through an L1-resident tile (xsimd 8's zip_lo/zip_hi interleave
  // within 128-bit lanes on x86, so they do not compose into a transpose).
  static void transpose(vec* rows) noexcept {
#if defined(__AVX512F__)
    if constexpr (width == 16) {
      // The masked forms with every lane selected: the plain intrinsics pass
      // g++ 12 an undefined source operand, which -Wmaybe-uninitialized reports.
      constexpr __mmask16 all = 0xFFFF;
      constexpr __mmask8 all_pd = 0xFF;
      const auto lo = [](__m512 a, __m512 b) { return _mm512_mask_unpacklo_ps(a, all, a, b); };
      const auto hi = [](__m512 a, __m512 b) { return _mm512_mask_unpackhi_ps(a, all, a, b); };
      const auto lo_pd = [](__m512 a, __m512 b) {
        const __m512d x = _mm512_castps_pd(a);
        return _mm512_castpd_ps(_mm512_mask_unpacklo_pd(x, all_pd, x, _mm512_castps_pd(b)));
      };
      const auto hi_pd = [](__m512 a, __m512 b) {
        const __m512d x = _mm512_castps_pd(a);
        return _mm512_castpd_ps(_mm512_mask_unpackhi_pd(x, all_pd, x, _mm512_castps_pd(b)));
      };
      const auto lanes_even = [](__m512 a, __m512 b) { return _mm512_mask_shuffle_f32x4(a, all, a, b, 0x88); };
      const auto lanes_odd = [](__m512 a, __m512 b) { return _mm512_mask_shuffle_f32x4(a, all, a, b, 0xDD); };
      __m512 t[16], u[16];
      for (int i = 0; i < 16; i += 2) {
        t[i] = lo(rows[i], rows[i + 1]);
        t[i + 1] = hi(rows[i], rows[i + 1]);
      }
      // u[4i + j], 128-bit lane L: rows 4i .. 4i+3 of column 4L + j.
      for (int i = 0; i < 16; i += 4) {
        u[i] = lo_pd(t[i], t[i + 2]);
        u[i + 1] = hi_pd(t[i], t[i + 2]);
        u[i + 2] = lo_pd(t[i + 1], t[i + 3]);
        u[i + 3] = hi_pd(t[i + 1], t[i + 3]);
      }
      for (int j = 0; j < 4; ++j) {  // lane L of u[j], u[4 + j], u[8 + j], u[12 + j]: column 4L + j
        const __m512 even_lo = lanes_even(u[j], u[4 + j]), odd_lo = lanes_odd(u[j], u[4 + j]);
        const __m512 even_hi = lanes_even(u[8 + j], u[12 + j]), odd_hi = lanes_odd(u[8 + j], u[12 + j]);
        rows[j] = lanes_even(even_lo, even_hi);
        rows[8 + j] = lanes_odd(even_lo, even_hi);
        rows[4 + j] = lanes_even(odd_lo, odd_hi);
        rows[12 + j] = lanes_odd(odd_lo, odd_hi);
      }
      return;
    }
#endif
#if defined(__AVX__)
    if constexpr (width == 8) {
      __m256 t[8], q[8];
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(rows[i], rows[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(rows[i], rows[i + 1]);
      }
      // q[4h + j], 128-bit lane L: rows 4h .. 4h+3 of column 4L + j.
      for (int h = 0; h < 8; h += 4) {
        q[h] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);
        q[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE);
        q[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);
        q[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
      }
      for (int j = 0; j < 4; ++j) {
        rows[j] = _mm256_permute2f128_ps(q[j], q[4 + j], 0x20);
        rows[4 + j] = _mm256_permute2f128_ps(q[j], q[4 + j], 0x31);
      }
      return;
    }
#endif
    alignas(64) float tile[width * width];
    for (int r = 0; r < width; ++r) rows[r].store_aligned(tile + r * width);
    for (int r = 0; r < width; ++r) {
      alignas(64) float column[width];
      for (int c = 0; c < width; ++c) column[c] = tile[c * width + r];
      rows[r] = vec::load_aligned(column);
    }
  }
};
#endif

template <>
struct simd<scalar_arch> {
  using vec = float;
  static constexpr int width = 1;
  static constexpr int registers = 16;
  static constexpr bool native_fma = false;

  static vec zero() noexcept { return 0.0f; }
  static vec set1(float v) noexcept { return v; }
  static vec load(const float* p) noexcept { return *p; }
  static void store(float* p, vec v) noexcept { *p = v; }
  static vec load_unaligned(const float* p) noexcept { return *p; }
  static void store_unaligned(float* p, vec v) noexcept { *p = v; }
  static vec fma(vec a, vec b, vec c) noexcept { return a * b + c; }
  static float reduce_add(vec v) noexcept { return v; }
  static vec where_positive(vec select_by, vec v) noexcept { return select_by > 0.0f ? v : 0.0f; }
  static void transpose(vec*) noexcept {}
  static vec max(vec a, vec b) noexcept { return std::max(a, b); }
};

// Channels per block of the activation layout: one vector of floats.
template <class Arch>
inline constexpr int block_width = simd<Arch>::width;

}  // namespace ctnn::backend::cpu

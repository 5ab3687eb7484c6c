// A cache-blocked single-precision matrix product for the CPU training
// executor (im2col convolutions, their backward passes, Linear layers):
//
//   C[M x N] = (accumulate ? C : 0) + op(A)[M x K] * op(B)[K x N]
//
// Either operand may be a transposed view, so one routine serves forward
// (W x col), backward-data (W^T x dY) and backward-weights (dY x col^T).
// Both operands are packed into zero-padded panels (MR rows of A, NR columns
// of B, K-major), which gives the register-tiled micro-kernel one layout
// whatever the operands' strides. KC and MC come from the machine's L1 and L2
// sizes at run time (a B panel of KC x NR stays in L1, an A block of MC x KC in
// L2), not from constants tuned on one CPU. Each element of C is summed over K
// in a fixed order by one call, so results do not depend on how callers split
// work between threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#include "ctnn/backend/cpu/simd.hpp"

namespace ctnn::backend::cpu {
inline namespace CTNN_CPU_ISA {

// Element (r, c) at data[r * ld + c], or at data[c * ld + r] when transposed.
struct MatrixView {
  const float* data = nullptr;
  std::size_t ld = 0;
  bool transposed = false;
  float operator()(std::size_t r, std::size_t c) const { return transposed ? data[c * ld + r] : data[r * ld + c]; }
};

// Data-cache sizes of this machine (sysconf where it answers, else typical values).
inline std::size_t cache_bytes(int level) {
  long bytes = -1;
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
  bytes = sysconf(level == 1 ? _SC_LEVEL1_DCACHE_SIZE : _SC_LEVEL2_CACHE_SIZE);
#endif
  if (bytes <= 0) bytes = level == 1 ? 32 * 1024 : 1024 * 1024;
  return static_cast<std::size_t>(bytes);
}

template <class Arch>
struct Gemm {
  using S = simd<Arch>;
  using vec = typename S::vec;
  static constexpr int W = S::width;
  static constexpr int NR = 2 * W;                     // two vectors of columns
  static constexpr int MR = S::registers >= 32 ? 8 : 6;  // rows: MR x 2 accumulators + operands fit the registers

  struct Blocking {
    std::size_t kc = 256, mc = 96;
  };
  static Blocking blocking() {
    static const Blocking b = [] {
      Blocking r;
      // Half of L1 for one B panel (KC x NR floats), half of L2 for the A block.
      r.kc = std::clamp<std::size_t>(cache_bytes(1) / 2 / (NR * sizeof(float)), 64, 512);
      r.mc = std::clamp<std::size_t>(cache_bytes(2) / 2 / (r.kc * sizeof(float)) / MR * MR, MR, 1200);
      return r;
    }();
    return b;
  }

  // Floats of scratch one call needs (packed panels of A and B).
  static std::size_t scratch_floats(std::size_t m, std::size_t n, std::size_t k) {
    const Blocking b = blocking();
    const std::size_t kc = std::min(b.kc, std::max<std::size_t>(k, 1));
    const std::size_t mc = std::min(b.mc, round_up(m, MR));
    return kc * round_up(n, NR) + mc * kc + static_cast<std::size_t>(MR * NR);
  }

  static void run(std::size_t m, std::size_t n, std::size_t k, MatrixView a, MatrixView b, float* c, std::size_t ldc,
                  bool accumulate, float* scratch) {
    run(m, n, k, a, [b](std::size_t k0, std::size_t kc, std::size_t cols, float* dst) { pack_b(b, k0, kc, cols, dst); },
        c, ldc, accumulate, scratch);
  }

  // The same product with B given by its packer rather than a matrix:
  // pack(k0, kc, n, dst) writes rows [k0, k0 + kc) of B as NR-column panels
  // (each kc x NR, K-major, zero past column n). The training weight gradient
  // passes one that fills the panels from a channels-last copy of its input
  // (TapMajorColumns in training.hpp), so the column matrix is never formed.
  template <class PackB>
  static void run(std::size_t m, std::size_t n, std::size_t k, MatrixView a, const PackB& pack, float* c,
                  std::size_t ldc, bool accumulate, float* scratch) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
      if (!accumulate)
        for (std::size_t i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, 0.f);
      return;
    }
    const Blocking bl = blocking();
    const std::size_t n_panels = (n + NR - 1) / NR;
    float* packed_b = scratch;
    float* packed_a = scratch + std::min(bl.kc, k) * n_panels * NR;
    float* tile = packed_a + std::min(bl.mc, round_up(m, MR)) * std::min(bl.kc, k);
    for (std::size_t k0 = 0; k0 < k; k0 += bl.kc) {
      const std::size_t kc = std::min(bl.kc, k - k0);
      pack(k0, kc, n, packed_b);
      const bool add = accumulate || k0 > 0;
      for (std::size_t m0 = 0; m0 < m; m0 += bl.mc) {
        const std::size_t mc = std::min(bl.mc, m - m0);
        pack_a(a, m0, mc, k0, kc, packed_a);
        for (std::size_t jp = 0; jp < n_panels; ++jp)
          for (std::size_t ip = 0; ip * MR < mc; ++ip) {
            const std::size_t rows = std::min<std::size_t>(MR, mc - ip * MR);
            const std::size_t cols = std::min<std::size_t>(NR, n - jp * NR);
            float* dst = c + (m0 + ip * MR) * ldc + jp * NR;
            micro(kc, packed_a + ip * MR * kc, packed_b + jp * NR * kc, dst, ldc, rows, cols, add, tile);
          }
      }
    }
  }

 private:
  static constexpr std::size_t round_up(std::size_t v, std::size_t q) { return (v + q - 1) / q * q; }

  // B[k0 .. k0+kc) x [0, n) as NR-column panels, each kc x NR, zero past n.
  // Reads follow memory order: rows of B, or, transposed, its columns.
  static void pack_b(MatrixView b, std::size_t k0, std::size_t kc, std::size_t n, float* dst) {
    for (std::size_t j0 = 0; j0 < n; j0 += NR, dst += kc * NR) {
      const std::size_t cols = std::min<std::size_t>(NR, n - j0);
      if (b.transposed) {
        if (cols < NR) std::fill_n(dst, kc * NR, 0.f);
        for (std::size_t j = 0; j < cols; ++j) {
          const float* src = b.data + (j0 + j) * b.ld + k0;
          for (std::size_t kk = 0; kk < kc; ++kk) dst[kk * NR + j] = src[kk];
        }
        continue;
      }
      for (std::size_t kk = 0; kk < kc; ++kk) {
        const float* src = b.data + (k0 + kk) * b.ld + j0;
        float* d = dst + kk * NR;
        std::memcpy(d, src, cols * sizeof(float));
        std::fill(d + cols, d + NR, 0.f);
      }
    }
  }

  // A[m0 .. m0+mc) x [k0 .. k0+kc) as MR-row panels, each kc x MR, zero past mc.
  static void pack_a(MatrixView a, std::size_t m0, std::size_t mc, std::size_t k0, std::size_t kc, float* dst) {
    for (std::size_t i0 = 0; i0 < mc; i0 += MR) {
      const std::size_t rows = std::min<std::size_t>(MR, mc - i0);
      if (a.transposed) {  // rows of the panel are contiguous in memory
        for (std::size_t kk = 0; kk < kc; ++kk, dst += MR) {
          const float* src = a.data + (k0 + kk) * a.ld + m0 + i0;
          for (std::size_t i = 0; i < rows; ++i) dst[i] = src[i];
          for (std::size_t i = rows; i < MR; ++i) dst[i] = 0.f;
        }
      } else {  // one row of A at a time, read in memory order
        if (rows < MR) std::fill_n(dst, kc * MR, 0.f);
        for (std::size_t i = 0; i < rows; ++i) {
          const float* src = a.data + (m0 + i0 + i) * a.ld + k0;
          for (std::size_t kk = 0; kk < kc; ++kk) dst[kk * MR + i] = src[kk];
        }
        dst += kc * MR;
      }
    }
  }

  // One MR x NR tile of C over kc: accumulators in registers.
  static void micro(std::size_t kc, const float* a, const float* b, float* c, std::size_t ldc, std::size_t rows,
                    std::size_t cols, bool add, float* tile) {
    vec acc[MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = S::zero();
    for (std::size_t kk = 0; kk < kc; ++kk, a += MR, b += NR) {
      const vec b0 = S::load(b), b1 = S::load(b + W);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const vec ai = S::set1(a[i]);
        acc[i][0] = S::fma(ai, b0, acc[i][0]);
        acc[i][1] = S::fma(ai, b1, acc[i][1]);
      }
    }
    if (rows == MR && cols == NR) {
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        float* row = c + static_cast<std::size_t>(i) * ldc;
        if (add) {
          S::store_unaligned(row, S::load_unaligned(row) + acc[i][0]);
          S::store_unaligned(row + W, S::load_unaligned(row + W) + acc[i][1]);
        } else {
          S::store_unaligned(row, acc[i][0]);
          S::store_unaligned(row + W, acc[i][1]);
        }
      }
      return;
    }
    for (int i = 0; i < MR; ++i) {  // an edge tile: through memory
      S::store_unaligned(tile + i * NR, acc[i][0]);
      S::store_unaligned(tile + i * NR + W, acc[i][1]);
    }
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < cols; ++j) {
        float& dst = c[i * ldc + j];
        dst = add ? dst + tile[i * NR + j] : tile[i * NR + j];
      }
  }
};

}  // namespace CTNN_CPU_ISA
}  // namespace ctnn::backend::cpu

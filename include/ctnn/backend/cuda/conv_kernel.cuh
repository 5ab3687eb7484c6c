// Convolution (and Linear) as an implicit GEMM over NHWC activations, with
// bias + residual add + activation fused into the epilogue.
//
//   C[m][n] = sum_k A[m][k] * B[k][n]
//   m = (image, oy, ox)           M = N * OH * OW   (a row of C is an NHWC output pixel)
//   k = (ky, kx, c)               K = R * S * Cs    (c fastest: 16-byte runs in NHWC)
//   n = output channel            B = weights repacked by plan.hpp to [K pad 32][N pad 128]
//
// One block computes a BM x BN tile of C, walking K in tiles of 32 through a
// STAGES-deep cp.async pipeline: while the tensor cores (TF32, BF16) or the
// FMA units (FP32) work on one tile, the next ones are in flight. (For BF16
// the pipeline stays FP32 and each landed tile is converted into a BF16 copy
// that the fragments load.) A tiles are
// gathered straight from the input with zero-fill for padding and ragged
// edges, so no im2col buffer exists. With split-K (blockIdx.z) each block
// reduces a slice of K into a partial tile; simple_kernels.cuh sums them.
//
// The body takes its indices and shared memory as arguments so that the host
// simulator (tests/cuda_host) runs exactly this code; see portable.cuh.
#pragma once

#include "ctnn/backend/cuda/plan.hpp"
#include "ctnn/backend/cuda/portable.cuh"

namespace ctnn::cuda {

struct ConvArgs {
  const float* in = nullptr;        // NHWC, cs_in channels
  const float* weight = nullptr;    // [kd_pad][n_pad]
  const float* bias = nullptr;      // [n_pad]
  const float* residual = nullptr;  // NHWC like out, or null
  float* out = nullptr;             // NHWC, cs_out channels
  float* partial = nullptr;         // split-K partials [splits][M][cs_out]; null: fused epilogue here
  int h = 0, w = 0, cs_in = 0;
  int oh = 0, ow = 0, cs_out = 0;
  int kernel = 1, stride = 1, padding = 0;
  int kd = 0, n_pad = 0, k_tiles = 0, kt_per_split = 0;
  int m = 0;                        // N * OH * OW
  int act = 0;                      // Act
};

// MIN_BLOCKS is the residency __launch_bounds__ asks for (it caps registers
// at 64K / (NT * MIN_BLOCKS)); 0 asks for none. TF32_IN_SMEM: every thread rounds the A
// elements it copied once per K tile in shared memory, and the weights come
// pre-rounded (round_weights_to_tf32), so fragment loads convert nothing;
// otherwise every fragment load converts its elements (each A element is
// then converted once per warp column, each B element once per warp row).
template <int BM_, int BN_, int NT_, int WARPS_M_, int WARPS_N_, int STAGES_, int MIN_BLOCKS_, bool TF32_IN_SMEM_>
struct ConvConfig {
  static constexpr int BM = BM_, BN = BN_, BK = tile_k, NT = NT_, STAGES = STAGES_;
  static constexpr int WARPS_M = WARPS_M_, WARPS_N = WARPS_N_;
  static constexpr int MIN_BLOCKS = MIN_BLOCKS_;
  static constexpr bool TF32_IN_SMEM = TF32_IN_SMEM_;
  // Row pads keep every WMMA tile pointer 32-byte aligned (ldm a multiple of
  // 4, tile rows multiples of 8) and spread a fragment's rows over the banks:
  // A rows 36 floats apart put lane (g, t) of a 16x8 fragment on bank
  // 4g + t; B rows BN + 8 apart put lane (t, g) on bank 8t + g.
  static constexpr int LDA = BK + 4, LDB = BN + 8, LDC = BN + 4;
  static constexpr int A_STAGE = BM * LDA, B_STAGE = BK * LDB, STAGE = A_STAGE + B_STAGE;
  static constexpr int A_CHUNKS = BM * (BK / 4) / NT;  // 16-byte copies per thread per tile
  static constexpr int B_CHUNKS = BK * (BN / 4) / NT;
  static constexpr int ROWS_PER_PASS = NT / (BK / 4);
  static constexpr std::size_t smem_bytes = sizeof(float) * static_cast<std::size_t>(STAGES) * STAGE;
  // BF16 staging after the FP32 stages: two buffers (tile `it` is converted
  // into buffer it % 2 while other warps may still read tile it - 1). Rows of
  // BK + 8 and BN + 8 halves keep WMMA pointers 32-byte aligned.
  static constexpr int LDA16 = BK + 8, LDB16 = BN + 8;
  static constexpr int A16_STAGE = BM * LDA16, B16_STAGE = BK * LDB16, STAGE16 = A16_STAGE + B16_STAGE;
  static constexpr std::size_t bf16_bytes = 2 * 2 * static_cast<std::size_t>(STAGE16);
  static_assert(smem_bytes % 32 == 0 && (2 * A16_STAGE) % 32 == 0 && (2 * STAGE16) % 32 == 0,
                "BF16 staging buffers start 32-byte aligned");
  static_assert(NT == 32 * WARPS_M * WARPS_N, "one warp per warp tile");
  static_assert(BM % (16 * WARPS_M) == 0 && BN % (16 * WARPS_N) == 0, "warp tiles are whole 16x16 fragments");
  static_assert(A_CHUNKS * NT == BM * (BK / 4) && B_CHUNKS * NT == BK * (BN / 4), "even copy split");
  static_assert(NT % 16 == 0 && BN % 16 == 0 && BM % (NT / 16) == 0, "FP32 thread grid");
  static_assert((BM * (BN / 4)) % NT == 0, "even epilogue split");
  static_assert(BM * LDC <= STAGES * STAGE, "the output tile reuses the pipeline's shared memory");
  static_assert(STAGES >= 2, "a pipeline needs two stages");
};

// plan.hpp's TileConfig names these. Two blocks of 128x128 per
// multiprocessor (16 warps; 2 x 105 KB of shared memory) instead of one
// hide more of the gather latency; 64x64 blocks fit four.
using Conv128x128 = ConvConfig<128, 128, 256, 2, 4, 3, 2, true>;  // warp tile 64x32
using Conv128x64 = ConvConfig<128, 64, 128, 2, 2, 3, 2, true>;    // warp tile 64x32
using Conv64x64 = ConvConfig<64, 64, 128, 2, 2, 3, 0, true>;      // warp tile 32x32

// The family of the first GPU run (ConvTiling::legacy, CTNN_CUDA_LEGACY_TILES).
using LegacyConv128x128 = ConvConfig<128, 128, 256, 2, 4, 3, 0, false>;
using LegacyConv128x64 = ConvConfig<128, 64, 128, 2, 2, 3, 0, false>;
using LegacyConv64x64 = ConvConfig<64, 64, 128, 2, 2, 3, 0, false>;

// Dynamic shared memory of one configuration in one precision.
template <class Cfg, Precision P>
inline constexpr std::size_t conv_smem_bytes = Cfg::smem_bytes + (P == Precision::bf16 ? Cfg::bf16_bytes : 0);

// The fused epilogue: bias, residual, activation on four consecutive channels.
CTNN_DEVICE dev::float4v apply_act(dev::float4v v, int act) {
  if (act == static_cast<int>(Act::relu)) {
    v.x = v.x > 0.0f ? v.x : 0.0f;
    v.y = v.y > 0.0f ? v.y : 0.0f;
    v.z = v.z > 0.0f ? v.z : 0.0f;
    v.w = v.w > 0.0f ? v.w : 0.0f;
  } else if (act == static_cast<int>(Act::sigmoid)) {
    v.x = 1.0f / (1.0f + dev::exp_full(-v.x));
    v.y = 1.0f / (1.0f + dev::exp_full(-v.y));
    v.z = 1.0f / (1.0f + dev::exp_full(-v.z));
    v.w = 1.0f / (1.0f + dev::exp_full(-v.w));
  }
  return v;
}

CTNN_DEVICE void conv_finish(const ConvArgs& a, dev::float4v v, long m, int n) {
  const dev::float4v b = dev::load4(a.bias + n);
  v.x += b.x;
  v.y += b.y;
  v.z += b.z;
  v.w += b.w;
  const long at = m * a.cs_out + n;
  if (a.residual) {
    const dev::float4v r = dev::load4(a.residual + at);
    v.x += r.x;
    v.y += r.y;
    v.z += r.z;
    v.w += r.w;
  }
  dev::store4(a.out + at, apply_act(v, a.act));
}

// Tensor-core fragments of a precision and the K extent of one MMA.
template <Precision P>
struct Mma {  // tf32 (and the unused FP32 case)
  using A = dev::FragA;
  using B = dev::FragB;
  using C = dev::FragC;
  static constexpr int k = 8;
};
template <>
struct Mma<Precision::bf16> {
  using A = dev::FragA16;
  using B = dev::FragB16;
  using C = dev::FragC16;
  static constexpr int k = 16;
};

template <class Cfg, Precision P>
CTNN_DEVICE void conv_block(const ConvArgs& a, float* smem, int tid, int bx, int by, int bz) {
  constexpr bool TF32 = P == Precision::tf32, BF16 = P == Precision::bf16, TENSOR = TF32 || BF16;
  using Frags = Mma<P>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, BK = Cfg::BK, NT = Cfg::NT, STAGES = Cfg::STAGES;
  constexpr int LDA = Cfg::LDA, LDB = Cfg::LDB, LDC = Cfg::LDC;
  const int m0 = bx * BM, n0 = by * BN;
  const int kt_begin = bz * a.kt_per_split;
  const int kt_end = kt_begin + a.kt_per_split < a.k_tiles ? kt_begin + a.kt_per_split : a.k_tiles;
  const int nkt = kt_end - kt_begin;

  // --- A loader: this thread copies 4 channels at column kq*4 of rows
  // tid/8 + j*ROWS_PER_PASS. The row geometry is fixed for the whole K walk;
  // the (ky, kx, c) position advances by BK per tile without division.
  const int kq = tid % (BK / 4);
  const int row0 = tid / (BK / 4);
  const float* row_base[Cfg::A_CHUNKS];
  int row_iy[Cfg::A_CHUNKS], row_ix[Cfg::A_CHUNKS];
  const int opix = a.oh * a.ow;
CTNN_UNROLL
  for (int j = 0; j < Cfg::A_CHUNKS; ++j) {
    const int m = m0 + row0 + j * Cfg::ROWS_PER_PASS;
    if (m < a.m) {
      const int img = m / opix, rem = m - img * opix;
      const int oy = rem / a.ow, ox = rem - oy * a.ow;
      row_base[j] = a.in + static_cast<long>(img) * a.h * a.w * a.cs_in;
      row_iy[j] = oy * a.stride - a.padding;
      row_ix[j] = ox * a.stride - a.padding;
    } else {
      row_base[j] = nullptr;
      row_iy[j] = row_ix[j] = 0;
    }
  }
  int kd = kt_begin * BK + kq * 4;
  int kc = kd % a.cs_in;
  int ky = (kd / a.cs_in) / a.kernel;
  int kx = (kd / a.cs_in) % a.kernel;

  auto load_tile = [&](int stage, int kt) {
    float* As = smem + stage * Cfg::STAGE;
    float* Bs = As + Cfg::A_STAGE;
    const bool k_ok = kd < a.kd;
CTNN_UNROLL
    for (int j = 0; j < Cfg::A_CHUNKS; ++j) {
      const int iy = row_iy[j] + ky, ix = row_ix[j] + kx;
      const bool ok = row_base[j] != nullptr && k_ok && iy >= 0 && iy < a.h && ix >= 0 && ix < a.w;
      const float* src = ok ? row_base[j] + (static_cast<long>(iy) * a.w + ix) * a.cs_in + kc : a.in;
      dev::cp_async16(As + (row0 + j * Cfg::ROWS_PER_PASS) * LDA + kq * 4, src, ok);
    }
CTNN_UNROLL
    for (int j = 0; j < Cfg::B_CHUNKS; ++j) {
      const int id = tid + j * NT;
      const int kr = id / (BN / 4), nq = id % (BN / 4);
      const float* src = a.weight + static_cast<long>(kt * BK + kr) * a.n_pad + n0 + nq * 4;
      dev::cp_async16(Bs + kr * LDB + nq * 4, src, true);
    }
    kd += BK;
    kc += BK;
    while (kc >= a.cs_in) {
      kc -= a.cs_in;
      if (++kx == a.kernel) {
        kx = 0;
        ++ky;
      }
    }
  };

  // --- accumulators
  constexpr int WTM = BM / Cfg::WARPS_M, WTN = BN / Cfg::WARPS_N;
  constexpr int FM = WTM / 16, FN = WTN / 16;
  constexpr int TY = NT / 16, TM = BM / TY, TN = BN / 16;
  const int warp = tid / 32, lane = tid % 32;
  const int wm = warp / Cfg::WARPS_N, wn = warp % Cfg::WARPS_N;
  const int tx = tid % 16, ty = tid / 16;
  [[maybe_unused]] typename Frags::C frag[TENSOR ? FM : 1][TENSOR ? FN : 1];
  [[maybe_unused]] float acc[TENSOR ? 1 : TM][TENSOR ? 1 : TN];
  [[maybe_unused]] dev::Bf16* const staging = reinterpret_cast<dev::Bf16*>(smem + STAGES * Cfg::STAGE);
  if constexpr (TENSOR) {
CTNN_UNROLL
    for (int i = 0; i < FM; ++i)
CTNN_UNROLL
      for (int j = 0; j < FN; ++j) dev::frag_zero(frag[i][j]);
  } else {
CTNN_UNROLL
    for (int i = 0; i < TM; ++i)
CTNN_UNROLL
      for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
  }

  auto compute = [&](int stage, int it) {
    const float* As = smem + stage * Cfg::STAGE;
    const float* Bs = As + Cfg::A_STAGE;
    if constexpr (BF16) {
      const dev::Bf16* As16 = staging + (it % 2) * Cfg::STAGE16;
      const dev::Bf16* Bs16 = As16 + Cfg::A16_STAGE;
CTNN_UNROLL
      for (int kk = 0; kk < BK; kk += Frags::k) {
        typename Frags::A fa[FM];
        typename Frags::B fb[FN];
CTNN_UNROLL
        for (int i = 0; i < FM; ++i) dev::frag_load(fa[i], As16 + (wm * WTM + i * 16) * Cfg::LDA16 + kk, Cfg::LDA16);
CTNN_UNROLL
        for (int j = 0; j < FN; ++j) dev::frag_load(fb[j], Bs16 + kk * Cfg::LDB16 + wn * WTN + j * 16, Cfg::LDB16);
CTNN_UNROLL
        for (int i = 0; i < FM; ++i)
CTNN_UNROLL
          for (int j = 0; j < FN; ++j) dev::frag_mma(frag[i][j], fa[i], fb[j]);
      }
    } else if constexpr (TF32) {
CTNN_UNROLL
      for (int kk = 0; kk < BK; kk += 8) {
        dev::FragA fa[FM];
        dev::FragB fb[FN];
CTNN_UNROLL
        for (int i = 0; i < FM; ++i) {
          if constexpr (Cfg::TF32_IN_SMEM)
            dev::frag_load_exact(fa[i], As + (wm * WTM + i * 16) * LDA + kk, LDA);
          else
            dev::frag_load(fa[i], As + (wm * WTM + i * 16) * LDA + kk, LDA);
        }
CTNN_UNROLL
        for (int j = 0; j < FN; ++j) {
          if constexpr (Cfg::TF32_IN_SMEM)
            dev::frag_load_exact(fb[j], Bs + kk * LDB + wn * WTN + j * 16, LDB);
          else
            dev::frag_load(fb[j], Bs + kk * LDB + wn * WTN + j * 16, LDB);
        }
CTNN_UNROLL
        for (int i = 0; i < FM; ++i)
CTNN_UNROLL
          for (int j = 0; j < FN; ++j) dev::frag_mma(frag[i][j], fa[i], fb[j]);
      }
    } else {
      // Thread (tx, ty) owns rows ty + TY*i and columns tx + 16*j: a warp
      // reads two A addresses (broadcast) and 16 consecutive B words per
      // step, so neither operand conflicts on banks.
CTNN_UNROLL_4
      for (int kk = 0; kk < BK; ++kk) {
        float av[TM], bv[TN];
CTNN_UNROLL
        for (int i = 0; i < TM; ++i) av[i] = As[(ty + TY * i) * LDA + kk];
CTNN_UNROLL
        for (int j = 0; j < TN; ++j) bv[j] = Bs[kk * LDB + tx + 16 * j];
CTNN_UNROLL
        for (int i = 0; i < TM; ++i)
CTNN_UNROLL
          for (int j = 0; j < TN; ++j) acc[i][j] += av[i] * bv[j];
      }
    }
  };

  // --- the pipeline: keep STAGES-1 tiles in flight. Every thread commits a
  // (possibly empty) group per step so wait_group counts stay uniform.
CTNN_UNROLL
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < nkt) load_tile(s, kt_begin + s);
    dev::cp_async_commit();
  }
  for (int it = 0; it < nkt; ++it) {
    dev::cp_async_wait<STAGES - 2>();
    if constexpr (TF32 && Cfg::TF32_IN_SMEM) {
      // This thread's own copies of tile `it` are complete and visible to
      // it; it rounds exactly those, and the barrier below publishes them.
      float* As = smem + (it % STAGES) * Cfg::STAGE;
CTNN_UNROLL
      for (int j = 0; j < Cfg::A_CHUNKS; ++j) dev::round_tf32_4(As + (row0 + j * Cfg::ROWS_PER_PASS) * LDA + kq * 4);
    }
    if constexpr (BF16) {
      // Likewise for BF16: this thread converts its own copies of tile `it`
      // (A and B) into staging buffer it % 2. Whoever still computes tile
      // it - 1 reads the other buffer; the barrier below publishes this one.
      const float* As = smem + (it % STAGES) * Cfg::STAGE;
      const float* Bs = As + Cfg::A_STAGE;
      dev::Bf16* As16 = staging + (it % 2) * Cfg::STAGE16;
      dev::Bf16* Bs16 = As16 + Cfg::A16_STAGE;
CTNN_UNROLL
      for (int j = 0; j < Cfg::A_CHUNKS; ++j) {
        const int row = row0 + j * Cfg::ROWS_PER_PASS;
        dev::to_bf16_4(As16 + row * Cfg::LDA16 + kq * 4, As + row * LDA + kq * 4);
      }
CTNN_UNROLL
      for (int j = 0; j < Cfg::B_CHUNKS; ++j) {
        const int id = tid + j * NT;
        const int kr = id / (BN / 4), nq = id % (BN / 4);
        dev::to_bf16_4(Bs16 + kr * Cfg::LDB16 + nq * 4, Bs + kr * LDB + nq * 4);
      }
    }
    // Tile `it` has landed for everyone, and everyone has finished computing
    // on the stage the next prefetch overwrites (it was used at it - 1).
    dev::block_sync();
    const int pre = it + STAGES - 1;
    if (pre < nkt) load_tile(pre % STAGES, kt_begin + pre);
    dev::cp_async_commit();
    compute(it % STAGES, it);
  }
  dev::cp_async_wait<0>();
  dev::block_sync();

  // --- epilogue: stage the tile in shared memory, then write whole 16-byte
  // runs of NHWC rows (coalesced) with the fused bias/residual/activation.
  float* Cs = smem;
  if constexpr (TENSOR) {
CTNN_UNROLL
    for (int i = 0; i < FM; ++i)
CTNN_UNROLL
      for (int j = 0; j < FN; ++j)
        dev::frag_store(Cs + (wm * WTM + i * 16) * LDC + wn * WTN + j * 16, frag[i][j], LDC, lane);
  } else {
CTNN_UNROLL
    for (int i = 0; i < TM; ++i)
CTNN_UNROLL
      for (int j = 0; j < TN; ++j) Cs[(ty + TY * i) * LDC + tx + 16 * j] = acc[i][j];
  }
  dev::block_sync();
  constexpr int VEC_ROW = BN / 4;
CTNN_UNROLL
  for (int it = 0; it < BM * VEC_ROW / NT; ++it) {
    const int id = tid + it * NT;
    const int row = id / VEC_ROW, q = id % VEC_ROW;
    const int m = m0 + row, n = n0 + q * 4;
    if (m < a.m && n < a.cs_out) {
      const dev::float4v v = dev::load4(Cs + row * LDC + q * 4);
      if (a.partial)
        dev::store4(a.partial + (static_cast<long>(bz) * a.m + m) * a.cs_out + n, v);
      else
        conv_finish(a, v, m, n);
    }
  }
}

// Sums the split-K partials of four channels of one row and finishes them.
CTNN_DEVICE void splitk_finish_item(const ConvArgs& a, int splits, long id) {
  const int vec_row = a.cs_out / 4;
  const long m = id / vec_row;
  const int n = static_cast<int>(id % vec_row) * 4;
  dev::float4v s = dev::load4(a.partial + m * a.cs_out + n);
  for (int z = 1; z < splits; ++z) {
    const dev::float4v p = dev::load4(a.partial + (static_cast<long>(z) * a.m + m) * a.cs_out + n);
    s.x += p.x;
    s.y += p.y;
    s.z += p.z;
    s.w += p.w;
  }
  conv_finish(a, s, m, n);
}

}  // namespace ctnn::cuda

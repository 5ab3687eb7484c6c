// The CUDA backend's training kernels, as portable bodies (portable.cuh):
// nvcc runs them as kernels (training.cuh), the host simulator in
// tests/cuda_host runs the very same code on the CPU.
//
// Every body is one of two kinds. An item body, `operator()(long i)`, computes
// one output element and runs in a grid-stride loop. A block body,
// `block(smem, tid, bx, by, bz)`, is one thread of a block of `threads`
// threads sharing `smem_bytes` of shared memory.
//
// Values are NCHW with their true channel counts (the tape's layout), which
// keeps gradients of every op in the same layout as the reference backend's.
// Convolutions, their two gradients and Linear (a 1x1 convolution of 1x1
// images) are one tiled GEMM whose operands are gathered from the tensors by
// small "problem" structs; per-channel sums (BatchNorm, biases) are block
// reductions in double, in a fixed order: a step's results do not depend on
// scheduling.
#pragma once

#include "ctnn/backend/cuda/portable.cuh"

namespace ctnn::cuda::training {

// ---- the GEMM ---------------------------------------------------------------

// C (m x n) = A (m x k) B (k x n) in 64 x 64 tiles, 16 deep, 256 threads with
// 4 x 4 results each. A problem P supplies m, n, the k range of grid slice bz,
// the elements a(bz, i, k) and b(bz, k, j), and store(bz, i, j, value).
inline constexpr int gemm_tile = 64, gemm_depth = 16, gemm_threads = 256;
inline constexpr int gemm_stride = gemm_tile + 4;  // shared-memory row, padded
inline constexpr int gemm_smem_bytes = 2 * gemm_depth * gemm_stride * static_cast<int>(sizeof(float));

// Stages step k0's 16 x 64 slices of A and B k-major into shared memory
// (rows of `ld` elements), zero outside the problem: FP32 as they are, or
// rounded to BF16 (cvt.rn) for the tensor cores.
CTNN_DEVICE void put(float& to, float v) { to = v; }
CTNN_DEVICE void put(dev::Bf16& to, float v) { to = dev::to_bf16(v); }
template <class P, class T>
CTNN_DEVICE void stage_operands(const P& p, T* as, T* bs, int ld, long i0, long j0, long k0, long ke, int bz, int tid) {
  CTNN_UNROLL
  for (int e = 0; e < 4; ++e) {
    const int at = tid + e * gemm_threads;
    const int kk = at / gemm_tile, ii = at % gemm_tile;
    const long k = k0 + kk;
    put(as[kk * ld + ii], i0 + ii < p.m && k < ke ? p.a(bz, i0 + ii, k) : 0.0f);
    put(bs[kk * ld + ii], j0 + ii < p.n && k < ke ? p.b(bz, k, j0 + ii) : 0.0f);
  }
}

template <class P>
CTNN_DEVICE void gemm_block(const P& p, void* smem, int tid, int bx, int by, int bz) {
  float* as = static_cast<float*>(smem);
  float* bs = as + gemm_depth * gemm_stride;
  const long j0 = static_cast<long>(bx) * gemm_tile, i0 = static_cast<long>(by) * gemm_tile;
  long kb = 0, ke = 0;
  p.k_range(bz, kb, ke);
  const int tx = tid % 16, ty = tid / 16;
  float acc[4][4] = {};
  for (long k0 = kb; k0 < ke; k0 += gemm_depth) {
    stage_operands(p, as, bs, gemm_stride, i0, j0, k0, ke, bz, tid);
    dev::block_sync();
    CTNN_UNROLL
    for (int kk = 0; kk < gemm_depth; ++kk) {
      float av[4], bv[4];
      CTNN_UNROLL
      for (int r = 0; r < 4; ++r) av[r] = as[kk * gemm_stride + ty + 16 * r];
      CTNN_UNROLL
      for (int c = 0; c < 4; ++c) bv[c] = bs[kk * gemm_stride + tx + 16 * c];
      CTNN_UNROLL
      for (int r = 0; r < 4; ++r)
        CTNN_UNROLL
        for (int c = 0; c < 4; ++c) acc[r][c] += av[r] * bv[c];
    }
    dev::block_sync();
  }
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) {
      const long i = i0 + ty + 16 * r, j = j0 + tx + 16 * c;
      if (i < p.m && j < p.n) p.store(bz, i, j, acc[r][c]);
    }
}

// One convolution's geometry (square kernel, equal padding on every side).
struct ConvShape {
  int n = 0, cin = 0, h = 0, w = 0, cout = 0, oh = 0, ow = 0;
  int k = 1, stride = 1, pad = 0, groups = 1;
  CTNN_HOST_DEVICE int cin_g() const { return cin / groups; }
  CTNN_HOST_DEVICE int cout_g() const { return cout / groups; }
  CTNN_HOST_DEVICE long taps() const { return static_cast<long>(cin_g()) * k * k; }  // one filter's length
  CTNN_HOST_DEVICE long in_area() const { return static_cast<long>(h) * w; }
  CTNN_HOST_DEVICE long out_area() const { return static_cast<long>(oh) * ow; }
  // Input element (image, channel, y, x) of tap t of output pixel (oy, ox), or 0 in the padding.
  CTNN_DEVICE float gather(const float* x, long img, int c0, long t, long oy, long ox) const {
    const int kk = k * k;
    const long ci = t / kk, r = t % kk;
    const long iy = oy * stride - pad + r / k, ix = ox * stride - pad + r % k;
    if (iy < 0 || iy >= h || ix < 0 || ix >= w) return 0.0f;
    return x[((img * cin + c0 + ci) * h + iy) * w + ix];
  }
};

// y = conv(x, W) + bias: per group, C[out channel][image, pixel] over taps.
struct ConvForward {
  ConvShape s;
  const float* x = nullptr;
  const float* weight = nullptr;  // [cout][cin/groups][k][k]
  const float* bias = nullptr;    // or null
  float* y = nullptr;
  long m = 0, n = 0;  // cout/groups, images x output pixels
  CTNN_DEVICE void k_range(int, long& b, long& e) const { b = 0, e = s.taps(); }
  CTNN_DEVICE float a(int g, long i, long t) const { return weight[(g * s.cout_g() + i) * s.taps() + t]; }
  CTNN_DEVICE float b(int g, long t, long j) const {
    const long img = j / s.out_area(), p = j % s.out_area();
    return s.gather(x, img, g * s.cin_g(), t, p / s.ow, p % s.ow);
  }
  CTNN_DEVICE void store(int g, long i, long j, float v) const {
    const long img = j / s.out_area(), p = j % s.out_area(), oc = g * s.cout_g() + i;
    y[(img * s.cout + oc) * s.out_area() + p] = bias ? v + bias[oc] : v;
  }
};

// dx (+)= conv_transpose(dy, W): per group, C[input channel][image, pixel]
// over (out channel, ky, kx); any stride (a tap that falls between output
// pixels contributes nothing).
struct ConvBackwardData {
  ConvShape s;
  const float* dy = nullptr;
  const float* weight = nullptr;
  float* dx = nullptr;
  bool accumulate = false;
  long m = 0, n = 0;  // cin/groups, images x input pixels
  CTNN_DEVICE void k_range(int, long& b, long& e) const { b = 0, e = static_cast<long>(s.cout_g()) * s.k * s.k; }
  CTNN_DEVICE float a(int g, long i, long t) const {
    const int kk = s.k * s.k;
    const long oc = g * s.cout_g() + t / kk;
    return weight[(oc * s.cin_g() + i) * kk + t % kk];
  }
  CTNN_DEVICE float b(int g, long t, long j) const {
    const int kk = s.k * s.k;
    const long img = j / s.in_area(), p = j % s.in_area();
    const long oc = g * s.cout_g() + t / kk, r = t % kk;
    const long ty = p / s.w + s.pad - r / s.k, tx = p % s.w + s.pad - r % s.k;
    if (ty < 0 || tx < 0 || ty % s.stride != 0 || tx % s.stride != 0) return 0.0f;
    const long oy = ty / s.stride, ox = tx / s.stride;
    if (oy >= s.oh || ox >= s.ow) return 0.0f;
    return dy[((img * s.cout + oc) * s.oh + oy) * s.ow + ox];
  }
  CTNN_DEVICE void store(int g, long i, long j, float v) const {
    const long img = j / s.in_area(), p = j % s.in_area();
    float& d = dx[(img * s.cin + g * s.cin_g() + i) * s.in_area() + p];
    d = accumulate ? d + v : v;
  }
};

// Partial weight gradients: per (group, slice of images x pixels),
// C[out channel][tap] = sum of dy x over the slice, into
// partial[slice][cout][taps]; WeightGradientSum adds the slices in order.
struct ConvBackwardWeights {
  ConvShape s;
  const float* x = nullptr;
  const float* dy = nullptr;
  float* partial = nullptr;
  int slices = 1;
  long slice = 0;     // reduction length of one slice (a multiple of gemm_depth)
  long m = 0, n = 0;  // cout/groups, taps
  CTNN_DEVICE void k_range(int z, long& b, long& e) const {
    const long total = static_cast<long>(s.n) * s.out_area();
    b = (z % slices) * slice;
    e = b + slice < total ? b + slice : total;
  }
  CTNN_DEVICE float a(int z, long i, long q) const {
    const long img = q / s.out_area(), p = q % s.out_area();
    return dy[(img * s.cout + (z / slices) * s.cout_g() + i) * s.out_area() + p];
  }
  CTNN_DEVICE float b(int z, long q, long t) const {
    const long img = q / s.out_area(), p = q % s.out_area();
    return s.gather(x, img, (z / slices) * s.cin_g(), t, p / s.ow, p % s.ow);
  }
  CTNN_DEVICE void store(int z, long i, long t, float v) const {
    const long oc = (z / slices) * s.cout_g() + i;
    partial[(static_cast<long>(z % slices) * s.cout + oc) * s.taps() + t] = v;
  }
};

// The same tiles on BF16 tensor cores (mixed precision): every gathered
// operand is rounded to BF16 (cvt.rn) as it is staged, the 8 warps each
// multiply one 16-row strip of A with two 16-column strips of B per 16-deep
// step (one m16n16k16 MMA each), and accumulate in FP32. The result tile
// goes through shared memory to the same per-thread store as the FP32 body,
// so a problem's store() (bias, accumulation, slices) is shared.
inline constexpr int gemm_ld16 = gemm_tile + 8;  // BF16 rows: WMMA pointers 32-byte aligned, ldm a multiple of 8
inline constexpr int gemm_bf16_smem_bytes = gemm_tile * gemm_stride * static_cast<int>(sizeof(float));
static_assert(2 * gemm_depth * gemm_ld16 * 2 <= gemm_bf16_smem_bytes, "the staged operands fit the result tile's space");
static_assert(gemm_depth == 16 && gemm_threads == 8 * 32, "one 16-deep MMA per step, 8 warps over 4 x 4 fragments");

template <class P>
CTNN_DEVICE void gemm_block_bf16(const P& p, void* smem, int tid, int bx, int by, int bz) {
  dev::Bf16* as = static_cast<dev::Bf16*>(smem);  // A(i, k) at k * gemm_ld16 + i
  dev::Bf16* bs = as + gemm_depth * gemm_ld16;      // B(k, j) at k * gemm_ld16 + j
  float* cs = static_cast<float*>(smem);           // after the K walk: C(i, j) at i * gemm_stride + j
  const long j0 = static_cast<long>(bx) * gemm_tile, i0 = static_cast<long>(by) * gemm_tile;
  long kb = 0, ke = 0;
  p.k_range(bz, kb, ke);
  const int warp = tid / 32, lane = tid % 32;
  const int fi = warp / 2, fj = (warp % 2) * 2;  // this warp's fragments: row strip fi, column strips fj, fj + 1
  dev::FragC16 acc[2];
  dev::frag_zero(acc[0]);
  dev::frag_zero(acc[1]);
  for (long k0 = kb; k0 < ke; k0 += gemm_depth) {
    stage_operands(p, as, bs, gemm_ld16, i0, j0, k0, ke, bz, tid);
    dev::block_sync();
    dev::FragA16c fa;
    dev::frag_load(fa, as + fi * 16, gemm_ld16);
    CTNN_UNROLL
    for (int c = 0; c < 2; ++c) {
      dev::FragB16 fb;
      dev::frag_load(fb, bs + (fj + c) * 16, gemm_ld16);
      dev::frag_mma(acc[c], fa, fb);
    }
    dev::block_sync();
  }
  CTNN_UNROLL
  for (int c = 0; c < 2; ++c) dev::frag_store(cs + fi * 16 * gemm_stride + (fj + c) * 16, acc[c], gemm_stride, lane);
  dev::block_sync();
  const int tx = tid % 16, ty = tid / 16;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) {
      const long i = i0 + ty + 16 * r, j = j0 + tx + 16 * c;
      if (i < p.m && j < p.n) p.store(bz, i, j, cs[(ty + 16 * r) * gemm_stride + tx + 16 * c]);
    }
}

// One GEMM problem as a block body, in FP32 (CUDA cores) or BF16 (tensor cores).
template <class P, Precision Prec = Precision::fp32>
struct Gemm {
  static constexpr bool bf16 = Prec == Precision::bf16;
  static constexpr int threads = gemm_threads, smem_bytes = bf16 ? gemm_bf16_smem_bytes : gemm_smem_bytes;
  P p;
  CTNN_DEVICE void block(void* smem, int tid, int bx, int by, int bz) const {
    if constexpr (bf16)
      gemm_block_bf16(p, smem, tid, bx, by, bz);
    else
      gemm_block(p, smem, tid, bx, by, bz);
  }
};

// grad[i] += sum over slices, slice 0 first.
struct WeightGradientSum {
  const float* partial = nullptr;
  float* grad = nullptr;
  long count = 0;
  int slices = 1;
  CTNN_DEVICE void operator()(long i) const {
    float s = 0.0f;
    for (int z = 0; z < slices; ++z) s += partial[z * count + i];
    grad[i] += s;
  }
};

// ---- per-channel sums (BatchNorm statistics and gradients, biases) ------------

enum class ChannelSum {
  values,           // sum x                                  -> out[c]
  centred_squares,  // sum (x - mean)^2                       -> out[c]
  batch_norm_grads, // sum dy -> out[c], sum dy xhat -> out[C + c]; gamma, beta gradients +=
  bias_grads,       // sum dy                                 -> bias gradient +=
};

// One block per channel. Each thread sums a fixed strided subset in double,
// then a tree in shared memory: the same order on every run.
struct ChannelSums {
  static constexpr int threads = 256, smem_bytes = 2 * threads * static_cast<int>(sizeof(double));
  ChannelSum what = ChannelSum::values;
  const float* x = nullptr;
  const float* dy = nullptr;
  const double* mean = nullptr;
  const double* inv_std = nullptr;
  double* out = nullptr;
  float* grad_weight = nullptr;  // gamma's gradient (batch_norm_grads)
  float* grad_bias = nullptr;    // beta's or the bias's gradient
  int n = 0, c = 0;
  long area = 0;

  CTNN_DEVICE void block(void* smem, int tid, int ch, int, int) const {
    double* red = static_cast<double*>(smem);
    double s0 = 0, s1 = 0;
    const long count = n * area;
    for (long q = tid; q < count; q += threads) {
      const long at = ((q / area) * c + ch) * area + q % area;
      switch (what) {
        case ChannelSum::values: s0 += x[at]; break;
        case ChannelSum::centred_squares: {
          const double d = x[at] - mean[ch];
          s0 += d * d;
          break;
        }
        case ChannelSum::batch_norm_grads: {
          const double g = dy[at];
          s0 += g;
          s1 += g * ((x[at] - mean[ch]) * inv_std[ch]);
          break;
        }
        case ChannelSum::bias_grads: s0 += dy[at]; break;
      }
    }
    red[tid] = s0;
    red[threads + tid] = s1;
    dev::block_sync();
    for (int half = threads / 2; half > 0; half /= 2) {
      if (tid < half) {
        red[tid] += red[tid + half];
        red[threads + tid] += red[threads + tid + half];
      }
      dev::block_sync();
    }
    if (tid != 0) return;
    switch (what) {
      case ChannelSum::values:
      case ChannelSum::centred_squares: out[ch] = red[0]; break;
      case ChannelSum::batch_norm_grads:
        out[ch] = red[0];
        out[c + ch] = red[threads];
        grad_weight[ch] += static_cast<float>(red[threads]);
        grad_bias[ch] += static_cast<float>(red[0]);
        break;
      case ChannelSum::bias_grads: grad_bias[ch] += static_cast<float>(red[0]); break;
    }
  }
};

// ---- BatchNorm ------------------------------------------------------------------
// saved (4 x C doubles): [0, C) means, [C, 2C) 1/std, [2C, 4C) sums.

// Per channel, after the sums: batch statistics (or the running ones in eval
// mode), the running statistics moved by `factor`, 1/std. `stage` 0 turns the
// sum into the mean; stage 1 finishes.
struct BatchNormStatistics {
  double* saved = nullptr;
  float* running_mean = nullptr;
  float* running_var = nullptr;
  int c = 0, stage = 0;
  bool batch = true;
  double count = 1, factor = 0.1, eps = 1e-5;
  CTNN_DEVICE void operator()(long ch) const {
    double* mean = saved;
    double* inv_std = saved + c;
    const double* squares = saved + 2 * c;
    if (!batch) {
      mean[ch] = running_mean[ch];
      inv_std[ch] = 1.0 / sqrt(static_cast<double>(running_var[ch]) + eps);
      return;
    }
    if (stage == 0) {
      mean[ch] /= count;
      return;
    }
    const double var = squares[ch] / count;
    const double unbiased = count > 1 ? squares[ch] / (count - 1) : var;
    running_mean[ch] = static_cast<float>((1 - factor) * running_mean[ch] + factor * mean[ch]);
    running_var[ch] = static_cast<float>((1 - factor) * running_var[ch] + factor * unbiased);
    inv_std[ch] = 1.0 / sqrt(var + eps);
  }
};

struct BatchNormApply {  // y = (x - mean) / std * gamma + beta; y may be x
  const float* x = nullptr;
  float* y = nullptr;
  const double* saved = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  int c = 0;
  long area = 0;
  CTNN_DEVICE void operator()(long i) const {
    const long ch = (i / area) % c;
    y[i] = static_cast<float>((x[i] - saved[ch]) * saved[c + ch] * gamma[ch] + beta[ch]);
  }
};

struct BatchNormBackwardData {
  const float* x = nullptr;
  const float* dy = nullptr;
  float* dx = nullptr;
  const double* saved = nullptr;  // means, 1/std, sum dy, sum dy xhat
  const float* gamma = nullptr;
  int c = 0;
  long area = 0;
  double count = 1;
  bool batch = true, accumulate = false;
  CTNN_DEVICE void operator()(long i) const {
    const long ch = (i / area) % c;
    const double inv_std = saved[c + ch], g = dy[i];
    double d;
    if (batch) {
      const double xhat = (x[i] - saved[ch]) * inv_std;
      d = gamma[ch] * inv_std * (g - saved[2 * c + ch] / count - xhat * saved[3 * c + ch] / count);
    } else {
      d = gamma[ch] * inv_std * g;
    }
    dx[i] = static_cast<float>(accumulate ? dx[i] + d : d);
  }
};

// ---- element-wise ---------------------------------------------------------------

enum class Pointwise {
  relu, relu_gradient, sigmoid, sigmoid_gradient, add, copy, multiply,
};

// out[i] (+)= f(a[i], b[i]); `accumulate` only for the gradients.
struct PointwiseItem {
  Pointwise f = Pointwise::copy;
  const float* a = nullptr;
  const float* b = nullptr;
  float* out = nullptr;
  bool accumulate = false;
  CTNN_DEVICE void operator()(long i) const {
    double v = 0;
    switch (f) {
      case Pointwise::relu: v = a[i] > 0.0f ? a[i] : 0.0f; break;
      case Pointwise::relu_gradient: v = a[i] > 0.0f ? b[i] : 0.0f; break;           // a: y, b: dy
      case Pointwise::sigmoid: v = 1.0 / (1.0 + exp(-static_cast<double>(a[i]))); break;
      case Pointwise::sigmoid_gradient: v = static_cast<double>(b[i]) * a[i] * (1.0 - a[i]); break;  // a: y, b: dy
      case Pointwise::add: out[i] = a[i] + b[i]; return;
      case Pointwise::copy: v = a[i]; break;
      case Pointwise::multiply: out[i] = accumulate ? out[i] + a[i] * b[i] : a[i] * b[i]; return;
    }
    out[i] = static_cast<float>(accumulate ? out[i] + v : v);
  }
};

// Softmax over channels at one (image, pixel) per item; backward from the output.
struct SoftmaxItem {
  const float* x = nullptr;  // forward: input; backward: the output y
  const float* dy = nullptr;  // null: forward
  float* out = nullptr;
  int c = 0;
  long area = 0;
  bool accumulate = false;
  CTNN_DEVICE void operator()(long q) const {
    const long img = q / area, p = q % area;
    const long base = img * c * area + p;
    if (!dy) {
      double m = -INFINITY, sum = 0;
      for (int k = 0; k < c; ++k) m = x[base + k * area] > m ? x[base + k * area] : m;
      for (int k = 0; k < c; ++k) sum += exp(x[base + k * area] - m);
      for (int k = 0; k < c; ++k) out[base + k * area] = static_cast<float>(exp(x[base + k * area] - m) / sum);
      return;
    }
    double dot = 0;
    for (int k = 0; k < c; ++k) dot += static_cast<double>(dy[base + k * area]) * x[base + k * area];
    for (int k = 0; k < c; ++k) {
      const long at = base + k * area;
      const double v = x[at] * (dy[at] - dot);
      out[at] = static_cast<float>(accumulate ? out[at] + v : v);
    }
  }
};

// ---- pooling and shortcuts ------------------------------------------------------

struct PoolShape {
  int h = 0, w = 0, oh = 0, ow = 0, k = 1, stride = 1, pad = 0;
};

// One output element; `argmax` gets the index of the maximum in its input
// plane (the first one met in row-major order; padding never wins).
struct MaxPoolForward {
  PoolShape s;
  const float* x = nullptr;
  float* y = nullptr;
  std::uint32_t* argmax = nullptr;
  CTNN_DEVICE void operator()(long i) const {
    const long plane = i / (static_cast<long>(s.oh) * s.ow), p = i % (static_cast<long>(s.oh) * s.ow);
    const long oy = p / s.ow, ox = p % s.ow;
    const float* in = x + plane * s.h * s.w;
    float m = -INFINITY;
    std::uint32_t at = 0;
    for (int ky = 0; ky < s.k; ++ky)
      for (int kx = 0; kx < s.k; ++kx) {
        const long yy = oy * s.stride + ky - s.pad, xx = ox * s.stride + kx - s.pad;
        if (yy < 0 || yy >= s.h || xx < 0 || xx >= s.w) continue;
        const auto flat = static_cast<std::uint32_t>(yy * s.w + xx);
        if (in[flat] > m) m = in[flat], at = flat;
      }
    y[i] = m;
    argmax[i] = at;
  }
};

// One input element gathers the gradients of the windows whose maximum it
// was, in output order (no atomics: overlapping windows stay deterministic).
struct MaxPoolBackward {
  PoolShape s;
  const float* dy = nullptr;
  const std::uint32_t* argmax = nullptr;
  float* dx = nullptr;
  bool accumulate = false;
  CTNN_DEVICE void operator()(long i) const {
    const long area = static_cast<long>(s.h) * s.w, out_area = static_cast<long>(s.oh) * s.ow;
    const long plane = i / area, p = i % area;
    const long iy = p / s.w, ix = p % s.w;
    // windows oy with oy * stride - pad <= iy <= oy * stride - pad + k - 1
    const long y_hi = (iy + s.pad) / s.stride, x_hi = (ix + s.pad) / s.stride;
    const long y_lo = iy + s.pad - s.k + 1 > 0 ? (iy + s.pad - s.k + 1 + s.stride - 1) / s.stride : 0;
    const long x_lo = ix + s.pad - s.k + 1 > 0 ? (ix + s.pad - s.k + 1 + s.stride - 1) / s.stride : 0;
    float v = accumulate ? dx[i] : 0.0f;
    for (long oy = y_lo; oy <= y_hi && oy < s.oh; ++oy)
      for (long ox = x_lo; ox <= x_hi && ox < s.ow; ++ox) {
        const long o = plane * out_area + oy * s.ow + ox;
        if (argmax[o] == static_cast<std::uint32_t>(p)) v += dy[o];
      }
    dx[i] = v;
  }
};

struct GlobalAvgPoolForward {  // one (image, channel) per item
  const float* x = nullptr;
  float* y = nullptr;
  long area = 0;
  CTNN_DEVICE void operator()(long nc) const {
    double sum = 0;
    for (long j = 0; j < area; ++j) sum += x[nc * area + j];
    y[nc] = static_cast<float>(sum / static_cast<double>(area));
  }
};

struct GlobalAvgPoolBackward {
  const float* dy = nullptr;
  float* dx = nullptr;
  long area = 0;
  bool accumulate = false;
  CTNN_DEVICE void operator()(long i) const {
    const double v = static_cast<double>(dy[i / area]) / static_cast<double>(area);
    dx[i] = static_cast<float>(accumulate ? dx[i] + v : v);
  }
};

// CIFAR option A: y = x subsampled by `stride`, `offset` zero channels on either side.
struct PadShortcut {
  const float* from = nullptr;
  float* to = nullptr;
  int cin = 0, cout = 0, offset = 0, stride = 1;
  int h = 0, w = 0, oh = 0, ow = 0;  // input and output planes
  bool backward = false, accumulate = false;
  CTNN_DEVICE void operator()(long i) const {
    if (!backward) {  // i over y
      const long p = i % (static_cast<long>(oh) * ow), img_c = i / (static_cast<long>(oh) * ow);
      const long c = img_c % cout - offset, img = img_c / cout;
      to[i] = c < 0 || c >= cin ? 0.0f
                                : from[((img * cin + c) * h + (p / ow) * stride) * w + (p % ow) * stride];
      return;
    }
    // i over dx: a subsampled position receives dy, the others nothing
    const long p = i % (static_cast<long>(h) * w), img_c = i / (static_cast<long>(h) * w);
    const long c = img_c % cin, img = img_c / cin;
    const long yy = p / w, xx = p % w;
    float v = 0.0f;
    if (yy % stride == 0 && xx % stride == 0 && yy / stride < oh && xx / stride < ow)
      v = from[((img * cout + c + offset) * oh + yy / stride) * ow + xx / stride];
    to[i] = accumulate ? to[i] + v : v;
  }
};

// ---- the optimiser ----------------------------------------------------------------

// The optimiser's own rule (train/optim.hpp) on one parameter of a range.
template <class O>
struct OptimizerStep {
  O optimizer;
  float* params = nullptr;
  const float* grads = nullptr;
  float* state = nullptr;
  long offset = 0, state_size = 0;
  double lr = 0, weight_decay = 0, gradient_scale = 1;
  CTNN_DEVICE void operator()(long q) const {
    const long i = offset + q;
    const float g = gradient_scale == 1 ? grads[i] : static_cast<float>(grads[i] * gradient_scale);
    optimizer.update(params[i], g, state + state_size * i, lr, weight_decay);
  }
};

}  // namespace ctnn::cuda::training

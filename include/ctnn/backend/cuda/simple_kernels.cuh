// The memory-bound kernels around the convolutions, as per-item bodies (one
// call per output element or 16-byte vector) that kernels.cuh runs in
// grid-stride loops and the host simulator runs in plain loops. Activations
// are NHWC with `cs` stored channels (a multiple of 4), so consecutive
// threads touch consecutive 16-byte vectors.
#pragma once

#include "ctnn/backend/cuda/conv_kernel.cuh"
#include "ctnn/backend/cuda/portable.cuh"

namespace ctnn::cuda {

struct LayoutArgs {
  const float* in = nullptr;
  float* out = nullptr;
  int n = 0, c = 0, h = 0, w = 0, cs = 0;
};

// Host NCHW (true channels) -> NHWC (stored channels, pad channels zero).
CTNN_DEVICE void to_nhwc_item(const LayoutArgs& a, long i) {
  const int ch = static_cast<int>(i % a.cs);
  const long pix = i / a.cs;  // (img, y, x)
  const long hw = static_cast<long>(a.h) * a.w;
  const long img = pix / hw, yx = pix % hw;
  a.out[i] = ch < a.c ? a.in[(img * a.c + ch) * hw + yx] : 0.0f;
}

// NHWC (stored channels) -> NCHW (true channels), for results with a spatial extent.
CTNN_DEVICE void to_nchw_item(const LayoutArgs& a, long i) {
  const long hw = static_cast<long>(a.h) * a.w;
  const long yx = i % hw;
  const long img_ch = i / hw;
  const long ch = img_ch % a.c, img = img_ch / a.c;
  a.out[i] = a.in[(img * hw + yx) * a.cs + ch];
}

struct PoolArgs {
  const float* in = nullptr;
  float* out = nullptr;
  int n = 0, h = 0, w = 0, cs = 0;
  int oh = 0, ow = 0;
  int kernel = 1, stride = 1, padding = 0;
};

// Max pooling; padding never wins (PyTorch treats it as -infinity).
CTNN_DEVICE void max_pool_item(const PoolArgs& a, long i) {
  const int vec = a.cs / 4;
  const int q = static_cast<int>(i % vec);
  long pix = i / vec;
  const int ox = static_cast<int>(pix % a.ow);
  pix /= a.ow;
  const int oy = static_cast<int>(pix % a.oh);
  const long img = pix / a.oh;
  const int y0 = oy * a.stride - a.padding, x0 = ox * a.stride - a.padding;
  dev::float4v m{-INFINITY, -INFINITY, -INFINITY, -INFINITY};
  for (int ky = 0; ky < a.kernel; ++ky) {
    const int y = y0 + ky;
    if (y < 0 || y >= a.h) continue;
    for (int kx = 0; kx < a.kernel; ++kx) {
      const int x = x0 + kx;
      if (x < 0 || x >= a.w) continue;
      const dev::float4v v = dev::load4(a.in + ((img * a.h + y) * a.w + x) * a.cs + q * 4);
      m.x = v.x > m.x ? v.x : m.x;
      m.y = v.y > m.y ? v.y : m.y;
      m.z = v.z > m.z ? v.z : m.z;
      m.w = v.w > m.w ? v.w : m.w;
    }
  }
  dev::store4(a.out + i * 4, m);
}

// Global average pool of four channels of one image.
CTNN_DEVICE void avg_pool_item(const PoolArgs& a, long i) {
  const int vec = a.cs / 4;
  const int q = static_cast<int>(i % vec);
  const long img = i / vec;
  const long hw = static_cast<long>(a.h) * a.w;
  const float* p = a.in + img * hw * a.cs + q * 4;
  dev::float4v s{0.0f, 0.0f, 0.0f, 0.0f};
  for (long k = 0; k < hw; ++k) {
    const dev::float4v v = dev::load4(p + k * a.cs);
    s.x += v.x;
    s.y += v.y;
    s.z += v.z;
    s.w += v.w;
  }
  const float inv = 1.0f / static_cast<float>(hw);
  dev::store4(a.out + i * 4, {s.x * inv, s.y * inv, s.z * inv, s.w * inv});
}

struct EltwiseArgs {
  const float* in = nullptr;
  float* out = nullptr;                         // may equal in
  const float* residual = nullptr;              // same layout, or null
  const float* scale = nullptr;                 // per stored channel, or null (then shift unused)
  const float* shift = nullptr;
  int cs = 0;
  int act = 0;
};

// y = act(x * scale[c] + shift[c] + residual) on one 16-byte vector.
CTNN_DEVICE void eltwise_item(const EltwiseArgs& a, long i) {
  const long at = i * 4;
  const int ch = static_cast<int>(at % a.cs);
  dev::float4v v = dev::load4(a.in + at);
  if (a.scale) {
    const dev::float4v s = dev::load4(a.scale + ch), t = dev::load4(a.shift + ch);
    v = {v.x * s.x + t.x, v.y * s.y + t.y, v.z * s.z + t.z, v.w * s.w + t.w};
  }
  if (a.residual) {
    const dev::float4v r = dev::load4(a.residual + at);
    v = {v.x + r.x, v.y + r.y, v.z + r.z, v.w + r.w};
  }
  dev::store4(a.out + at, apply_act(v, a.act));
}

struct SoftmaxArgs {
  float* data = nullptr;  // N x cs, in place over the first c channels
  int c = 0, cs = 0;
};

inline constexpr int softmax_threads = 128;

// Softmax of one image's channels by one block: max, then sum of exp, then
// scale; `red` is softmax_threads floats of shared memory.
CTNN_DEVICE void softmax_block(const SoftmaxArgs& a, float* red, int tid, int img) {
  float* x = a.data + static_cast<long>(img) * a.cs;
  float m = -INFINITY;
  for (int k = tid; k < a.c; k += softmax_threads) m = x[k] > m ? x[k] : m;
  red[tid] = m;
  dev::block_sync();
  for (int half = softmax_threads / 2; half > 0; half /= 2) {
    if (tid < half && red[tid + half] > red[tid]) red[tid] = red[tid + half];
    dev::block_sync();
  }
  const float mx = red[0];
  dev::block_sync();
  float s = 0.0f;
  for (int k = tid; k < a.c; k += softmax_threads) s += dev::exp_full(x[k] - mx);
  red[tid] = s;
  dev::block_sync();
  for (int half = softmax_threads / 2; half > 0; half /= 2) {
    if (tid < half) red[tid] += red[tid + half];
    dev::block_sync();
  }
  const float inv = 1.0f / red[0];
  for (int k = tid; k < a.c; k += softmax_threads) x[k] = dev::exp_full(x[k] - mx) * inv;
}

}  // namespace ctnn::cuda

// The arithmetic precisions of the CUDA backend and the host models of the
// device's conversions to them (cvt.rn.bf16.f32, cvt.rna.tf32.f32), which the
// plan (pre-rounded weights) and the kernel simulator use.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace ctnn::cuda {

// The arithmetic of the conv/linear GEMMs. Everything else (BatchNorm folded
// into the weights, bias, residual, activations, pooling, softmax) is FP32 in
// every precision; the tensor-core precisions round the GEMM operands and
// accumulate in FP32.
enum class Precision {
  fp32,  // FP32 FMA: agrees with the reference backend to <= 1e-4 relative
  tf32,  // TF32 tensor cores (10 mantissa bits), FP32 accumulation
  bf16,  // BF16 tensor cores (7 mantissa bits), FP32 accumulation
};

inline constexpr const char* precision_name(Precision p) {
  return p == Precision::fp32 ? "fp32" : p == Precision::tf32 ? "tf32" : "bf16";
}

// BF16 rounding exactly as cvt.rn.bf16.f32 (__float2bfloat16_rn): round to
// nearest, ties to even, on the upper 16 bits of the FP32 pattern; NaN stays
// a (quiet) NaN, overflow rounds to infinity. Returns the bits.
inline std::uint16_t bf16_bits(float x) {
  const auto u = std::bit_cast<std::uint32_t>(x);
  if (std::isnan(x)) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  return static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
inline float bf16_value(std::uint16_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }
inline float round_to_bf16(float x) { return bf16_value(bf16_bits(x)); }

// TF32 rounding exactly as the tensor-core path's cvt.rna.tf32.f32: round
// to nearest on the magnitude, ties away from zero, 10 mantissa bits kept.
// Rounding is idempotent, so pre-rounded data gives the same products
// whether or not a kernel converts it again.
inline float round_to_tf32(float x) {
  if (!std::isfinite(x)) return x;
  auto u = std::bit_cast<std::uint32_t>(x);
  u = (u + 0x1000u) & ~0x1FFFu;
  return std::bit_cast<float>(u);
}

}  // namespace ctnn::cuda

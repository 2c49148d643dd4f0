#pragma once
// bfloat16 on the host: the upper 16 bits of an IEEE float. Narrowing rounds
// to nearest even (NaN stays a quiet NaN), as torch's .to(torch.bfloat16) and
// the GPU's conversion kernel (gpu/convert.cu) do, so every backend holds the
// same bits for the same fp32 weights.
#include <bit>
#include <cstdint>

namespace lwb {

inline std::uint16_t float_to_bf16_bits(float f) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

inline float bf16_bits_to_float(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

// f rounded to the nearest bf16 and widened back (what a bf16 copy holds).
inline float round_to_bf16(float f) { return bf16_bits_to_float(float_to_bf16_bits(f)); }

}  // namespace lwb

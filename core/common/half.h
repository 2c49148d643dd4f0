#pragma once
// Half-precision floats on the host, as raw bits. Narrowing rounds to nearest,
// ties to even, and a NaN stays a (quiet) NaN with its sign — as torch's
// .to(torch.bfloat16 / float16) and the GPU's conversion kernel (gpu/convert.cu)
// do, so every backend and every file holds the same bits for the same floats.
#include <bit>
#include <cstdint>

namespace lwb {

inline float bf16_to_f32(std::uint16_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16); }

inline std::uint16_t f32_to_bf16(float value) {
  const auto x = std::bit_cast<std::uint32_t>(value);
  // Truncating a NaN whose payload sits in the low bits would give infinity;
  // setting the quiet bit keeps it a NaN.
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);
  // Adding 0x7FFF plus the lowest kept bit rounds to nearest, ties to even;
  // the carry may ripple into the exponent, which is exactly right (up to inf).
  const std::uint32_t rounded = x + 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

inline float f16_to_f32(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exp = (bits >> 10) & 0x1Fu;
  const std::uint32_t mant = bits & 0x3FFu;
  if (exp == 0) {  // zero or subnormal: mant × 2^-24, exact in float
    const float magnitude = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7F800000u | (mant << 13));  // inf / NaN
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

inline std::uint16_t f32_to_f16(float value) {
  const auto x = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t abs = x & 0x7FFFFFFFu;
  if (abs > 0x7F800000u)  // NaN: keep the top payload bits, force quiet so it stays NaN
    return static_cast<std::uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  if (abs >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to inf
  const std::uint32_t exp = abs >> 23;
  std::uint32_t half = 0;     // the result's exponent and mantissa, before rounding
  std::uint32_t rest = 0;     // the bits dropped
  std::uint32_t halfway = 0;  // `rest` at exactly half a unit
  if (exp <= 112) {
    // Below 2^-14: a subnormal half, units of 2^-24. The float is m × 2^(exp-150)
    // with the implicit bit, so the half mantissa is m >> (126 - exp).
    if (exp < 102) return sign;  // under half of the smallest subnormal
    const std::uint32_t m = (abs & 0x7FFFFFu) | 0x800000u;
    const std::uint32_t shift = 126 - exp;
    half = m >> shift;
    rest = m & ((1u << shift) - 1);
    halfway = 1u << (shift - 1);
  } else {
    half = ((exp - 112) << 10) | ((abs >> 13) & 0x3FFu);
    rest = abs & 0x1FFFu;
    halfway = 0x1000u;
  }
  // A carry out of the mantissa bumps the exponent, which is the right result.
  if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
  return static_cast<std::uint16_t>(sign | half);
}

// f rounded to the nearest bf16 and widened back (what a bf16 copy holds).
inline float round_to_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

}  // namespace lwb

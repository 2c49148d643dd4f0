#pragma once
// exp for the CPU kernels' hot loops. glibc's expf is a scalar call the
// compiler cannot vectorise; this one (Cephes' expf: Cody-Waite reduction by
// ln 2 and a degree-6 polynomial, relative error < 2e-7 over the clamped
// range) inlines into SIMD loops. The double overload stays exact, so the
// finite-difference checks in double are unaffected. The files whose loops
// call it are compiled with -fno-trapping-math (core/cpu/CMakeLists.txt):
// with FP traps honoured GCC keeps the clamp below as branches and
// vectorises none of those loops.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace lwb::cpu {

inline float fast_exp(float x) {
  // exp(-87) ~ 1.6e-38 stands in for zero; exp(88) ~ 1.7e38 for overflow.
  x = std::min(std::max(x, -87.0f), 88.0f);
  // Adding 1.5 * 2^23 rounds x / ln 2 to an integer held in t's low mantissa
  // bits (std::floor would keep GCC from vectorising the loop).
  const float t = x * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  const float r = x - n * 0.693359375f - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::int32_t k = std::bit_cast<std::int32_t>(t) - 0x4B400000;  // bits of 12582912.0f
  return p * std::bit_cast<float>((k + 127) << 23);
}

inline double fast_exp(double x) { return std::exp(x); }

}  // namespace lwb::cpu

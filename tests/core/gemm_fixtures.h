#pragma once
// Shared by the CPU kernel tests (small_gemm, short_gemm, narrow_gemm): the
// SIMD paths this CPU runs, random fp32 operands, and outputs checked against
// a float64 reference.
#include <QString>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "core/cpu/small_gemm.h"

namespace lwb::test {

// Every path this CPU runs: the baseline always, then AVX2 and AVX-512 where
// present.
inline std::vector<cpu::Simd> simd_paths() {
  std::vector<cpu::Simd> p;
  for (cpu::Simd s : {cpu::Simd::Baseline, cpu::Simd::Avx2, cpu::Simd::Avx512})
    if (cpu::simd_supported(s)) p.push_back(s);
  return p;
}

// n draws of N(0, 1).
inline std::vector<float> random_normals(std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// What the padding between rows of an output holds: a kernel must leave it.
constexpr float kRowPad = -7.0f;

// C [rows, cols] with ldc: random where beta reads it, NaN where it must not,
// kRowPad past each row's end.
inline std::vector<float> output(std::int64_t rows, std::int64_t cols, std::int64_t ldc, float beta, std::mt19937& rng) {
  std::vector<float> C = random_normals(static_cast<std::size_t>(rows * ldc), rng);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < ldc; ++j)
      if (j >= cols) C[i * ldc + j] = kRowPad;
      else if (beta == 0.0f) C[i * ldc + j] = std::numeric_limits<float>::quiet_NaN();
  return C;
}

// Compares C [rows, cols] against alpha·sum_k term(i, j, k) + beta·C0: the
// first mismatch, or an empty string.
inline QString mismatch(const QString& what, const std::vector<float>& C, const std::vector<float>& C0,
                        std::int64_t rows, std::int64_t cols, std::int64_t ldc, std::int64_t K, float alpha, float beta,
                        const std::function<double(std::int64_t, std::int64_t, std::int64_t)>& term) {
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < ldc; ++j) {
      const float got = C[i * ldc + j];
      if (j >= cols) {
        if (got != kRowPad) return QString("%1: padding C[%2,%3] overwritten").arg(what).arg(i).arg(j);
        continue;
      }
      double ref = 0, mag = 0;
      for (std::int64_t k = 0; k < K; ++k) {
        const double t = double(alpha) * term(i, j, k);
        ref += t;
        mag += std::fabs(t);
      }
      if (beta != 0.0f) {
        ref += double(beta) * C0[i * ldc + j];
        mag += std::fabs(double(beta) * C0[i * ldc + j]);
      }
      // K + 2 roundings (alpha's, each product-sum's, beta·c's), each within eps of the magnitude.
      const double tol = (K + 2) * 0x1p-24 * mag + 1e-30;
      if (!(std::fabs(got - ref) <= tol))
        return QString("%1: C[%2,%3] = %4, reference %5 (tolerance %6)")
            .arg(what).arg(i).arg(j).arg(got, 0, 'g', 9).arg(ref, 0, 'g', 12).arg(tol);
    }
  return {};
}

}  // namespace lwb::test

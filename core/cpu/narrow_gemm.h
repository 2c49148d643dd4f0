#pragma once
// Products whose output is as narrow as a LoRA rank, over a long inner
// dimension: the adapter's u = x·A^T and du = s·dy·B (C[rows, r], K = in or
// out) and its gradients dB = s·dy^T·u and dA = du^T·x (K = rows). OpenBLAS
// runs these at under half its rate for square products: it packs the long
// operand for a kernel tile that the narrow side leaves mostly empty. Here a
// tile of output rows stays in registers over the whole inner dimension, and
// each vector of the narrow operand read serves every row of the tile.
//
// The narrow side N is a multiple of 8 up to kNarrowMax. Each element is
// alpha times a sum over k in order, in fp32 with fused multiply-adds where
// the ISA has them, so the result does not depend on the thread count. The
// loops are compiled for AVX-512, AVX2+FMA and the baseline ISA, as
// short_gemm's are.
#include <cstdint>

#include "core/cpu/small_gemm.h"

namespace lwb::cpu {

constexpr std::int64_t kNarrowMax = 32;

// Whether N is a narrow side these kernels take.
inline bool narrow_side(std::int64_t N) { return N >= 8 && N <= kNarrowMax && N % 8 == 0; }

// C[M, N] = beta·C + alpha·A[M, K]·op(B) with op(B) = B^T for B [N, K] when
// tb, else B [K, N]. OpenMP over rows of C unless called inside a parallel
// region. std::invalid_argument for an N that is not narrow_side, a bad
// leading dimension, or a path this CPU does not run.
void narrow_rows_gemm(bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
                      std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc,
                      Simd simd = best_simd());

// C[M, N] = beta·C + alpha·A^T·B with A [K, M] and B [K, N], N narrow; with
// transposed, C is stored as its transpose [N, M] (ldc), which is how
// dA[r, in] = du^T·x is computed from x (A) and du (B). OpenMP over rows of
// C. Errors as narrow_rows_gemm's.
void narrow_cols_gemm(std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A, std::int64_t lda,
                      const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc, bool transposed,
                      Simd simd = best_simd());

}  // namespace lwb::cpu

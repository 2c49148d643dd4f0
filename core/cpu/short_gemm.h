#pragma once
// Products whose inner dimension is a LoRA rank: C[M, N] = beta·C +
// alpha·A[M, K]·op(B) with K at most kShortInnerMax, such as the adapter's
// s·u·B^T into a layer's output [rows, out] and du·A into its input gradient
// [rows, in]. They are bound by the bytes of C they move, and OpenBLAS moves
// C more than once: a pass of its own scales C by beta (for beta = 0 it
// writes zeros over it), then the kernel reads C back, adds and writes it.
// Here each row of C is computed in registers and written once, and C is
// read only when beta is not 0. That lets a LoRA layer write its adapter's
// product into y first and have the base GEMM add to it with beta = 1, which
// skips BLAS's zeroing pass too (core/adapters/lora.cpp).
//
// Each element is alpha·A[i, k] times op(B)[k, j] summed over k in order, in
// fp32 with fused multiply-adds where the ISA has them: the result does not
// depend on the thread count. The loops are compiled for AVX-512, AVX2+FMA
// and the baseline ISA, as small_gemm's are.
#include <cstdint>

#include "core/cpu/small_gemm.h"

namespace lwb::cpu {

constexpr std::int64_t kShortInnerMax = 32;

// op(A) = A [M, K] (lda); op(B) = B^T with B [N, K] (ldb) when tb, else B
// [K, N] (ldb). std::invalid_argument for K outside 1..kShortInnerMax, a bad
// leading dimension, or a path this CPU does not run. OpenMP over rows
// unless called inside a parallel region.
void short_inner_gemm(bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
                      std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc,
                      Simd simd = best_simd());

}  // namespace lwb::cpu

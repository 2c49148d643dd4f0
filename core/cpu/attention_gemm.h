#pragma once
// The products inside one block of causal attention (cpu/attention.cpp):
// C[M, N] = beta·C + alpha·op(A)·B, op(A) = A [M, K] or, with ta, A^T for
// A [K, M] (a block of P or of P^T alike), B [K, N] by rows. Every operand
// is small enough for the caches (at most a sequence of keys by a head), so
// only one panel of B at a time is copied out, A is read in place, and C is
// written once, not zeroed first: at head_dim 64 OpenBLAS's packing and
// zeroing took about a quarter of attention's time (perf). The causal mask
// lets whole tiles of the product go: the CausalSkip modes say which entries
// are known to be zero or unwanted, and the kernel skips them a tile at a
// time.
//
// Each entry is Σ_k in order, in fp32 with fused multiply-adds where the
// ISA has them, then times alpha: the result does not depend on the thread
// count. Compiled for AVX-512, AVX2+FMA and the baseline ISA, as
// short_gemm's loops are. std::invalid_argument for a path this CPU does
// not run.
#include <cstdint>

#include "core/cpu/small_gemm.h"

namespace lwb::cpu {

enum class CausalSkip {
  None,
  // Entries C[i, j] with j > offset + i are not wanted: they may be left
  // unwritten (the block's scores beyond the diagonal).
  Columns,
  // op(A)[i, k] is zero for k > offset + i: the sum stops there (P or dS times
  // the keys).
  InnerUpTo,
  // op(A)[i, k] is zero for k < i - offset: the sum starts there (P^T or dS^T
  // times the queries).
  InnerFrom,
};

void attention_block_gemm(bool ta, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
                          std::int64_t lda, const float* B, std::int64_t ldb, float beta,
                          float* C, std::int64_t ldc, CausalSkip skip = CausalSkip::None, std::int64_t offset = 0,
                          Simd simd = best_simd());

}  // namespace lwb::cpu

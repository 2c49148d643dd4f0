#include "core/cpu/attention_gemm.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

// Compiled with -ffp-contract=fast (core/cpu/CMakeLists.txt), so that the
// products' multiply-adds fuse where the ISA has FMA.

#if defined(__x86_64__) && defined(__GNUC__)
#define LWB_ATTENTION_GEMM_X86 1
#else
#define LWB_ATTENTION_GEMM_X86 0
#endif

namespace lwb::cpu {

#if LWB_ATTENTION_GEMM_X86
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
namespace attention_avx512 {
#define LWB_LANES 16
#include "core/cpu/attention_gemm_kernel.inc"
#undef LWB_LANES
}  // namespace attention_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace attention_avx2 {
#define LWB_LANES 8
#include "core/cpu/attention_gemm_kernel.inc"
#undef LWB_LANES
}  // namespace attention_avx2
#pragma GCC pop_options
#endif

namespace attention_baseline {
#define LWB_LANES 4
#include "core/cpu/attention_gemm_kernel.inc"
#undef LWB_LANES
}  // namespace attention_baseline

void attention_block_gemm(bool ta, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
                          std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C,
                          std::int64_t ldc, CausalSkip skip, std::int64_t offset, Simd simd) {
  if (!simd_supported(simd))
    throw std::invalid_argument(std::string("attention_block_gemm: this CPU does not run the ") + simd_name(simd) +
                                " path");
  // The kernel reads op(A) through two strides.
  const std::int64_t a_row = ta ? 1 : lda, a_col = ta ? lda : 1;
  switch (simd) {
#if LWB_ATTENTION_GEMM_X86
    case Simd::Avx512: return attention_avx512::rows(M, N, K, alpha, A, a_row, a_col, B, ldb, beta, C, ldc, skip, offset);
    case Simd::Avx2: return attention_avx2::rows(M, N, K, alpha, A, a_row, a_col, B, ldb, beta, C, ldc, skip, offset);
#else
    case Simd::Avx512:
    case Simd::Avx2: break;
#endif
    case Simd::Baseline: break;
  }
  attention_baseline::rows(M, N, K, alpha, A, a_row, a_col, B, ldb, beta, C, ldc, skip, offset);
}

}  // namespace lwb::cpu

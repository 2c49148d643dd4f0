#include "core/cpu/short_gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

// Compiled with -ffp-contract=fast (core/cpu/CMakeLists.txt), so that the
// products' multiply-adds fuse where the ISA has FMA.

#if defined(__x86_64__) && defined(__GNUC__)
#define LWB_SHORT_GEMM_X86 1
#else
#define LWB_SHORT_GEMM_X86 0
#endif

namespace lwb::cpu {

#if LWB_SHORT_GEMM_X86
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
namespace short_avx512 {
#define LWB_LANES 16
#include "core/cpu/short_gemm_kernel.inc"
#undef LWB_LANES
}  // namespace short_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace short_avx2 {
#define LWB_LANES 8
#include "core/cpu/short_gemm_kernel.inc"
#undef LWB_LANES
}  // namespace short_avx2
#pragma GCC pop_options
#endif

namespace short_baseline {
#define LWB_LANES 4
#include "core/cpu/short_gemm_kernel.inc"
#undef LWB_LANES
}  // namespace short_baseline

namespace {

using RowsFn = void (*)(std::int64_t, std::int64_t, const float*, std::int64_t, const float*, std::int64_t,
                        std::int64_t, std::int64_t, float, float, float*, std::int64_t);

RowsFn rows_fn(Simd simd) {
  switch (simd) {
#if LWB_SHORT_GEMM_X86
    case Simd::Avx512: return short_avx512::rows;
    case Simd::Avx2: return short_avx2::rows;
#else
    case Simd::Avx512:
    case Simd::Avx2: break;
#endif
    case Simd::Baseline: return short_baseline::rows;
  }
  return nullptr;
}

// Rows of C a task takes: enough that a task is worth scheduling, and a
// multiple of the kernel's four.
constexpr std::int64_t kRowsPerTask = 64;

}  // namespace

void short_inner_gemm(bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
                      std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc,
                      Simd simd) {
  if (K < 1 || K > kShortInnerMax)
    throw std::invalid_argument("short_inner_gemm: inner dimension " + std::to_string(K) + ", expected 1.." +
                                std::to_string(kShortInnerMax));
  if (M < 0 || N < 0 || lda < K || ldc < N || ldb < (tb ? K : N))
    throw std::invalid_argument("short_inner_gemm: bad shape (" + std::to_string(M) + " x " + std::to_string(N) +
                                " x " + std::to_string(K) + ", lda " + std::to_string(lda) + ", ldb " +
                                std::to_string(ldb) + ", ldc " + std::to_string(ldc) + ")");
  const RowsFn fn = simd_supported(simd) ? rows_fn(simd) : nullptr;
  if (!fn)
    throw std::invalid_argument(std::string("short_inner_gemm: this CPU does not run the ") + simd_name(simd) +
                                " path");
  if (M == 0 || N == 0) return;
  // The kernel reads op(B) by rows of N: B^T is written out once per call
  // (K x N floats, a LoRA factor's size). The buffer only ever grows, so the
  // training loop stops allocating after its first step.
  const float* Bk = B;
  std::int64_t ldbk = ldb;
  if (tb) {
    thread_local std::vector<float> transposed;
    if (transposed.size() < static_cast<std::size_t>(K * N)) transposed.resize(static_cast<std::size_t>(K * N));
    for (std::int64_t j = 0; j < N; ++j)
      for (std::int64_t k = 0; k < K; ++k) transposed[k * N + j] = B[j * ldb + k];
    Bk = transposed.data();
    ldbk = N;
  }
  const std::int64_t tasks = (M + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel for schedule(static) if (tasks > 1 && !omp_in_parallel())
  for (std::int64_t t = 0; t < tasks; ++t)
    fn(t * kRowsPerTask, std::min(M, (t + 1) * kRowsPerTask), A, lda, Bk, ldbk, K, N, alpha, beta, C, ldc);
}

}  // namespace lwb::cpu

#include "core/cpu/narrow_gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

// Compiled with -ffp-contract=fast (core/cpu/CMakeLists.txt), so that the
// products' multiply-adds fuse where the ISA has FMA.

#if defined(__x86_64__) && defined(__GNUC__)
#define LWB_NARROW_GEMM_X86 1
#else
#define LWB_NARROW_GEMM_X86 0
#endif

namespace lwb::cpu {

#if LWB_NARROW_GEMM_X86
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
namespace narrow_avx512 {
#define LWB_REGS 32
#include "core/cpu/narrow_gemm_kernel.inc"
#undef LWB_REGS
}  // namespace narrow_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace narrow_avx2 {
#define LWB_REGS 16
#include "core/cpu/narrow_gemm_kernel.inc"
#undef LWB_REGS
}  // namespace narrow_avx2
#pragma GCC pop_options
#endif

// SSE2: an eight-float vector takes two of the sixteen registers.
namespace narrow_baseline {
#define LWB_REGS 8
#include "core/cpu/narrow_gemm_kernel.inc"
#undef LWB_REGS
}  // namespace narrow_baseline

namespace {

using RowsFn = void (*)(std::int64_t, std::int64_t, const float*, std::int64_t, const float*, std::int64_t, int, float,
                        float, float*, std::int64_t);
using ColsFn = void (*)(std::int64_t, std::int64_t, const float*, std::int64_t, const float*, std::int64_t,
                        std::int64_t, int, float, float, float*, std::int64_t, bool, float*);

struct Kernels {
  RowsFn rows = nullptr;
  ColsFn cols = nullptr;
};

Kernels kernels(Simd simd, const char* who) {
  if (simd_supported(simd)) switch (simd) {
#if LWB_NARROW_GEMM_X86
      case Simd::Avx512: return {narrow_avx512::rows, narrow_avx512::cols};
      case Simd::Avx2: return {narrow_avx2::rows, narrow_avx2::cols};
#else
      case Simd::Avx512:
      case Simd::Avx2: break;
#endif
      case Simd::Baseline: return {narrow_baseline::rows, narrow_baseline::cols};
    }
  throw std::invalid_argument(std::string(who) + ": this CPU does not run the " + simd_name(simd) + " path");
}

void check_shape(const char* who, std::int64_t M, std::int64_t N, std::int64_t K, std::int64_t lda,
                 std::int64_t min_lda, std::int64_t ldb, std::int64_t min_ldb, std::int64_t ldc,
                 std::int64_t min_ldc) {
  if (!narrow_side(N))
    throw std::invalid_argument(std::string(who) + ": narrow side " + std::to_string(N) +
                                ", expected a multiple of 8 up to " + std::to_string(kNarrowMax));
  if (M < 0 || K < 0 || lda < min_lda || ldb < min_ldb || ldc < min_ldc)
    throw std::invalid_argument(std::string(who) + ": bad shape (" + std::to_string(M) + " x " + std::to_string(N) +
                                " x " + std::to_string(K) + ", lda " + std::to_string(lda) + ", ldb " +
                                std::to_string(ldb) + ", ldc " + std::to_string(ldc) + ")");
}

// Rows of C a task takes: a few of the kernels' tiles, enough to be worth
// scheduling.
constexpr std::int64_t kRowsPerTask = 48;

std::int64_t tasks_for(std::int64_t M) { return (M + kRowsPerTask - 1) / kRowsPerTask; }

}  // namespace

void narrow_rows_gemm(bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
                      std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc,
                      Simd simd) {
  check_shape("narrow_rows_gemm", M, N, K, lda, std::max<std::int64_t>(K, 1), ldb, tb ? K : N, ldc, N);
  const RowsFn fn = kernels(simd, "narrow_rows_gemm").rows;
  if (M == 0) return;
  // The kernel reads op(B) as dense rows of N: B^T, or B with a wider
  // leading dimension, is copied once per call (a LoRA factor's size). The
  // buffer only ever grows, so the training loop stops allocating after its
  // first step.
  const float* Bp = B;
  if (tb || ldb != N) {
    thread_local std::vector<float> packed;
    if (packed.size() < static_cast<std::size_t>(K * N)) packed.resize(static_cast<std::size_t>(K * N));
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t j = 0; j < N; ++j) packed[k * N + j] = tb ? B[j * ldb + k] : B[k * ldb + j];
    Bp = packed.data();
  }
  const int nv = static_cast<int>(N / 8);
  const std::int64_t tasks = tasks_for(M);
#pragma omp parallel for schedule(static) if (tasks > 1 && !omp_in_parallel())
  for (std::int64_t t = 0; t < tasks; ++t)
    fn(t * kRowsPerTask, std::min(M, (t + 1) * kRowsPerTask), A, lda, Bp, K, nv, alpha, beta, C, ldc);
}

void narrow_cols_gemm(std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A, std::int64_t lda,
                      const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc, bool transposed,
                      Simd simd) {
  check_shape("narrow_cols_gemm", M, N, K, lda, M, ldb, N, ldc, transposed ? M : N);
  const ColsFn fn = kernels(simd, "narrow_cols_gemm").cols;
  // The sums of C's rows, N floats each, are kept apart from C so that beta
  // applies once (grown once, as narrow_rows_gemm's copy of B). A task is a
  // range of C's rows for the whole inner dimension: as few tasks as threads,
  // so that each sweeps long pieces of A's rows.
  thread_local std::vector<float> sums_buffer;
  if (sums_buffer.size() < static_cast<std::size_t>(M * N)) sums_buffer.resize(static_cast<std::size_t>(M * N));
  float* const sums = sums_buffer.data();  // the caller's, not each worker's thread_local
  const int nv = static_cast<int>(N / 8);
  const std::int64_t tasks = omp_in_parallel() ? 1 : std::clamp<std::int64_t>(M / kRowsPerTask, 1, omp_get_max_threads());
#pragma omp parallel for schedule(static) if (tasks > 1)
  for (std::int64_t t = 0; t < tasks; ++t) {
    const std::int64_t m0 = M * t / tasks, m1 = M * (t + 1) / tasks;
    fn(m0, m1, A, lda, B, ldb, K, nv, alpha, beta, C, ldc, transposed, sums + m0 * N);
  }
}

}  // namespace lwb::cpu

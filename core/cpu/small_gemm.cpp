#include "core/cpu/small_gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/common/half.h"

// This file is compiled with -ffp-contract=fast (core/cpu/CMakeLists.txt):
// the dot products' multiply-adds fuse where the ISA has FMA. The
// dequantising multiply-adds fuse too, which changes none of their results
// (their products are exact, gguf_quants.cpp explains why).

#if defined(__x86_64__) && defined(__GNUC__)
#define LWB_SMALL_GEMM_X86 1
#include <immintrin.h>
#else
#define LWB_SMALL_GEMM_X86 0
#endif

namespace lwb::cpu {

// GCC 12 takes the placeholder operand of the widening intrinsics
// (_mm512_undefined_epi32) for an uninitialised read, once per instantiation.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#if LWB_SMALL_GEMM_X86
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
namespace avx512 {
#define LWB_LANES 16
#include "core/cpu/small_gemm_kernel.inc"
#undef LWB_LANES
}  // namespace avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
namespace avx2 {
#define LWB_LANES 8
#include "core/cpu/small_gemm_kernel.inc"
#undef LWB_LANES
}  // namespace avx2
#pragma GCC pop_options
#endif

namespace baseline {
#define LWB_LANES 4
#include "core/cpu/small_gemm_kernel.inc"
#undef LWB_LANES
}  // namespace baseline

namespace {

using ColumnsFn = void (*)(WeightLayout, const float*, std::int64_t, std::int64_t, const std::uint8_t*, std::size_t,
                           std::int64_t, std::int64_t, std::int64_t, float*, std::int64_t);

ColumnsFn columns_fn(Simd simd) {
  switch (simd) {
#if LWB_SMALL_GEMM_X86
    case Simd::Avx512: return avx512::columns;
    case Simd::Avx2: return avx2::columns;
#else
    case Simd::Avx512:
    case Simd::Avx2: break;
#endif
    case Simd::Baseline: return baseline::columns;
  }
  return nullptr;
}

std::int64_t block_elems(WeightLayout layout) { return layout == WeightLayout::F32 ? 1 : 32; }

}  // namespace

const char* simd_name(Simd simd) {
  switch (simd) {
    case Simd::Baseline: return "baseline";
    case Simd::Avx2: return "avx2";
    case Simd::Avx512: return "avx512";
  }
  return "?";
}

bool simd_supported(Simd simd) {
#if LWB_SMALL_GEMM_X86
  switch (simd) {
    case Simd::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && simd_supported(Simd::Avx2);
    case Simd::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case Simd::Baseline: return true;
  }
  return false;
#else
  return simd == Simd::Baseline;
#endif
}

Simd best_simd() {
  static const Simd best = simd_supported(Simd::Avx512) ? Simd::Avx512
                           : simd_supported(Simd::Avx2) ? Simd::Avx2
                                                        : Simd::Baseline;
  return best;
}

std::size_t weight_row_bytes(WeightLayout layout, std::int64_t cols) {
  if (cols < 0 || cols % block_elems(layout) != 0)
    throw std::invalid_argument("weight_row_bytes: " + std::to_string(cols) + " columns are not whole blocks of " +
                                std::to_string(block_elems(layout)));
  const auto n = static_cast<std::size_t>(cols);
  switch (layout) {
    case WeightLayout::F32: return 4 * n;
    case WeightLayout::Q4_0: return n / 32 * 18;
    case WeightLayout::Q4_1: return n / 32 * 20;
    case WeightLayout::Q8_0: return n / 32 * 34;
  }
  return 0;
}

void small_gemm(const float* x, std::int64_t ldx, std::int64_t M, const SmallGemmWeights& w, float* y,
                std::int64_t ldy, Simd simd) {
  if (M < 1 || M > kSmallGemmMaxRows)
    throw std::invalid_argument("small_gemm: " + std::to_string(M) + " rows, expected 1.." +
                                std::to_string(kSmallGemmMaxRows));
  if (w.rows < 1 || ldx < w.cols || ldy < w.rows || w.row_bytes < weight_row_bytes(w.layout, w.cols))
    throw std::invalid_argument("small_gemm: bad shape (" + std::to_string(w.rows) + " x " + std::to_string(w.cols) +
                                " weights of " + std::to_string(w.row_bytes) + " bytes a row, ldx " +
                                std::to_string(ldx) + ", ldy " + std::to_string(ldy) + ")");
  const ColumnsFn fn = simd_supported(simd) ? columns_fn(simd) : nullptr;
  if (!fn) throw std::invalid_argument(std::string("small_gemm: this CPU does not run the ") + simd_name(simd) + " path");
  // A few tasks per thread, so that uneven progress evens out, of at least
  // 16 columns, so that a task is worth scheduling.
  const std::int64_t N = w.rows, threads = omp_get_max_threads();
  const std::int64_t per_task = std::max<std::int64_t>(16, (N + 4 * threads - 1) / (4 * threads));
  const std::int64_t tasks = (N + per_task - 1) / per_task;
  const auto* bytes = static_cast<const std::uint8_t*>(w.data);
#pragma omp parallel for schedule(dynamic) if (tasks > 1)
  for (std::int64_t t = 0; t < tasks; ++t)
    fn(w.layout, x, ldx, M, bytes, w.row_bytes, w.cols, t * per_task, std::min(N, (t + 1) * per_task), y, ldy);
}

}  // namespace lwb::cpu

// GEMM through OpenBLAS (skinny products in blocks over OpenMP threads; fp32
// products over a LoRA rank through short_gemm.h, and those with a side as
// narrow as a rank through narrow_gemm.h) and the simple
// elementwise/reduction kernels.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "core/cpu/kernels.h"
#include "core/cpu/narrow_gemm.h"
#include "core/cpu/short_gemm.h"

namespace lwb::cpu {

namespace {

void blas_gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
               std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

void blas_gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, double alpha, const double* A,
               std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

// A skinny product (a LoRA factor's: one of M, N, K at most a few dozen) is
// memory-bound, and OpenBLAS's own threads split it into parts that wait on
// each other (spinning on sched_yield) for shared packed panels, so a thread
// the scheduler takes away stalls the other. Here C is cut into blocks of
// rows (or columns) along its long side; OpenMP threads take the blocks as
// they come, each a single-threaded OpenBLAS call (OpenBLAS runs one thread
// inside a parallel region). Every block repacks the operand it shares with
// the others, so this is only done where that operand is small.
constexpr std::int64_t kSharedOperandElems = 1 << 16;  // 256 KiB of fp32: stays in cache
constexpr std::int64_t kMinBlock = 128;                // rows or columns of C per block

// Blocks of C along rows (true) or columns (false), or 0 when the product is
// left to OpenBLAS whole.
std::int64_t skinny_blocks(std::int64_t M, std::int64_t N, std::int64_t K, bool& by_rows) {
  if (omp_in_parallel() || omp_get_max_threads() < 2) return 0;
  by_rows = M >= N;
  const std::int64_t shared = by_rows ? N * K : M * K;  // B for row blocks, A for column blocks
  const std::int64_t blocks = (by_rows ? M : N) / kMinBlock;
  if (shared > kSharedOperandElems || blocks < 2) return 0;
  return std::min<std::int64_t>(blocks, 4 * omp_get_max_threads());
}

template <class T>
void gemm_impl(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
               std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc) {
  bool by_rows = true;
  const std::int64_t blocks = skinny_blocks(M, N, K, by_rows);
  if (blocks == 0) return blas_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  const std::int64_t extent = by_rows ? M : N;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t i0 = extent * b / blocks, rows = extent * (b + 1) / blocks - i0;
    if (by_rows)  // rows i0.. of C are rows of op(A): A's rows, or A's columns when transposed
      blas_gemm(ta, tb, rows, N, K, alpha, A + (ta ? i0 : i0 * lda), lda, B, ldb, beta, C + i0 * ldc, ldc);
    else  // columns i0.. of C are columns of op(B): B's columns, or B's rows when transposed
      blas_gemm(ta, tb, M, rows, K, alpha, A, lda, B + (tb ? i0 * ldb : i0), ldb, beta, C + i0, ldc);
  }
}

}  // namespace

template <>
void gemm<float>(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                 const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta,
                 float* C, std::int64_t ldc) {
  if (!ta && K >= 1 && K <= kShortInnerMax)
    return short_inner_gemm(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (!ta && narrow_side(N)) return narrow_rows_gemm(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (ta && !tb && narrow_side(N)) return narrow_cols_gemm(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, false);
  // C = A^T·B with A's rows as narrow as a rank: C^T = B^T·A is the narrow product.
  if (ta && !tb && narrow_side(M)) return narrow_cols_gemm(N, M, K, alpha, B, ldb, A, lda, beta, C, ldc, true);
  gemm_impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <>
void gemm<double>(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
                  const double* A, std::int64_t lda, const double* B, std::int64_t ldb,
                  double beta, double* C, std::int64_t ldc) {
  gemm_impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <class T>
void add(T* out, const T* a, const T* b, std::int64_t n) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <class T>
void axpy(T* y, T alpha, const T* x, std::int64_t n) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

template <class T>
void scale(T* x, T alpha, std::int64_t n) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) x[i] *= alpha;
}

// Reductions are split into fixed-size chunks whose partial sums are added in
// chunk order, so the result does not depend on the number of threads.
namespace {
constexpr std::int64_t kReduceChunk = 1 << 14;

template <class T, class F>
double chunked_sum(const T* x, std::int64_t n, F term) {
  const std::int64_t chunks = (n + kReduceChunk - 1) / kReduceChunk;
  if (chunks <= 1) {
    double s = 0;
    for (std::int64_t i = 0; i < n; ++i) s += term(x[i]);
    return s;
  }
  thread_local std::vector<double> partial;  // reused: no allocation per step
  partial.resize(static_cast<std::size_t>(chunks));
  double* part = partial.data();  // the worker threads must write the caller's vector
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < chunks; ++c) {
    const std::int64_t end = std::min(n, (c + 1) * kReduceChunk);
    double s = 0;
    for (std::int64_t i = c * kReduceChunk; i < end; ++i) s += term(x[i]);
    part[c] = s;
  }
  double s = 0;
  for (double p : partial) s += p;
  return s;
}
}  // namespace

template <class T>
double sum(const T* x, std::int64_t n) {
  return chunked_sum(x, n, [](T v) { return static_cast<double>(v); });
}

template <class T>
double sum_squares(const T* x, std::int64_t n) {
  return chunked_sum(x, n, [](T v) { return static_cast<double>(v) * static_cast<double>(v); });
}

#define LWB_INSTANTIATE(T)                                  \
  template void add<T>(T*, const T*, const T*, std::int64_t); \
  template void axpy<T>(T*, T, const T*, std::int64_t);       \
  template void scale<T>(T*, T, std::int64_t);                \
  template double sum<T>(const T*, std::int64_t);             \
  template double sum_squares<T>(const T*, std::int64_t);
LWB_INSTANTIATE(float)
LWB_INSTANTIATE(double)
#undef LWB_INSTANTIATE

}  // namespace lwb::cpu

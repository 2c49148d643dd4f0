// GEMM through OpenBLAS and the simple elementwise/reduction kernels.
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "core/cpu/kernels.h"

namespace lwb::cpu {

template <>
void gemm<float>(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
                 const float* A, std::int64_t lda, const float* B, std::int64_t ldb, float beta,
                 float* C, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

template <>
void gemm<double>(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, double alpha,
                  const double* A, std::int64_t lda, const double* B, std::int64_t ldb,
                  double beta, double* C, std::int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
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

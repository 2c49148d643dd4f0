// Small kernels for the adapter variants: DoRA's row norms and column scales,
// AdaLoRA's E scaling and importance EMAs, ReLoRA's magnitude pruning.
#include <algorithm>
#include <cmath>
#include <omp.h>

#include "core/cpu/kernels.h"

namespace lwb::cpu {

template <class T>
void row_norms(T* norms, const T* X, std::int64_t rows, std::int64_t cols) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < rows; ++i) {
    const T* xi = X + i * cols;
    T ss = 0;
#pragma omp simd reduction(+ : ss)
    for (std::int64_t j = 0; j < cols; ++j) ss += xi[j] * xi[j];
    norms[i] = std::sqrt(ss);
  }
}

template <class T>
void scale_columns(T* out, const T* x, const T* s, std::int64_t rows, std::int64_t cols) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < rows; ++i) {
#pragma omp simd
    for (std::int64_t j = 0; j < cols; ++j) out[i * cols + j] = x[i * cols + j] * s[j];
  }
}

template <class T>
void scale_rows(T* out, const T* x, const T* s, std::int64_t rows, std::int64_t cols) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < rows; ++i) {
    const T si = s[i];
#pragma omp simd
    for (std::int64_t j = 0; j < cols; ++j) out[i * cols + j] = x[i * cols + j] * si;
  }
}

// Each column block is summed over the rows in order, so the sums do not
// depend on the thread count or the block width. A block's part of a row is a
// contiguous run of up to kMaxBlock columns: with 64-column blocks every row
// was a short strided read, and that sum plus a separate scale pass took 1.8x
// as long on small's DoRA shapes (2 threads, buffers out of cache).
template <class T>
void column_dot_scale(T* dot, T* scaled, const T* a, const T* b, const T* s, std::int64_t rows,
                      std::int64_t cols, T alpha) {
  constexpr std::int64_t kMaxBlock = 512;
  // A multiple of the thread count of blocks, so that no thread takes one more;
  // widths a multiple of 8 (whole vectors), at least 64.
  const std::int64_t threads = omp_get_max_threads();
  const std::int64_t per_thread = (cols + threads * kMaxBlock - 1) / (threads * kMaxBlock);
  const std::int64_t even_width = (cols + threads * per_thread - 1) / (threads * per_thread);
  const std::int64_t block = std::max<std::int64_t>(64, (even_width + 7) / 8 * 8);
  const std::int64_t blocks = (cols + block - 1) / block;
#pragma omp parallel for schedule(static)
  for (std::int64_t blk = 0; blk < blocks; ++blk) {
    const std::int64_t c0 = blk * block, w = std::min(cols, c0 + block) - c0;
    T acc[kMaxBlock] = {};
    for (std::int64_t i = 0; i < rows; ++i) {
      const T* ai = a + i * cols + c0;
      const T* bi = b + i * cols + c0;
      T* si = scaled + i * cols + c0;
      // si may be ai or bi: each element is read before it is written.
#pragma omp simd
      for (std::int64_t j = 0; j < w; ++j) {
        const T aij = ai[j], bij = bi[j];
        acc[j] += aij * bij;
        si[j] = aij * s[c0 + j];
      }
    }
    for (std::int64_t j = 0; j < w; ++j) dot[c0 + j] += alpha * acc[j];
  }
}

template <class T>
void multiply(T* out, const T* a, const T* b, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

template <class T>
void divide(T* out, const T* a, const T* b, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] / b[i];
}

template <class T>
void adalora_importance(T* ipt, T* unc, const T* p, const T* g, std::int64_t n, T beta1, T beta2,
                        T grad_scale) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T I = std::abs(p[i] * g[i] * grad_scale);
    const T avg = beta1 * ipt[i] + (T(1) - beta1) * I;
    ipt[i] = avg;
    unc[i] = beta2 * unc[i] + (T(1) - beta2) * std::abs(I - avg);
  }
}

template <class T>
void zero_below(T* x, std::int64_t n, T threshold) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i)
    if (std::abs(x[i]) <= threshold) x[i] = T(0);
}

#define LWB_INSTANTIATE(T)                                                                      \
  template void row_norms<T>(T*, const T*, std::int64_t, std::int64_t);                         \
  template void scale_columns<T>(T*, const T*, const T*, std::int64_t, std::int64_t);           \
  template void scale_rows<T>(T*, const T*, const T*, std::int64_t, std::int64_t);              \
  template void column_dot_scale<T>(T*, T*, const T*, const T*, const T*, std::int64_t, std::int64_t, T); \
  template void multiply<T>(T*, const T*, const T*, std::int64_t);                              \
  template void divide<T>(T*, const T*, const T*, std::int64_t);                                \
  template void adalora_importance<T>(T*, T*, const T*, const T*, std::int64_t, T, T, T);       \
  template void zero_below<T>(T*, std::int64_t, T);
LWB_INSTANTIATE(float)
LWB_INSTANTIATE(double)
#undef LWB_INSTANTIATE

}  // namespace lwb::cpu

// Token embedding (and its inverse, scattering rows into a K/V cache) and RMSNorm.
// RMSNorm's row sums are SIMD reductions: a serial fp32 sum is one long chain
// of dependent adds the compiler may not reorder; the lanes' order changes
// the result only at fp32 rounding.
#include <algorithm>
#include <cmath>

#include "core/cpu/kernels.h"

namespace lwb::cpu {

template <class T>
void embedding_forward(T* out, const std::int32_t* tokens, const T* table, std::int64_t n,
                       std::int64_t C) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T* src = table + static_cast<std::int64_t>(tokens[i]) * C;
    T* dst = out + i * C;
    for (std::int64_t c = 0; c < C; ++c) dst[c] = src[c];
  }
}

// Parallel over column blocks: rows that share a token add into the same table
// row, so splitting rows across threads would race; columns never do.
template <class T>
void embedding_backward(T* dtable, const std::int32_t* tokens, const T* dout, std::int64_t n,
                        std::int64_t C) {
  constexpr std::int64_t kBlock = 64;
  const std::int64_t blocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t c0 = b * kBlock, c1 = std::min(C, c0 + kBlock);
    for (std::int64_t i = 0; i < n; ++i) {
      T* dst = dtable + static_cast<std::int64_t>(tokens[i]) * C;
      const T* src = dout + i * C;
      for (std::int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  }
}

template <class T>
void scatter_rows(T* dst, const std::int32_t* rows, const T* src, std::int64_t n, std::int64_t C) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T* s = src + i * C;
    T* d = dst + static_cast<std::int64_t>(rows[i]) * C;
    for (std::int64_t c = 0; c < C; ++c) d[c] = s[c];
  }
}

template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, std::int64_t n, std::int64_t C,
                     double eps) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T* xi = x + i * C;
    T ss = 0;
#pragma omp simd reduction(+ : ss)
    for (std::int64_t c = 0; c < C; ++c) ss += xi[c] * xi[c];
    const T r = T(1) / std::sqrt(ss / T(C) + T(eps));
    rstd[i] = r;
    T* oi = out + i * C;
    for (std::int64_t c = 0; c < C; ++c) oi[c] = xi[c] * r * w[c];
  }
}

// y_c = x_c r w_c with r = (mean(x^2) + eps)^(-1/2):
// dx_c = r (w_c g_c) - x_c r^3 / C * sum_j(w_j g_j x_j),  dw_c = sum_i g_ic x_ic r_i.
template <class T>
void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd,
                      std::int64_t n, std::int64_t C) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T* xi = x + i * C;
    const T* gi = dout + i * C;
    const T r = rstd[i];
    T dot = 0;
#pragma omp simd reduction(+ : dot)
    for (std::int64_t c = 0; c < C; ++c) dot += w[c] * gi[c] * xi[c];
    const T k = dot * r * r * r / T(C);
    T* dxi = dx + i * C;
    for (std::int64_t c = 0; c < C; ++c) dxi[c] += r * w[c] * gi[c] - k * xi[c];
  }
  if (!dw) return;
  constexpr std::int64_t kBlock = 64;
  const std::int64_t blocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (std::int64_t b = 0; b < blocks; ++b) {
    const std::int64_t c0 = b * kBlock, c1 = std::min(C, c0 + kBlock);
    T acc[kBlock] = {};
    for (std::int64_t i = 0; i < n; ++i) {
      const T r = rstd[i];
      const T* xi = x + i * C;
      const T* gi = dout + i * C;
      for (std::int64_t c = c0; c < c1; ++c) acc[c - c0] += gi[c] * xi[c] * r;
    }
    for (std::int64_t c = c0; c < c1; ++c) dw[c] += acc[c - c0];
  }
}

#define LWB_INSTANTIATE(T)                                                                     \
  template void embedding_forward<T>(T*, const std::int32_t*, const T*, std::int64_t,          \
                                     std::int64_t);                                            \
  template void embedding_backward<T>(T*, const std::int32_t*, const T*, std::int64_t,         \
                                      std::int64_t);                                           \
  template void scatter_rows<T>(T*, const std::int32_t*, const T*, std::int64_t, std::int64_t); \
  template void rmsnorm_forward<T>(T*, T*, const T*, const T*, std::int64_t, std::int64_t,     \
                                   double);                                                    \
  template void rmsnorm_backward<T>(T*, T*, const T*, const T*, const T*, const T*,            \
                                    std::int64_t, std::int64_t);
LWB_INSTANTIATE(float)
LWB_INSTANTIATE(double)
#undef LWB_INSTANTIATE

}  // namespace lwb::cpu

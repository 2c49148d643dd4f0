// SiLU-gated MLP activation: h = silu(g) * u with silu(g) = g * sigmoid(g).
// Memory-bound: each pass is one vectorised sweep, threads over fixed chunks.
#include <algorithm>

#include "core/cpu/fast_exp.h"
#include "core/cpu/kernels.h"

namespace lwb::cpu {

namespace {
constexpr std::int64_t kChunk = 4096;

template <class T>
void swiglu_forward_chunk(T* __restrict h, const T* __restrict gate, const T* __restrict up,
                          std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) {
    const T g = gate[i];
    h[i] = g / (T(1) + fast_exp(-g)) * up[i];
  }
}

// d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g))).
template <class T>
void swiglu_backward_chunk(T* __restrict dgate, T* __restrict dup, const T* __restrict dh,
                           const T* __restrict gate, const T* __restrict up, std::int64_t n) {
#pragma omp simd
  for (std::int64_t i = 0; i < n; ++i) {
    const T g = gate[i];
    const T sig = T(1) / (T(1) + fast_exp(-g));
    dup[i] = dh[i] * g * sig;
    dgate[i] = dh[i] * up[i] * sig * (T(1) + g * (T(1) - sig));
  }
}
}  // namespace

template <class T>
void swiglu_forward(T* h, const T* gate, const T* up, std::int64_t n) {
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < n; c += kChunk)
    swiglu_forward_chunk(h + c, gate + c, up + c, std::min(kChunk, n - c));
}

template <class T>
void swiglu_backward(T* dgate, T* dup, const T* dh, const T* gate, const T* up, std::int64_t n) {
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < n; c += kChunk)
    swiglu_backward_chunk(dgate + c, dup + c, dh + c, gate + c, up + c, std::min(kChunk, n - c));
}

template void swiglu_forward<float>(float*, const float*, const float*, std::int64_t);
template void swiglu_forward<double>(double*, const double*, const double*, std::int64_t);
template void swiglu_backward<float>(float*, float*, const float*, const float*, const float*,
                                     std::int64_t);
template void swiglu_backward<double>(double*, double*, const double*, const double*,
                                      const double*, std::int64_t);

}  // namespace lwb::cpu

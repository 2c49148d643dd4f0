// SiLU-gated MLP activation: h = silu(g) * u with silu(g) = g * sigmoid(g).
#include <cmath>

#include "core/cpu/kernels.h"

namespace lwb::cpu {

template <class T>
void swiglu_forward(T* h, const T* gate, const T* up, std::int64_t n) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T g = gate[i];
    h[i] = g / (T(1) + std::exp(-g)) * up[i];
  }
}

// d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g))).
template <class T>
void swiglu_backward(T* dgate, T* dup, const T* dh, const T* gate, const T* up, std::int64_t n) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T g = gate[i];
    const T sig = T(1) / (T(1) + std::exp(-g));
    const T silu = g * sig;
    dup[i] = dh[i] * silu;
    dgate[i] = dh[i] * up[i] * sig * (T(1) + g * (T(1) - sig));
  }
}

template void swiglu_forward<float>(float*, const float*, const float*, std::int64_t);
template void swiglu_forward<double>(double*, const double*, const double*, std::int64_t);
template void swiglu_backward<float>(float*, float*, const float*, const float*, const float*,
                                     std::int64_t);
template void swiglu_backward<double>(double*, double*, const double*, const double*,
                                      const double*, std::int64_t);

}  // namespace lwb::cpu

// Inverted dropout with a counter-based mask (core/tensor/rng.h): the backward
// regenerates the mask instead of storing it, and the GPU draws the same one.
#include "core/cpu/kernels.h"
#include "core/tensor/rng.h"

namespace lwb::cpu {

template <class T>
void dropout_forward(T* out, const T* x, double p, std::uint64_t seed, std::int64_t n) {
  const T keep_scale = T(1.0 / (1.0 - p));
  const float pf = static_cast<float>(p);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i)
    out[i] = counter_uniform(seed, static_cast<std::uint64_t>(i)) >= pf ? x[i] * keep_scale : T(0);
}

template <class T>
void dropout_backward(T* dx, const T* dout, double p, std::uint64_t seed, std::int64_t n) {
  const T keep_scale = T(1.0 / (1.0 - p));
  const float pf = static_cast<float>(p);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i)
    if (counter_uniform(seed, static_cast<std::uint64_t>(i)) >= pf) dx[i] += dout[i] * keep_scale;
}

template void dropout_forward<float>(float*, const float*, double, std::uint64_t, std::int64_t);
template void dropout_forward<double>(double*, const double*, double, std::uint64_t, std::int64_t);
template void dropout_backward<float>(float*, const float*, double, std::uint64_t, std::int64_t);
template void dropout_backward<double>(double*, const double*, double, std::uint64_t,
                                       std::int64_t);

}  // namespace lwb::cpu

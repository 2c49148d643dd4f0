// AdamW over a flat range of parameters, as torch.optim.AdamW computes it.
#include <cmath>

#include "core/cpu/kernels.h"

namespace lwb::cpu {

template <class T>
void adamw(T* params, const T* grads, T* m, T* v, std::int64_t n, const Backend::AdamWStep& s) {
  const T b1 = T(s.beta1), b2 = T(s.beta2);
  const T bc1 = T(1.0 - std::pow(s.beta1, static_cast<double>(s.step)));
  const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(s.beta2, static_cast<double>(s.step))));
  const T lr = T(s.lr), eps = T(s.eps), decay = T(1.0 - s.lr * s.weight_decay);
  const T gs = T(s.grad_scale);
  const T step_size = lr / bc1;
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T g = grads[i] * gs;
    const T mi = b1 * m[i] + (T(1) - b1) * g;
    const T vi = b2 * v[i] + (T(1) - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] = params[i] * decay - step_size * mi / (std::sqrt(vi) / bc2_sqrt + eps);
  }
}

template void adamw<float>(float*, const float*, float*, float*, std::int64_t,
                           const Backend::AdamWStep&);
template void adamw<double>(double*, const double*, double*, double*, std::int64_t,
                            const Backend::AdamWStep&);

}  // namespace lwb::cpu

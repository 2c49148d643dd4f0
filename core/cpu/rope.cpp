// Rotary position embedding, HF LLaMA "rotate_half" layout: within a head,
// dimension j (j < d/2) pairs with j + d/2 and both turn by angle pos * f_j.
#include "core/cpu/kernels.h"

namespace lwb::cpu {

// The backward of a rotation is the rotation by the opposite angle, so one
// kernel serves both directions.
template <class T>
void rope(T* x, const T* table, std::int64_t n, std::int64_t T_, int heads, int head_dim,
          bool inverse) {
  const int half = head_dim / 2;
  const T sign = inverse ? T(-1) : T(1);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T* cs = table + (i % T_) * head_dim;  // cos[0..half), sin[half..d)
    for (int h = 0; h < heads; ++h) {
      T* xh = x + (i * heads + h) * head_dim;
      for (int j = 0; j < half; ++j) {
        const T c = cs[j], s = sign * cs[half + j];
        const T a = xh[j], b = xh[j + half];
        xh[j] = a * c - b * s;
        xh[j + half] = b * c + a * s;
      }
    }
  }
}

template void rope<float>(float*, const float*, std::int64_t, std::int64_t, int, int, bool);
template void rope<double>(double*, const double*, std::int64_t, std::int64_t, int, int, bool);

}  // namespace lwb::cpu

// Softmax cross-entropy over the vocabulary, forward and backward in one pass
// (llm.c's fused classifier), and greedy argmax.
#include <algorithm>
#include <cmath>

#include "core/cpu/fast_exp.h"
#include "core/cpu/kernels.h"

namespace lwb::cpu {

template <class T>
void cross_entropy(T* losses, T* dlogits, const T* logits, const std::int32_t* targets,
                   std::int64_t n, std::int64_t V, double scale) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T* li = logits + i * V;
    const std::int32_t t = targets[i];
    if (t < 0) {
      losses[i] = 0;
      if (dlogits)
        for (std::int64_t j = 0; j < V; ++j) dlogits[i * V + j] = 0;
      continue;
    }
    T mx = li[0];
#pragma omp simd reduction(max : mx)
    for (std::int64_t j = 1; j < V; ++j) mx = std::max(mx, li[j]);
    T z = 0;
#pragma omp simd reduction(+ : z)
    for (std::int64_t j = 0; j < V; ++j) z += fast_exp(li[j] - mx);
    const T log_z = mx + std::log(z);
    losses[i] = log_z - li[t];
    if (!dlogits) continue;
    // Reads li[j] before writing dlogits[i*V+j]: safe when they alias.
    T* di = dlogits + i * V;
#pragma omp simd
    for (std::int64_t j = 0; j < V; ++j) di[j] = fast_exp(li[j] - log_z) * T(scale);
    di[t] -= T(scale);
  }
}

template <class T>
void argmax_rows(std::int32_t* ids, const T* logits, std::int64_t n, std::int64_t V) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T* li = logits + i * V;
    std::int64_t best = 0;
    for (std::int64_t j = 1; j < V; ++j)
      if (li[j] > li[best]) best = j;
    ids[i] = static_cast<std::int32_t>(best);
  }
}

template void cross_entropy<float>(float*, float*, const float*, const std::int32_t*,
                                   std::int64_t, std::int64_t, double);
template void cross_entropy<double>(double*, double*, const double*, const std::int32_t*,
                                    std::int64_t, std::int64_t, double);
template void argmax_rows<float>(std::int32_t*, const float*, std::int64_t, std::int64_t);
template void argmax_rows<double>(std::int32_t*, const double*, std::int64_t, std::int64_t);

}  // namespace lwb::cpu

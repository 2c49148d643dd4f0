// Inverted dropout with the counter-based mask of core/tensor/rng.h: element
// i is kept when counter_uniform(seed, i) >= p, on every backend alike.
#include "core/tensor/rng.h"
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

__global__ void dropout_forward_kernel(float* out, const float* x, float p, float keep_scale,
                                       std::uint64_t seed, i64 n) {
  for (i64 i = global_index(); i < n; i += global_stride())
    out[i] = counter_uniform(seed, static_cast<std::uint64_t>(i)) >= p ? x[i] * keep_scale : 0.0f;
}

__global__ void dropout_backward_kernel(float* dx, const float* dout, float p, float keep_scale,
                                        std::uint64_t seed, i64 n) {
  for (i64 i = global_index(); i < n; i += global_stride())
    if (counter_uniform(seed, static_cast<std::uint64_t>(i)) >= p) dx[i] += dout[i] * keep_scale;
}

}  // namespace

void dropout_forward(cudaStream_t s, float* out, const float* x, float p, float keep_scale,
                     std::uint64_t seed, i64 n) {
  if (n <= 0) return;
  LWB_LAUNCH(dropout_forward_kernel, grid_for(n), kThreads, 0, s)(out, x, p, keep_scale, seed, n);
  LWB_LAUNCH_CHECK(s, "dropout_forward_kernel");
}

void dropout_backward(cudaStream_t s, float* dx, const float* dout, float p, float keep_scale,
                      std::uint64_t seed, i64 n) {
  if (n <= 0) return;
  LWB_LAUNCH(dropout_backward_kernel, grid_for(n), kThreads, 0, s)
  (dx, dout, p, keep_scale, seed, n);
  LWB_LAUNCH_CHECK(s, "dropout_backward_kernel");
}

}  // namespace lwb::gpu

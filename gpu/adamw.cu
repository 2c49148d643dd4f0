// AdamW over a flat range, the formula of core/cpu/adamw.cpp (torch.optim.AdamW
// with decoupled weight decay), the step's constants computed on the host in
// the same way, so CPU and GPU agree to rounding.
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

__global__ void adamw_kernel(float* params, const float* grads, float* m, float* v, i64 n,
                             AdamWConstants c) {
  for (i64 i = global_index(); i < n; i += global_stride()) {
    const float g = grads[i] * c.grad_scale;
    const float mi = c.beta1 * m[i] + (1.0f - c.beta1) * g;
    const float vi = c.beta2 * v[i] + (1.0f - c.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] = params[i] * c.decay - c.step_size * mi / (sqrtf(vi) / c.bc2_sqrt + c.eps);
  }
}

}  // namespace

void adamw(cudaStream_t s, float* params, const float* grads, float* m, float* v, i64 n,
           const AdamWConstants& c) {
  if (n <= 0) return;
  LWB_LAUNCH(adamw_kernel, grid_for(n), kThreads, 0, s)(params, grads, m, v, n, c);
  LWB_LAUNCH_CHECK(s, "adamw_kernel");
}

}  // namespace lwb::gpu

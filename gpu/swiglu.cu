// SwiGLU activation h = silu(g) * u and its backward (core/cpu/swiglu.cpp).
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

__global__ void swiglu_forward_kernel(float* h, const float* gate, const float* up, i64 n) {
  for (i64 i = global_index(); i < n; i += global_stride()) {
    const float g = gate[i];
    h[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

// d silu(g)/dg = sig(g) * (1 + g * (1 - sig(g))).
__global__ void swiglu_backward_kernel(float* dgate, float* dup, const float* dh, const float* gate,
                                       const float* up, i64 n) {
  for (i64 i = global_index(); i < n; i += global_stride()) {
    const float g = gate[i];
    const float sig = 1.0f / (1.0f + expf(-g));
    const float d = dh[i];
    dup[i] = d * g * sig;
    dgate[i] = d * up[i] * sig * (1.0f + g * (1.0f - sig));
  }
}

}  // namespace

void swiglu_forward(cudaStream_t s, float* h, const float* gate, const float* up, i64 n) {
  if (n <= 0) return;
  LWB_LAUNCH(swiglu_forward_kernel, grid_for(n), kThreads, 0, s)(h, gate, up, n);
  LWB_LAUNCH_CHECK(s, "swiglu_forward_kernel");
}

void swiglu_backward(cudaStream_t s, float* dgate, float* dup, const float* dh, const float* gate,
                     const float* up, i64 n) {
  if (n <= 0) return;
  LWB_LAUNCH(swiglu_backward_kernel, grid_for(n), kThreads, 0, s)(dgate, dup, dh, gate, up, n);
  LWB_LAUNCH_CHECK(s, "swiglu_backward_kernel");
}

}  // namespace lwb::gpu

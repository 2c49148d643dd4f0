// Rotary position embedding in place, HF "rotate_half" layout
// (core/cpu/rope.cpp): within a head, dimension j < d/2 pairs with j + d/2;
// token row i is at position i % T; table row = [cos(0..d/2) | sin(0..d/2)].
// The backward is the rotation by the opposite angle.
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

__global__ void rope_kernel(float* x, const float* table, i64 n, i64 T, int heads, int head_dim,
                            float sign) {
  const int half = head_dim / 2;
  const i64 per_row = static_cast<i64>(heads) * half;
  const i64 total = n * per_row;
  for (i64 idx = global_index(); idx < total; idx += global_stride()) {
    const i64 i = idx / per_row;
    const i64 rem = idx - i * per_row;
    const i64 h = rem / half;
    const int j = static_cast<int>(rem - h * half);
    const float* cs = table + (i % T) * head_dim;
    const float c = cs[j], s = sign * cs[half + j];
    float* xh = x + (i * heads + h) * head_dim;
    const float a = xh[j], b = xh[j + half];
    xh[j] = a * c - b * s;
    xh[j + half] = b * c + a * s;
  }
}

}  // namespace

void rope(cudaStream_t s, float* x, const float* table, i64 n, i64 T, int heads, int head_dim,
          bool inverse) {
  const i64 total = n * heads * static_cast<i64>(head_dim / 2);
  if (total <= 0) return;
  LWB_LAUNCH(rope_kernel, grid_for(total), kThreads, 0, s)
  (x, table, n, T, heads, head_dim, inverse ? -1.0f : 1.0f);
  LWB_LAUNCH_CHECK(s, "rope_kernel");
}

}  // namespace lwb::gpu

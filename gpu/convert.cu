// fp32 -> bf16 (round to nearest even, NaN kept a quiet NaN) for the GEMM
// path that multiplies a bf16 weight with an fp32 activation, and bf16 -> fp32
// (exact) for reading a bf16 frozen weight into fp32 (DoRA's W + sBA).
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

__device__ __forceinline__ std::uint16_t to_bf16_bits(float f) {
  std::uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

__global__ void f32_to_bf16_2d_kernel(std::uint16_t* dst, const float* src, i64 rows, i64 cols,
                                      i64 ld) {
  const i64 n = rows * cols;
  for (i64 idx = global_index(); idx < n; idx += global_stride()) {
    const i64 r = idx / cols, c = idx - r * cols;
    dst[idx] = to_bf16_bits(src[r * ld + c]);
  }
}

__global__ void bf16_to_f32_kernel(float* dst, const std::uint16_t* src, i64 n) {
  for (i64 i = global_index(); i < n; i += global_stride())
    dst[i] = __uint_as_float(static_cast<std::uint32_t>(src[i]) << 16);
}

}  // namespace

void f32_to_bf16_2d(cudaStream_t s, std::uint16_t* dst, const float* src, i64 rows, i64 cols,
                    i64 ld) {
  if (rows <= 0 || cols <= 0) return;
  LWB_LAUNCH(f32_to_bf16_2d_kernel, grid_for(rows * cols), kThreads, 0, s)
  (dst, src, rows, cols, ld);
  LWB_LAUNCH_CHECK(s, "f32_to_bf16_2d_kernel");
}

void bf16_to_f32(cudaStream_t s, float* dst, const std::uint16_t* src, i64 n) {
  if (n <= 0) return;
  LWB_LAUNCH(bf16_to_f32_kernel, grid_for(n), kThreads, 0, s)(dst, src, n);
  LWB_LAUNCH_CHECK(s, "bf16_to_f32_kernel");
}

}  // namespace lwb::gpu

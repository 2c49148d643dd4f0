#pragma once
// Shared device helpers for gpu/*.cu (private).
//
// Kernels are launched with LWB_LAUNCH(kernel, grid, block, smem, stream)(args)
// and declare shared memory with LWB_SHARED(T, name, dims) (static, e.g.
// LWB_SHARED(float, s, [32])) and LWB_DYNAMIC_SHARED(T, name), so the same
// sources also build for gpu/emulation (LWB_GPU_EMULATION: plain C++ on the
// CPU, one cooperative context per CUDA thread, shared memory poisoned per
// block) and can be checked on a machine without a GPU.
#ifdef LWB_GPU_EMULATION
#include "gpu/emulation/cuda_emu.h"
#define LWB_LAUNCH(kernel, grid, block, smem, stream) \
  ::lwb::emu::launch(#kernel, (kernel), (grid), (block), (smem), (stream))
#define LWB_SHARED(T, name, dims)                       \
  static ::lwb::emu::SharedSite lwb_shared_site_##name; \
  T(&name) dims = ::lwb::emu::static_shared<T dims>(lwb_shared_site_##name)
#define LWB_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::lwb::emu::dynamic_shared())
#else
#include <cuda_runtime.h>
#define LWB_LAUNCH(kernel, grid, block, smem, stream) kernel<<<(grid), (block), (smem), (stream)>>>
#define LWB_SHARED(T, name, dims) __shared__ T name dims
#define LWB_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif

#include <cmath>
#include <cstdint>

#include "gpu/cuda_check.h"
#include "gpu/kernels.h"

namespace lwb::gpu {

inline constexpr int kThreads = 256;
// Grid for a grid-stride loop over n elements: enough blocks to fill the
// device, never more than needed. n > 0.
inline unsigned grid_for(i64 n, int threads = kThreads) {
  const i64 blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < (1 << 20) ? blocks : (1 << 20));
}

__device__ __forceinline__ i64 global_index() {
  return static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ i64 global_stride() { return static_cast<i64>(gridDim.x) * blockDim.x; }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum / max over a block of blockDim.x threads (a multiple of 32, at most
// 1024), in a fixed order; every thread gets the result. `shared` has 32 floats.
__device__ __forceinline__ float block_sum(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : 0.0f;
  return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(v);
}

}  // namespace lwb::gpu

// Kernels with the mistakes the CUDA emulation must catch (and one without,
// to show a correct use passes), for tests/gpu/emu_check.cpp. Built as C++
// through the emulator, and by nvcc only for ptxas's register counts
// (gpu/emulation/kernel_registers.cmake).
// clang-format off
#include "gpu/common.cuh"  // first: under emulation it defines __shared__ before the CUDA headers do
// clang-format on

#include "tests/gpu/emu_kernels.h"

namespace lwb::emucheck {

namespace {

// out[b] = out[b - 1] + 1: right only when the blocks run in ascending order.
__global__ void chain_kernel(int* out) {
  if (threadIdx.x != 0) return;
  out[blockIdx.x] = blockIdx.x == 0 ? 0 : out[blockIdx.x - 1] + 1;
}

// Only block 0 writes the shared array, every block reads it.
__global__ void static_shared_kernel(float* out) {
  LWB_SHARED(float, s, [32]);
  if (blockIdx.x == 0) s[threadIdx.x] = 1.0f;
  __syncthreads();
  out[blockIdx.x * 32 + threadIdx.x] = s[threadIdx.x];
}

__global__ void dynamic_shared_kernel(float* out) {
  LWB_DYNAMIC_SHARED(float, s);
  if (blockIdx.x == 0) s[threadIdx.x] = 1.0f;
  __syncthreads();
  out[blockIdx.x * 32 + threadIdx.x] = s[threadIdx.x];
}

// The upper half of each warp leaves; the rest shuffle with a full mask.
__global__ void warp_after_exit_kernel(float* out) {
  if (threadIdx.x % 32 >= 16) return;
  out[threadIdx.x] = gpu::warp_sum(1.0f);
}

// Any block size: a full-mask warp sum.
__global__ void warp_sum_kernel(float* out) { out[threadIdx.x] = gpu::warp_sum(1.0f); }

// Each thread writes its slice of dynamic shared memory, then reads it back.
__global__ void big_shared_kernel(float* out, int per_thread) {
  LWB_DYNAMIC_SHARED(float, s);
  for (int i = 0; i < per_thread; ++i) s[threadIdx.x * per_thread + i] = static_cast<float>(i);
  __syncthreads();
  float acc = 0.0f;
  for (int i = 0; i < per_thread; ++i) acc += s[threadIdx.x * per_thread + i];
  out[threadIdx.x] = acc;
}

// Keeps kLive values in registers across a loop: ptxas needs more than 64
// registers a thread, so a 1024-thread launch cannot fit a block's 65536.
constexpr int kLive = 96;
__global__ void register_heavy_kernel(float* out, const float* in, int rounds) {
  float v[kLive];
#pragma unroll
  for (int k = 0; k < kLive; ++k) v[k] = in[k] + threadIdx.x;
  for (int r = 0; r < rounds; ++r) {
#pragma unroll
    for (int k = 0; k < kLive; ++k) v[k] = v[k] * v[(k + 1) % kLive] + 1.0f;
  }
  float acc = 0.0f;
#pragma unroll
  for (int k = 0; k < kLive; ++k) acc += v[k];
  out[threadIdx.x] = acc;
}

}  // namespace

void chain(cudaStream_t s, int* out, unsigned blocks) {
  LWB_LAUNCH(chain_kernel, blocks, 32, 0, s)(out);
  LWB_LAUNCH_CHECK(s, "chain_kernel");
}

void shared_static(cudaStream_t s, float* out, unsigned blocks) {
  LWB_LAUNCH(static_shared_kernel, blocks, 32, 0, s)(out);
  LWB_LAUNCH_CHECK(s, "static_shared_kernel");
}

void shared_dynamic(cudaStream_t s, float* out, unsigned blocks) {
  LWB_LAUNCH(dynamic_shared_kernel, blocks, 32, 32 * sizeof(float), s)(out);
  LWB_LAUNCH_CHECK(s, "dynamic_shared_kernel");
}

void warp_after_exit(cudaStream_t s, float* out) {
  LWB_LAUNCH(warp_after_exit_kernel, 1, 64, 0, s)(out);
  LWB_LAUNCH_CHECK(s, "warp_after_exit_kernel");
}

void warp_sum(cudaStream_t s, float* out, unsigned threads) {
  LWB_LAUNCH(warp_sum_kernel, 1, threads, 0, s)(out);
  LWB_LAUNCH_CHECK(s, "warp_sum_kernel");
}

void big_shared(cudaStream_t s, float* out, std::size_t bytes, bool set_attribute) {
  if (set_attribute)
    LWB_CUDA_CHECK(cudaFuncSetAttribute(
        big_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  const int threads = 128;
  const int per_thread = static_cast<int>(bytes / sizeof(float) / threads);
  LWB_LAUNCH(big_shared_kernel, 1, threads, bytes, s)(out, per_thread);
  LWB_LAUNCH_CHECK(s, "big_shared_kernel");
}

void register_heavy(cudaStream_t s, float* out, const float* in, unsigned threads) {
  LWB_LAUNCH(register_heavy_kernel, 1, threads, 0, s)(out, in, 2);
  LWB_LAUNCH_CHECK(s, "register_heavy_kernel");
}

}  // namespace lwb::emucheck

#pragma once
// Launchers of tests/gpu/emu_kernels.cu. Pointers are device pointers; each
// launch is checked (LWB_LAUNCH_CHECK: a refused launch throws DeviceError).
#include <cuda_runtime_api.h>

#include <cstddef>

namespace lwb::emucheck {

void chain(cudaStream_t s, int* out, unsigned blocks);            // out[b] = out[b - 1] + 1
void shared_static(cudaStream_t s, float* out, unsigned blocks);  // 32 floats a block
void shared_dynamic(cudaStream_t s, float* out, unsigned blocks);
void warp_after_exit(cudaStream_t s, float* out);                                    // 64 floats
void warp_sum(cudaStream_t s, float* out, unsigned threads);                         // out[t] = 32
void big_shared(cudaStream_t s, float* out, std::size_t bytes, bool set_attribute);  // 128 floats
void register_heavy(cudaStream_t s, float* out, const float* in, unsigned threads);  // in: 96

}  // namespace lwb::emucheck

#pragma once
// CPU emulation of the CUDA device features that gpu/*.cu use — for checking
// the kernels' logic on machines without a GPU (tests/gpu: gpu_check_emu).
// Not a general CUDA emulator: just enough for these kernels.
//
// Each block runs on the calling thread; each CUDA thread of the block is a
// cooperative context (ucontext) that yields at __syncthreads / __syncwarp /
// shuffles, and a barrier is released only when every live thread of the block
// (of the warp) waits at it — so a barrier in divergent code deadlocks and is
// reported, and threads between barriers run in a shuffled order, which exposes
// a missing barrier as a wrong result. Blocks run one after another, so
// __shared__ variables become function statics and dynamic shared memory is
// one buffer per launch, filled with NaN bytes to expose reads of unwritten
// shared memory.
//
// Included by gpu/common.cuh when LWB_GPU_EMULATION is defined, before any
// CUDA header: __shared__ must be ours.
#define __shared__ static
#define __launch_bounds__(...)

#include <cuda_runtime_api.h>  // types only: dim3, cudaError_t, ...

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <utility>

// The built-in variables (one OS thread runs the emulation: plain globals).
inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

namespace lwb::emu {

void* dynamic_shared();
void run_grid(dim3 grid, dim3 block, std::size_t smem, const std::function<void()>& body);
void sync_block();
void sync_warp();
std::uint64_t* warp_slots();  // 32 exchange slots of the calling thread's warp
unsigned lane_id();

template <class... P>
struct Launch {
  dim3 grid, block;
  std::size_t smem;
  void (*kernel)(P...);
  template <class... A>
  void operator()(A&&... a) const {
    std::tuple<P...> args(std::forward<A>(a)...);
    run_grid(grid, block, smem, [&] { std::apply(kernel, args); });
  }
};

template <class... P>
Launch<P...> launch(dim3 grid, dim3 block, std::size_t smem, void (*kernel)(P...)) {
  return Launch<P...>{grid, block, smem, kernel};
}

}  // namespace lwb::emu

inline void __syncthreads() { ::lwb::emu::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { ::lwb::emu::sync_warp(); }

template <class T>
T __shfl_xor_sync(unsigned, T v, int lane_mask, int = 32) {
  static_assert(sizeof(T) <= 8, "shuffle of a value larger than 8 bytes");
  std::uint64_t* slots = ::lwb::emu::warp_slots();
  const unsigned lane = ::lwb::emu::lane_id();
  std::memcpy(&slots[lane], &v, sizeof(T));
  ::lwb::emu::sync_warp();
  T r;
  std::memcpy(&r, &slots[lane ^ static_cast<unsigned>(lane_mask)], sizeof(T));
  ::lwb::emu::sync_warp();
  return r;
}

inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline int min(int a, int b) { return a < b ? a : b; }

// cuda_runtime.h's C++ overloads that take a kernel.
template <class T>
cudaError_t cudaFuncSetAttribute(T* entry, cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(entry), attr, value);
}
template <class T>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, T* entry) {
  return ::cudaFuncGetAttributes(attr, reinterpret_cast<const void*>(entry));
}

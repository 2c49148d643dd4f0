#pragma once
// CPU emulation of the CUDA device features that gpu/*.cu use, for checking
// the CUDA backend on machines without a GPU (tests/gpu: gpu_check_emu). Not a
// general CUDA emulator, but a strict one: where the hardware would fail, or
// where a result would depend on what the hardware leaves unspecified, the
// emulation fails too, so a GPU-only bug fails CI on a CPU.
//
//  - Each block runs on the calling thread. Its threads run in a shuffled order
//    as plain calls until one reaches a barrier (__syncthreads, __syncwarp, a
//    shuffle); from then on every unfinished thread is a cooperative context
//    (ucontext), and threads between barriers run in a shuffled order, so a
//    missing barrier shows as a wrong result. Blocks run in a shuffled order
//    too. The order comes from one seed, printed at the first launch and set
//    with LWB_EMU_SEED (scheduler.cpp).
//  - A barrier is released when every live thread of the block waits at it; a
//    barrier in divergent code deadlocks and is reported. A warp operation
//    fails when a lane of its mask has exited or does not exist (a block that
//    is not a multiple of 32 threads).
//  - Shared memory, dynamic and static (LWB_SHARED), is refilled with NaN bytes
//    for every block, with canaries behind it.
//  - Launches are checked as the driver checks them: dimensions, more than 48
//    KiB of dynamic shared memory without cudaFuncSetAttribute, registers x
//    threads against ptxas's count for the kernel (kernel_registers.cmake),
//    kernel arguments that are not device memory.
//  - Device memory, streams and cuBLAS: fake_runtime.cpp, device_memory.cpp,
//    fake_cublas.cpp.
//
// Included by gpu/common.cuh when LWB_GPU_EMULATION is defined, before any
// CUDA header: __shared__ must be ours.
#define __shared__ _Pragma("GCC error \"static shared memory: use LWB_SHARED(T, name, dims)\"")
#define __launch_bounds__(...)

#include <cuda_runtime_api.h>  // types only: dim3, cudaError_t, ...

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

// The built-in variables (one OS thread runs the emulation: plain globals).
inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

namespace lwb::emu {

struct LaunchConfig {
  const char* name;  // the kernel as written at the launch, e.g. "fill_kernel<T>"
  const void* kernel;
  dim3 grid, block;
  std::size_t smem;
  cudaStream_t stream;
};
// Checks the launch as the driver does. On success queues `body` (one CUDA
// thread's work) on the stream; otherwise the error is cudaGetLastError's.
bool launch_kernel(const LaunchConfig& c, std::function<void()> body);
// A kernel's pointer argument must be null or point into live device memory.
void check_kernel_pointer(const LaunchConfig& c, int index, const void* p);

void* dynamic_shared();
// One static shared array per declaration site, per block (LWB_SHARED).
struct SharedSite {
  unsigned long long block = ~0ull;
  std::size_t offset = 0;
};
void* static_shared(SharedSite& site, std::size_t bytes, std::size_t align);
template <class T>
T& static_shared(SharedSite& site) {
  return *static_cast<T*>(static_shared(site, sizeof(T), alignof(T)));
}

void sync_block();
// Waits until every lane of `mask` reaches a warp operation with the same mask.
void sync_warp(unsigned mask, const char* op);
std::uint64_t* warp_slots();  // 32 exchange slots of the calling thread's warp
unsigned lane_id();
[[noreturn]] void kernel_fault(const char* what);

// Registers per thread of kernels, as ptxas reports them (name without
// namespace or template arguments, the largest over instances). gpu/*.cu's
// table is built in; a program with kernels of its own adds theirs.
struct KernelRegisters {
  const char* name;
  int registers;
};
void add_kernel_registers(const KernelRegisters* table, std::size_t count);

template <class T>
void check_argument(const LaunchConfig& c, int index, const T& value) {
  if constexpr (std::is_pointer_v<T>) check_kernel_pointer(c, index, value);
}

template <class... P>
struct Launch {
  LaunchConfig config;
  void (*kernel)(P...);
  template <class... A>
  void operator()(A&&... a) const {
    std::tuple<P...> args(std::forward<A>(a)...);
    std::apply(
        [&](const auto&... v) {
          int i = 0;
          (check_argument(config, i++, v), ...);
        },
        args);
    launch_kernel(config, [k = kernel, args] { std::apply(k, args); });
  }
};

template <class... P>
Launch<P...> launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, std::size_t smem,
                    cudaStream_t stream) {
  return Launch<P...>{
      LaunchConfig{name, reinterpret_cast<const void*>(kernel), grid, block, smem, stream}, kernel};
}

}  // namespace lwb::emu

inline void __syncthreads() { ::lwb::emu::sync_block(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::lwb::emu::sync_warp(mask, "__syncwarp"); }

template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  static_assert(sizeof(T) <= 8, "shuffle of a value larger than 8 bytes");
  if (width != 32) ::lwb::emu::kernel_fault("__shfl_xor_sync with a width other than 32");
  std::uint64_t* slots = ::lwb::emu::warp_slots();
  const unsigned lane = ::lwb::emu::lane_id();
  const unsigned source = lane ^ static_cast<unsigned>(lane_mask);
  if (source > 31 || !(mask >> source & 1u))
    ::lwb::emu::kernel_fault("__shfl_xor_sync reads a lane outside its mask");
  std::memcpy(&slots[lane], &v, sizeof(T));
  ::lwb::emu::sync_warp(mask, "__shfl_xor_sync");
  T r;
  std::memcpy(&r, &slots[source], sizeof(T));
  ::lwb::emu::sync_warp(mask, "__shfl_xor_sync");
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

#pragma once
// Error checking for every CUDA runtime and cuBLAS call (private header).
// A failing call throws DeviceError("file:line: expr: name: description");
// kernel launches are followed by LWB_LAUNCH_CHECK, which reads
// cudaGetLastError and, when sync checking is on, synchronises the stream so
// an asynchronous fault is reported at the launch that caused it.
// Sync checking is on in builds with LWB_CUDA_SYNC_CHECK defined (Debug) or
// when the environment has LWB_CUDA_SYNC_CHECK=1 at backend creation.
#include <cublas_api.h>
#include <cuda_runtime_api.h>

namespace lwb::gpu {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file,
                                     int line);
void check_launch(cudaStream_t stream, const char* what, const char* file, int line);

bool sync_check_enabled();
void set_sync_check(bool on);

}  // namespace lwb::gpu

#define LWB_CUDA_CHECK(expr)                                             \
  do {                                                                   \
    const cudaError_t lwb_err_ = (expr);                                 \
    if (lwb_err_ != cudaSuccess)                                         \
      ::lwb::gpu::throw_cuda_error(lwb_err_, #expr, __FILE__, __LINE__); \
  } while (0)

#define LWB_CUBLAS_CHECK(expr)                                            \
  do {                                                                    \
    const cublasStatus_t lwb_st_ = (expr);                                \
    if (lwb_st_ != CUBLAS_STATUS_SUCCESS)                                 \
      ::lwb::gpu::throw_cublas_error(lwb_st_, #expr, __FILE__, __LINE__); \
  } while (0)

#define LWB_LAUNCH_CHECK(stream, what) \
  ::lwb::gpu::check_launch((stream), (what), __FILE__, __LINE__)

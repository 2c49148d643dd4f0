#include "gpu/cuda_check.h"

#include <cublas_v2.h>

#include <atomic>
#include <string>

#include "core/common/errors.h"

namespace lwb::gpu {

namespace {
#ifdef LWB_CUDA_SYNC_CHECK
std::atomic<bool> g_sync_check{true};
#else
std::atomic<bool> g_sync_check{false};
#endif

std::string where(const char* file, int line) {
  std::string f = file;
  const auto slash = f.rfind("/gpu/");
  if (slash != std::string::npos) f = f.substr(slash + 1);
  return f + ":" + std::to_string(line);
}
}  // namespace

bool sync_check_enabled() { return g_sync_check.load(std::memory_order_relaxed); }
void set_sync_check(bool on) { g_sync_check.store(on, std::memory_order_relaxed); }

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  throw DeviceError(where(file, line) + ": " + expr + ": " + cudaGetErrorName(err) + ": " +
                    cudaGetErrorString(err));
}

void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file, int line) {
  throw DeviceError(where(file, line) + ": " + expr + ": " + cublasGetStatusName(status) + ": " +
                    cublasGetStatusString(status));
}

void check_launch(cudaStream_t stream, const char* what, const char* file, int line) {
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess && sync_check_enabled()) err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess) throw_cuda_error(err, what, file, line);
}

}  // namespace lwb::gpu

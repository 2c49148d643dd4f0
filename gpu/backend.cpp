// CudaBackend creation and teardown, the probe, device queries.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/common/errors.h"
#include "gpu/cuda_backend.h"
#include "gpu/cuda_backend_impl.h"
#include "gpu/cuda_check.h"
#include "gpu/kernels.h"

#ifndef LWB_CUDA_ARCHS
#define LWB_CUDA_ARCHS "unknown"
#endif

namespace lwb {

namespace {

std::string cuda_error_text(cudaError_t err) {
  return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

}  // namespace

CudaProbe probe_cuda() {
  CudaProbe probe;
  try {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      probe.reason = "cudaGetDeviceCount: " + std::string(cudaGetErrorString(err));
      return probe;
    }
    if (count == 0) {
      probe.reason = "cudaGetDeviceCount: no CUDA device found";
      return probe;
    }
    // Devices are usable when this binary has a kernel image for them. The
    // check needs the device current (it creates its primary context), so the
    // caller's current device is restored afterwards.
    int previous = 0;
    (void)cudaGetDevice(&previous);
    for (int d = 0; d < count; ++d) {
      cudaError_t e = cudaSetDevice(d);
      if (e == cudaSuccess) e = gpu::kernel_image_available();
      if (e == cudaSuccess) {
        probe.devices.push_back(d);
        continue;
      }
      (void)cudaGetLastError();
      int major = 0, minor = 0;
      (void)cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d);
      (void)cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, d);
      (void)cudaGetLastError();
      if (!probe.reason.empty()) probe.reason += "; ";
      probe.reason += "cuda:" + std::to_string(d) + " (compute capability " +
                      std::to_string(major) + "." + std::to_string(minor) +
                      ") is not usable by this build (CUDA architectures " LWB_CUDA_ARCHS "): " +
                      cudaGetErrorString(e);
    }
    (void)cudaSetDevice(previous);
    (void)cudaGetLastError();
    if (probe.devices.empty())
      probe.reason = std::to_string(count) + " CUDA device(s), none usable: " + probe.reason;
  } catch (const std::exception& e) {
    probe.devices.clear();
    probe.reason = e.what();
  } catch (...) {
    probe.devices.clear();
    probe.reason = "unknown error while probing CUDA";
  }
  return probe;
}

GpuProvider cuda_gpu_provider() {
  return GpuProvider{[](std::string* reason) {
                       CudaProbe p = probe_cuda();
                       if (reason) *reason = p.reason;
                       return p.devices;
                     },
                     [](int device) { return make_cuda_backend(device); }};
}

std::unique_ptr<Backend> make_cuda_backend(int device, bool tf32) {
  return std::make_unique<CudaBackend>(device, tf32);
}

CudaBackend::CudaBackend(int device, bool tf32)
    : device_(device), tf32_(tf32), where_("cuda:" + std::to_string(device)) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    throw DeviceError(where_ + ": cudaGetDeviceCount: " + cuda_error_text(err));
  }
  if (device < 0 || device >= count)
    throw DeviceError(where_ + ": no such device (" + std::to_string(count) +
                      " CUDA device(s) present)");
  try {
    LWB_CUDA_CHECK(cudaSetDevice(device_));
    cudaDeviceProp prop{};
    LWB_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    name_ = where_ + " (" + prop.name + (tf32_ ? ", TF32" : "") + ")";
    const cudaError_t image = gpu::kernel_image_available();
    if (image != cudaSuccess)
      throw DeviceError(where_ + " (" + prop.name + ", compute capability " +
                        std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                        "): this build has no kernel for it (CUDA architectures " LWB_CUDA_ARCHS
                        "): " +
                        cuda_error_text(image));
    LWB_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    LWB_CUBLAS_CHECK(cublasCreate(&cublas_));
    LWB_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    LWB_CUBLAS_CHECK(
        cublasSetMathMode(cublas_, tf32_ ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    const std::size_t reduce_bytes = (gpu::kReduceMaxBlocks + 1) * sizeof(double);
    LWB_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&reduce_buf_), reduce_bytes));
    internal_bytes_ += reduce_bytes;
    LWB_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_result_), sizeof(double)));
    const char* sync = std::getenv("LWB_CUDA_SYNC_CHECK");
    if (sync && std::strcmp(sync, "0") != 0 && *sync) gpu::set_sync_check(true);
  } catch (...) {
    destroy();
    throw;
  }
}

CudaBackend::~CudaBackend() { destroy(); }

void CudaBackend::destroy() noexcept {
  // Never throws: runs from the destructor, possibly after a device fault.
  (void)cudaSetDevice(device_);
  if (stream_) (void)cudaStreamSynchronize(stream_);
  if (cublas_) (void)cublasDestroy(cublas_);
  if (scratch_) (void)cudaFree(scratch_);
  if (reduce_buf_) (void)cudaFree(reduce_buf_);
  if (host_result_) (void)cudaFreeHost(host_result_);
  if (stream_) (void)cudaStreamDestroy(stream_);
  (void)cudaGetLastError();
  cublas_ = nullptr;
  scratch_ = nullptr;
  reduce_buf_ = nullptr;
  host_result_ = nullptr;
  stream_ = nullptr;
  scratch_bytes_ = internal_bytes_ = 0;
}

void CudaBackend::bind() const { LWB_CUDA_CHECK(cudaSetDevice(device_)); }

std::size_t CudaBackend::device_free_bytes() const {
  bind();
  std::size_t free_b = 0, total_b = 0;
  LWB_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return free_b;
}

std::size_t CudaBackend::device_total_bytes() const {
  bind();
  std::size_t free_b = 0, total_b = 0;
  LWB_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return total_b;
}

void CudaBackend::synchronize() {
  bind();
  LWB_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace lwb

// Device memory: allocation (OutOfMemoryError with the free byte count, never
// an abort), transfers, fill, and the backend's grow-only scratch.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstring>

#include "core/common/errors.h"
#include "core/common/half.h"
#include "gpu/cuda_backend_impl.h"
#include "gpu/cuda_check.h"
#include "gpu/kernels.h"
#include "gpu/tensor_checks.h"

namespace lwb {

void* CudaBackend::allocate(std::size_t bytes) {
  bind();
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes ? bytes : 1);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // not sticky; clear it
    std::size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
      (void)cudaGetLastError();
      free_b = 0;
    }
    throw OutOfMemoryError(where_, bytes, free_b);
  }
  if (err != cudaSuccess) gpu::throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
  allocated_ += bytes;
  return p;
}

void CudaBackend::release(void* ptr, std::size_t bytes) {
  // Called from Storage's destructor: must not throw. cudaFree waits for the
  // work that may still use the buffer.
  if (ptr) {
    (void)cudaSetDevice(device_);
    const cudaError_t err = cudaFree(ptr);
    if (err != cudaSuccess && err != cudaErrorCudartUnloading) {
      std::fprintf(stderr, "lwb: %s: cudaFree failed: %s\n", where_.c_str(),
                   cudaGetErrorString(err));
      (void)cudaGetLastError();
    }
  }
  allocated_ -= bytes;
}

void* CudaBackend::scratch(std::size_t bytes) {
  if (bytes <= scratch_bytes_) return scratch_;
  if (scratch_) {
    LWB_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the ops that used it are done
    LWB_CUDA_CHECK(cudaFree(scratch_));
    internal_bytes_ -= scratch_bytes_;
    scratch_ = nullptr;
    scratch_bytes_ = 0;
  }
  const std::size_t want = bytes < (1u << 20) ? (1u << 20) : bytes;
  const cudaError_t err = cudaMalloc(&scratch_, want);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    std::size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
    scratch_ = nullptr;
    throw OutOfMemoryError(where_ + " (backend scratch)", want, free_b);
  }
  if (err != cudaSuccess) gpu::throw_cuda_error(err, "cudaMalloc(scratch)", __FILE__, __LINE__);
  scratch_bytes_ = want;
  internal_bytes_ += want;
  return scratch_;
}

// gemm rounds the fp32 operand into scratch (gemm.cpp); growing it now keeps
// the step loop free of cudaMalloc.
std::size_t CudaBackend::reserve_mixed_gemm(std::int64_t max_bf16_elems,
                                            std::int64_t max_f32_elems) {
  bind();
  const std::size_t bytes = static_cast<std::size_t>(max_f32_elems) * sizeof(std::uint16_t);
  scratch(bytes);
  return bytes;
}

void CudaBackend::upload(const Tensor& dst, const void* host_src, std::size_t bytes) {
  bind();
  const gpu::ArgCheck check(*this, "upload");
  check.expect(dst.defined(), "dst is undefined");
  check.expect(&dst.backend() == this, "dst lives on " + dst.device().str());
  check.expect(bytes <= dst.nbytes(),
               std::to_string(bytes) + " bytes into a tensor of " + std::to_string(dst.nbytes()));
  if (bytes == 0) return;
  LWB_CUDA_CHECK(cudaMemcpyAsync(gpu::device_ptr<void>(dst), host_src, bytes,
                                 cudaMemcpyHostToDevice, stream_));
  // The caller may free or reuse host_src as soon as we return.
  LWB_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::download(void* host_dst, const Tensor& src, std::size_t bytes) {
  bind();
  const gpu::ArgCheck check(*this, "download");
  check.expect(src.defined(), "src is undefined");
  check.expect(&src.backend() == this, "src lives on " + src.device().str());
  check.expect(bytes <= src.nbytes(),
               std::to_string(bytes) + " bytes from a tensor of " + std::to_string(src.nbytes()));
  if (bytes == 0) return;
  LWB_CUDA_CHECK(cudaMemcpyAsync(host_dst, gpu::device_ptr<void>(src), bytes,
                                 cudaMemcpyDeviceToHost, stream_));
  LWB_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy(const Tensor& dst, const Tensor& src) {
  bind();
  const gpu::ArgCheck check(*this, "copy");
  check.expect(dst.defined() && src.defined(), "undefined tensor");
  check.expect(&dst.backend() == this && &src.backend() == this,
               "both tensors must live on " + where_);
  if (src.dtype == DType::BF16 && dst.dtype == DType::F32) {
    check.expect(dst.numel() >= src.numel(), "dst (" + std::to_string(dst.numel()) +
                                                 " elements) smaller than src (" +
                                                 std::to_string(src.numel()) + ")");
    gpu::bf16_to_f32(stream_, gpu::device_ptr<float>(dst), gpu::device_ptr<std::uint16_t>(src),
                     src.numel());
    return;
  }
  check.expect(dst.dtype == src.dtype, std::string("cannot copy ") + dtype_name(src.dtype) +
                                           " into " + dtype_name(dst.dtype));
  check.expect(dst.nbytes() >= src.nbytes(), "dst (" + std::to_string(dst.nbytes()) +
                                                 " bytes) smaller than src (" +
                                                 std::to_string(src.nbytes()) + " bytes)");
  if (src.nbytes() == 0) return;
  LWB_CUDA_CHECK(cudaMemcpyAsync(gpu::device_ptr<void>(dst), gpu::device_ptr<void>(src),
                                 src.nbytes(), cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::fill(const Tensor& dst, double value) {
  bind();
  const gpu::ArgCheck check(*this, "fill");
  check.expect(dst.defined(), "dst is undefined");
  check.expect(&dst.backend() == this, "dst lives on " + dst.device().str());
  const std::int64_t n = dst.numel();
  if (n == 0) return;
  if (value == 0.0) {  // +0.0 and -0.0 alike, as the CPU's memset
    LWB_CUDA_CHECK(cudaMemsetAsync(gpu::device_ptr<void>(dst), 0, dst.nbytes(), stream_));
    return;
  }
  switch (dst.dtype) {
    case DType::F32:
      gpu::fill_f32(stream_, gpu::device_ptr<float>(dst), n, static_cast<float>(value));
      return;
    case DType::F64: gpu::fill_f64(stream_, gpu::device_ptr<double>(dst), n, value); return;
    case DType::I32:
      gpu::fill_i32(stream_, gpu::device_ptr<std::int32_t>(dst), n,
                    static_cast<std::int32_t>(value));
      return;
    case DType::BF16:
      gpu::fill_u16(stream_, gpu::device_ptr<std::uint16_t>(dst), n, f32_to_bf16(static_cast<float>(value)));
      return;
  }
  check.fail(std::string("unsupported dtype ") + dtype_name(dst.dtype));
}

}  // namespace lwb

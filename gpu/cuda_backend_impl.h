#pragma once
// CudaBackend: the Backend interface on one CUDA device (private header; the
// public one, gpu/cuda_backend.h, has only the probe and the factory).
//
// One non-blocking stream and one cuBLAS handle per backend; every op is
// enqueued on that stream, and only the calls that hand data to the host
// (download, sum, sum_squares) or must not outlive their host buffer (upload)
// wait for it. Each public call first makes the backend's device current, so
// the backend can be created on one thread and used on another (the trainer's
// worker thread).
//
// Implementation files: backend.cpp (creation, probe, queries), memory.cpp
// (allocation, transfers, fill, scratch), gemm.cpp (cuBLAS), ops.cpp (checks
// and dispatch of every other op to the kernels of gpu/*.cu).
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>
#include <string>

#include "core/tensor/backend.h"

namespace lwb {

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, bool tf32);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return name_; }
  Device device() const override { return {DeviceKind::Cuda, device_}; }
  bool tf32() const { return tf32_; }

  void* allocate(std::size_t bytes) override;
  void release(void* ptr, std::size_t bytes) override;
  std::size_t allocated_bytes() const override { return allocated_.load(); }
  std::size_t device_free_bytes() const override;
  std::size_t device_total_bytes() const override;
  void upload(const Tensor& dst, const void* host_src, std::size_t bytes) override;
  void download(void* host_dst, const Tensor& src, std::size_t bytes) override;
  void copy(const Tensor& dst, const Tensor& src) override;
  void fill(const Tensor& dst, double value) override;
  void synchronize() override;
  std::size_t reserve_mixed_gemm(std::int64_t max_bf16_elems, std::int64_t max_f32_elems) override;

  void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
            double alpha, const Tensor& A, std::int64_t lda, const Tensor& B, std::int64_t ldb,
            double beta, const Tensor& C, std::int64_t ldc) override;
  void add(const Tensor& out, const Tensor& a, const Tensor& b) override;
  void axpy(const Tensor& y, double alpha, const Tensor& x) override;
  void scale(const Tensor& x, double alpha) override;
  double sum(const Tensor& x) override;
  double sum_squares(const Tensor& x) override;

  void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& table,
                         std::int64_t n, std::int64_t C) override;
  void embedding_backward(const Tensor& dtable, const Tensor& tokens, const Tensor& dout,
                          std::int64_t n, std::int64_t C) override;
  void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x, const Tensor& w,
                       std::int64_t n, std::int64_t C, double eps) override;
  void rmsnorm_backward(const Tensor& dx, const Tensor& dw, const Tensor& dout, const Tensor& x,
                        const Tensor& w, const Tensor& rstd, std::int64_t n,
                        std::int64_t C) override;
  void rope_forward(const Tensor& x, const Tensor& table, std::int64_t n, std::int64_t T, int heads,
                    int head_dim) override;
  void rope_backward(const Tensor& dx, const Tensor& table, std::int64_t n, std::int64_t T,
                     int heads, int head_dim) override;
  void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                         const Tensor& v, const AttentionShape& s,
                         const Tensor& workspace) override;
  void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& dout,
                          const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                          const Tensor& lse, const AttentionShape& s,
                          const Tensor& workspace) override;
  std::size_t attention_workspace_bytes(const AttentionShape& s, DType dtype) const override;
  void scatter_rows(const Tensor& dst, const Tensor& rows, const Tensor& src, std::int64_t n,
                    std::int64_t C) override;
  void attention_cached(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                        const Tensor& v_cache, const Tensor& sequences, const Tensor& positions,
                        const CachedAttentionShape& s, const Tensor& workspace) override;
  std::size_t attention_cached_workspace_bytes(const CachedAttentionShape& s,
                                               DType dtype) const override;
  void swiglu_forward(const Tensor& h, const Tensor& gate, const Tensor& up,
                      std::int64_t numel) override;
  void swiglu_backward(const Tensor& dgate, const Tensor& dup, const Tensor& dh, const Tensor& gate,
                       const Tensor& up, std::int64_t numel) override;
  void cross_entropy(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                     const Tensor& targets, std::int64_t n, std::int64_t V, double scale) override;
  void argmax_rows(const Tensor& ids, const Tensor& logits, std::int64_t n,
                   std::int64_t V) override;
  void dropout_forward(const Tensor& out, const Tensor& x, double p, std::uint64_t seed,
                       std::int64_t numel) override;
  void dropout_backward(const Tensor& dx, const Tensor& dout, double p, std::uint64_t seed,
                        std::int64_t numel) override;
  void row_norms(const Tensor& norms, const Tensor& X, std::int64_t rows,
                 std::int64_t cols) override;
  void scale_columns(const Tensor& out, const Tensor& x, const Tensor& s, std::int64_t rows,
                     std::int64_t cols) override;
  void scale_rows(const Tensor& out, const Tensor& x, const Tensor& s, std::int64_t rows,
                  std::int64_t cols) override;
  void column_dot_scale(const Tensor& dot, const Tensor& scaled, const Tensor& a, const Tensor& b,
                        const Tensor& s, std::int64_t rows, std::int64_t cols, double alpha) override;
  void multiply(const Tensor& out, const Tensor& a, const Tensor& b) override;
  void divide(const Tensor& out, const Tensor& a, const Tensor& b) override;
  void adalora_importance(const Tensor& ipt, const Tensor& unc, const Tensor& params,
                          const Tensor& grads, double beta1, double beta2,
                          double grad_scale) override;
  void zero_below(const Tensor& x, double threshold) override;
  void adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
             const AdamWStep& step) override;

  // Device memory the backend holds for itself (reduction partials, GEMM
  // conversion and column-reduction scratch); not part of allocated_bytes().
  std::size_t internal_bytes() const { return internal_bytes_; }

 private:
  void bind() const;  // makes device_ current on the calling thread
  void destroy() noexcept;
  void* scratch(std::size_t bytes);  // grow-only, reused by consecutive ops on the stream
  double reduce(const Tensor& x, bool squares, const char* op);

  int device_;
  bool tf32_;
  std::string name_;
  std::string where_;  // "cuda:N"
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::atomic<std::size_t> allocated_{0};
  void* scratch_ = nullptr;
  std::size_t scratch_bytes_ = 0;
  double* reduce_buf_ = nullptr;   // device: partials then the result
  double* host_result_ = nullptr;  // pinned
  std::size_t internal_bytes_ = 0;
};

}  // namespace lwb

#pragma once
// The CPU backend: the numerical reference. fp32 for training, fp64 for the
// finite-difference checks; OpenBLAS for GEMMs, OpenMP over rows elsewhere.
#include <atomic>
#include <vector>

#include "core/tensor/backend.h"

namespace lwb {

class CpuBackend final : public Backend {
 public:
  std::string name() const override;
  Device device() const override { return {DeviceKind::Cpu, 0}; }

  void* allocate(std::size_t bytes) override;
  void release(void* ptr, std::size_t bytes) override;
  std::size_t allocated_bytes() const override { return allocated_.load(); }
  std::size_t device_free_bytes() const override;
  std::size_t device_total_bytes() const override;
  void upload(const Tensor& dst, const void* host_src, std::size_t bytes) override;
  void download(void* host_dst, const Tensor& src, std::size_t bytes) override;
  void copy(const Tensor& dst, const Tensor& src) override;
  void fill(const Tensor& dst, double value) override;
  void synchronize() override {}
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
  void rope_forward(const Tensor& x, const Tensor& table, std::int64_t n, std::int64_t T,
                    int heads, int head_dim) override;
  void rope_backward(const Tensor& dx, const Tensor& table, std::int64_t n, std::int64_t T,
                     int heads, int head_dim) override;
  void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k,
                         const Tensor& v, const AttentionShape& s,
                         const Tensor& workspace) override;
  void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                          const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                          const Tensor& out, const Tensor& lse, const AttentionShape& s,
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
  void swiglu_backward(const Tensor& dgate, const Tensor& dup, const Tensor& dh,
                       const Tensor& gate, const Tensor& up, std::int64_t numel) override;
  void cross_entropy(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                     const Tensor& targets, std::int64_t n, std::int64_t V,
                     double scale) override;
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

 private:
  const float* widen(const Tensor& t, std::int64_t rows, std::int64_t cols, std::int64_t ld);

  std::atomic<std::size_t> allocated_{0};
  // fp32 copy of the BF16 gemm operand; sized once by reserve_mixed_gemm.
  std::vector<float> widened_;
};

}  // namespace lwb

// The CUDA backend's numerical ops other than GEMM: argument checks on the
// host, then the kernels of gpu/*.cu on the backend's stream. fp32 only (the
// CPU backend's fp64 exists for finite-difference checks); token ids I32.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "gpu/cuda_backend_impl.h"
#include "gpu/cuda_check.h"
#include "gpu/kernels.h"
#include "gpu/tensor_checks.h"

namespace lwb {

namespace {

float* f(const Tensor& t) { return gpu::device_ptr<float>(t); }
const std::int32_t* ids(const Tensor& t) { return gpu::device_ptr<const std::int32_t>(t); }

void check_attention_shape(const gpu::ArgCheck& c, const AttentionShape& s) {
  c.expect(s.B >= 0 && s.T >= 0, "negative B or T");
  c.expect(s.heads > 0 && s.kv_heads > 0 && s.heads % s.kv_heads == 0,
           "heads (" + std::to_string(s.heads) + ") must be a positive multiple of kv_heads (" +
               std::to_string(s.kv_heads) + ")");
  c.expect(s.head_dim > 0 && s.head_dim <= gpu::kAttentionMaxHeadDim,
           "head_dim " + std::to_string(s.head_dim) + " outside 1.." +
               std::to_string(gpu::kAttentionMaxHeadDim));
  c.expect(s.B <= 65535 && s.heads <= 65535, "B and heads must be at most 65535");
  c.expect(s.T <= (std::int64_t{1} << 30), "T too large");
}

}  // namespace

void CudaBackend::add(const Tensor& out, const Tensor& a, const Tensor& b) {
  bind();
  const std::int64_t n = out.defined() ? out.numel() : 0;
  gpu::ArgCheck(*this, "add").f32(out, "out", n).f32(a, "a", n).f32(b, "b", n);
  gpu::add(stream_, f(out), f(a), f(b), n);
}

void CudaBackend::axpy(const Tensor& y, double alpha, const Tensor& x) {
  bind();
  const std::int64_t n = y.defined() ? y.numel() : 0;
  gpu::ArgCheck(*this, "axpy").f32(y, "y", n).f32(x, "x", n);
  gpu::axpy(stream_, f(y), static_cast<float>(alpha), f(x), n);
}

void CudaBackend::scale(const Tensor& x, double alpha) {
  bind();
  const std::int64_t n = x.defined() ? x.numel() : 0;
  gpu::ArgCheck(*this, "scale").f32(x, "x", n);
  gpu::scale(stream_, f(x), static_cast<float>(alpha), n);
}

double CudaBackend::reduce(const Tensor& x, bool squares, const char* op) {
  bind();
  const std::int64_t n = x.defined() ? x.numel() : 0;
  gpu::ArgCheck(*this, op).f32(x, "x", n);
  double* result = reduce_buf_ + gpu::kReduceMaxBlocks;
  gpu::reduce_sum(stream_, f(x), n, squares, reduce_buf_, result);
  LWB_CUDA_CHECK(
      cudaMemcpyAsync(host_result_, result, sizeof(double), cudaMemcpyDeviceToHost, stream_));
  LWB_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return *host_result_;
}

double CudaBackend::sum(const Tensor& x) { return reduce(x, false, "sum"); }
double CudaBackend::sum_squares(const Tensor& x) { return reduce(x, true, "sum_squares"); }

void CudaBackend::embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& table,
                                    std::int64_t n, std::int64_t C) {
  bind();
  gpu::ArgCheck(*this, "embedding_forward")
      .f32(out, "out", n * C)
      .i32(tokens, "tokens", n)
      .f32(table, "table", C);
  gpu::embedding_forward(stream_, f(out), ids(tokens), f(table), n, C);
}

void CudaBackend::embedding_backward(const Tensor& dtable, const Tensor& tokens, const Tensor& dout,
                                     std::int64_t n, std::int64_t C) {
  bind();
  gpu::ArgCheck(*this, "embedding_backward")
      .f32(dtable, "dtable", C)
      .i32(tokens, "tokens", n)
      .f32(dout, "dout", n * C);
  gpu::embedding_backward(stream_, f(dtable), ids(tokens), f(dout), n, C);
}

void CudaBackend::rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x,
                                  const Tensor& w, std::int64_t n, std::int64_t C, double eps) {
  bind();
  gpu::ArgCheck(*this, "rmsnorm_forward")
      .f32(out, "out", n * C)
      .f32(rstd, "rstd", n)
      .f32(x, "x", n * C)
      .f32(w, "w", C);
  gpu::rmsnorm_forward(stream_, f(out), f(rstd), f(x), f(w), n, C, static_cast<float>(eps));
}

void CudaBackend::rmsnorm_backward(const Tensor& dx, const Tensor& dw, const Tensor& dout,
                                   const Tensor& x, const Tensor& w, const Tensor& rstd,
                                   std::int64_t n, std::int64_t C) {
  bind();
  gpu::ArgCheck(*this, "rmsnorm_backward")
      .f32(dx, "dx", n * C)
      .optional_f32(dw, "dw", C)
      .f32(dout, "dout", n * C)
      .f32(x, "x", n * C)
      .f32(w, "w", C)
      .f32(rstd, "rstd", n);
  gpu::rmsnorm_backward_dx(stream_, f(dx), f(dout), f(x), f(w), f(rstd), n, C);
  if (dw.defined() && n > 0 && C > 0) {
    auto* buf =
        static_cast<float*>(scratch(gpu::column_reduce_scratch_elems(n, C) * sizeof(float)));
    gpu::rmsnorm_dw(stream_, f(dw), f(dout), f(x), f(rstd), n, C, buf);
  }
}

void CudaBackend::rope_forward(const Tensor& x, const Tensor& table, std::int64_t n, std::int64_t T,
                               int heads, int head_dim) {
  bind();
  gpu::ArgCheck(*this, "rope_forward")
      .expect(T > 0 || n == 0, "T must be positive")
      .f32(x, "x", n * heads * head_dim)
      .f32(table, "table", std::min(n, T) * head_dim);
  gpu::rope(stream_, f(x), f(table), n, T, heads, head_dim, false);
}

void CudaBackend::rope_backward(const Tensor& dx, const Tensor& table, std::int64_t n,
                                std::int64_t T, int heads, int head_dim) {
  bind();
  gpu::ArgCheck(*this, "rope_backward")
      .expect(T > 0 || n == 0, "T must be positive")
      .f32(dx, "dx", n * heads * head_dim)
      .f32(table, "table", std::min(n, T) * head_dim);
  gpu::rope(stream_, f(dx), f(table), n, T, heads, head_dim, true);
}

std::size_t CudaBackend::attention_workspace_bytes(const AttentionShape& s, DType dtype) const {
  // The backward's per-row D = rowsum(dO * O), [B, heads, T].
  return static_cast<std::size_t>(s.B * s.heads * s.T) * dtype_size(dtype);
}

void CudaBackend::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q,
                                    const Tensor& k, const Tensor& v, const AttentionShape& s,
                                    const Tensor& /*workspace: not needed*/) {
  bind();
  const gpu::ArgCheck c(*this, "attention_forward");
  check_attention_shape(c, s);
  const std::int64_t n = s.rows();
  const std::int64_t qd = static_cast<std::int64_t>(s.heads) * s.head_dim;
  const std::int64_t kvd = static_cast<std::int64_t>(s.kv_heads) * s.head_dim;
  c.f32(out, "out", n * qd).f32(lse, "lse", s.B * s.heads * s.T).f32(q, "q", n * qd);
  c.f32(k, "k", n * kvd).f32(v, "v", n * kvd);
  gpu::attention_forward(stream_, f(out), f(lse), f(q), f(k), f(v), s.B, s.T, s.heads, s.kv_heads,
                         s.head_dim);
}

void CudaBackend::attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                     const Tensor& dout, const Tensor& q, const Tensor& k,
                                     const Tensor& v, const Tensor& out, const Tensor& lse,
                                     const AttentionShape& s, const Tensor& workspace) {
  bind();
  const gpu::ArgCheck c(*this, "attention_backward");
  check_attention_shape(c, s);
  const std::int64_t n = s.rows();
  const std::int64_t qd = static_cast<std::int64_t>(s.heads) * s.head_dim;
  const std::int64_t kvd = static_cast<std::int64_t>(s.kv_heads) * s.head_dim;
  const std::int64_t stats = s.B * s.heads * s.T;
  c.f32(dq, "dq", n * qd).f32(dk, "dk", n * kvd).f32(dv, "dv", n * kvd);
  c.f32(dout, "dout", n * qd).f32(q, "q", n * qd).f32(k, "k", n * kvd).f32(v, "v", n * kvd);
  c.f32(out, "out", n * qd).f32(lse, "lse", stats);
  c.f32(workspace, "workspace (attention_workspace_bytes)", stats);
  gpu::attention_backward(stream_, f(dq), f(dk), f(dv), f(dout), f(q), f(k), f(v), f(out), f(lse),
                          s.B, s.T, s.heads, s.kv_heads, s.head_dim, f(workspace));
}

void CudaBackend::scatter_rows(const Tensor& dst, const Tensor& rows, const Tensor& src,
                               std::int64_t n, std::int64_t C) {
  bind();
  gpu::ArgCheck(*this, "scatter_rows").f32(dst, "dst", C).i32(rows, "rows", n).f32(src, "src", n * C);
  gpu::scatter_rows(stream_, f(dst), ids(rows), f(src), n, C);
}

std::size_t CudaBackend::attention_cached_workspace_bytes(const CachedAttentionShape&, DType) const {
  return 0;  // the online softmax keeps everything in registers and shared memory
}

void CudaBackend::attention_cached(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                                   const Tensor& v_cache, const Tensor& sequences,
                                   const Tensor& positions, const CachedAttentionShape& s,
                                   const Tensor& /*workspace: not needed*/) {
  bind();
  const gpu::ArgCheck c(*this, "attention_cached");
  check_attention_shape(c, AttentionShape{1, s.capacity, s.heads, s.kv_heads, s.head_dim});
  c.expect(s.n >= 0 && s.n <= 0x7fffffff, "query rows must be in 0..2^31-1");
  c.expect(s.sequences > 0 && s.capacity > 0 && s.capacity <= 0x7fffffff,
           "the cache needs sequences > 0 and a capacity in 1..2^31-1");
  const std::int64_t qd = static_cast<std::int64_t>(s.heads) * s.head_dim;
  const std::int64_t kvd = static_cast<std::int64_t>(s.kv_heads) * s.head_dim;
  c.f32(out, "out", s.n * qd).f32(q, "q", s.n * qd);
  c.f32(k_cache, "k_cache", s.sequences * s.capacity * kvd).f32(v_cache, "v_cache", s.sequences * s.capacity * kvd);
  c.i32(sequences, "sequences", s.n).i32(positions, "positions", s.n);
  gpu::attention_cached(stream_, f(out), f(q), f(k_cache), f(v_cache), ids(sequences), ids(positions), s.n,
                        s.heads, s.kv_heads, s.head_dim, s.capacity);
}

void CudaBackend::swiglu_forward(const Tensor& h, const Tensor& gate, const Tensor& up,
                                 std::int64_t numel) {
  bind();
  gpu::ArgCheck(*this, "swiglu_forward")
      .f32(h, "h", numel)
      .f32(gate, "gate", numel)
      .f32(up, "up", numel);
  gpu::swiglu_forward(stream_, f(h), f(gate), f(up), numel);
}

void CudaBackend::swiglu_backward(const Tensor& dgate, const Tensor& dup, const Tensor& dh,
                                  const Tensor& gate, const Tensor& up, std::int64_t numel) {
  bind();
  gpu::ArgCheck(*this, "swiglu_backward")
      .f32(dgate, "dgate", numel)
      .f32(dup, "dup", numel)
      .f32(dh, "dh", numel)
      .f32(gate, "gate", numel)
      .f32(up, "up", numel);
  gpu::swiglu_backward(stream_, f(dgate), f(dup), f(dh), f(gate), f(up), numel);
}

void CudaBackend::cross_entropy(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                                const Tensor& targets, std::int64_t n, std::int64_t V,
                                double scale) {
  bind();
  gpu::ArgCheck(*this, "cross_entropy")
      .expect(V > 0 || n == 0, "V must be positive")
      .expect(n <= INT32_MAX, "too many rows")
      .f32(logits, "logits", n * V)
      .f32(losses, "losses", n)
      .optional_f32(dlogits, "dlogits", n * V)
      .i32(targets, "targets", n);
  gpu::cross_entropy(stream_, f(losses), f(dlogits), f(logits), ids(targets), n, V,
                     static_cast<float>(scale));
}

void CudaBackend::argmax_rows(const Tensor& out_ids, const Tensor& logits, std::int64_t n,
                              std::int64_t V) {
  bind();
  gpu::ArgCheck(*this, "argmax_rows")
      .expect(V > 0 || n == 0, "V must be positive")
      .expect(n <= INT32_MAX, "too many rows")
      .f32(logits, "logits", n * V)
      .i32(out_ids, "ids", n);
  gpu::argmax_rows(stream_, gpu::device_ptr<std::int32_t>(out_ids), f(logits), n, V);
}

void CudaBackend::dropout_forward(const Tensor& out, const Tensor& x, double p, std::uint64_t seed,
                                  std::int64_t numel) {
  bind();
  gpu::ArgCheck(*this, "dropout_forward")
      .expect(p >= 0 && p < 1, "p must be in [0, 1)")
      .f32(out, "out", numel)
      .f32(x, "x", numel);
  gpu::dropout_forward(stream_, f(out), f(x), static_cast<float>(p),
                       static_cast<float>(1.0 / (1.0 - p)), seed, numel);
}

void CudaBackend::dropout_backward(const Tensor& dx, const Tensor& dout, double p,
                                   std::uint64_t seed, std::int64_t numel) {
  bind();
  gpu::ArgCheck(*this, "dropout_backward")
      .expect(p >= 0 && p < 1, "p must be in [0, 1)")
      .f32(dx, "dx", numel)
      .f32(dout, "dout", numel);
  gpu::dropout_backward(stream_, f(dx), f(dout), static_cast<float>(p),
                        static_cast<float>(1.0 / (1.0 - p)), seed, numel);
}

void CudaBackend::row_norms(const Tensor& norms, const Tensor& X, std::int64_t rows,
                            std::int64_t cols) {
  bind();
  gpu::ArgCheck(*this, "row_norms").f32(norms, "norms", rows).f32(X, "X", rows * cols);
  gpu::row_norms(stream_, f(norms), f(X), rows, cols);
}

void CudaBackend::scale_columns(const Tensor& out, const Tensor& x, const Tensor& s,
                                std::int64_t rows, std::int64_t cols) {
  bind();
  gpu::ArgCheck(*this, "scale_columns")
      .f32(out, "out", rows * cols)
      .f32(x, "x", rows * cols)
      .f32(s, "s", cols);
  gpu::scale_columns(stream_, f(out), f(x), f(s), rows, cols);
}

void CudaBackend::scale_rows(const Tensor& out, const Tensor& x, const Tensor& s, std::int64_t rows,
                             std::int64_t cols) {
  bind();
  gpu::ArgCheck(*this, "scale_rows")
      .f32(out, "out", rows * cols)
      .f32(x, "x", rows * cols)
      .f32(s, "s", rows);
  gpu::scale_rows(stream_, f(out), f(x), f(s), rows, cols);
}

void CudaBackend::column_dot_scale(const Tensor& dot, const Tensor& scaled, const Tensor& a, const Tensor& b,
                                   const Tensor& s, std::int64_t rows, std::int64_t cols, double alpha) {
  bind();
  gpu::ArgCheck(*this, "column_dot_scale")
      .f32(dot, "dot", cols)
      .f32(scaled, "scaled", rows * cols)
      .f32(a, "a", rows * cols)
      .f32(b, "b", rows * cols)
      .f32(s, "s", cols);
  if (rows <= 0 || cols <= 0) return;
  auto* buf =
      static_cast<float*>(scratch(gpu::column_reduce_scratch_elems(rows, cols) * sizeof(float)));
  gpu::column_dot_scale(stream_, f(dot), f(scaled), f(a), f(b), f(s), rows, cols,
                        static_cast<float>(alpha), buf);
}

void CudaBackend::multiply(const Tensor& out, const Tensor& a, const Tensor& b) {
  bind();
  const std::int64_t n = out.defined() ? out.numel() : 0;
  gpu::ArgCheck(*this, "multiply").f32(out, "out", n).f32(a, "a", n).f32(b, "b", n);
  gpu::multiply(stream_, f(out), f(a), f(b), n);
}

void CudaBackend::divide(const Tensor& out, const Tensor& a, const Tensor& b) {
  bind();
  const std::int64_t n = out.defined() ? out.numel() : 0;
  gpu::ArgCheck(*this, "divide").f32(out, "out", n).f32(a, "a", n).f32(b, "b", n);
  gpu::divide(stream_, f(out), f(a), f(b), n);
}

void CudaBackend::adalora_importance(const Tensor& ipt, const Tensor& unc, const Tensor& params,
                                     const Tensor& grads, double beta1, double beta2,
                                     double grad_scale) {
  bind();
  const std::int64_t n = params.defined() ? params.numel() : 0;
  gpu::ArgCheck(*this, "adalora_importance")
      .f32(params, "params", n)
      .f32(ipt, "ipt", n)
      .f32(unc, "unc", n)
      .f32(grads, "grads", n);
  gpu::adalora_importance(stream_, f(ipt), f(unc), f(params), f(grads), n,
                          static_cast<float>(beta1), static_cast<float>(beta2),
                          static_cast<float>(grad_scale));
}

void CudaBackend::zero_below(const Tensor& x, double threshold) {
  bind();
  const std::int64_t n = x.defined() ? x.numel() : 0;
  gpu::ArgCheck(*this, "zero_below").f32(x, "x", n);
  gpu::zero_below(stream_, f(x), n, static_cast<float>(threshold));
}

void CudaBackend::adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
                        const AdamWStep& s) {
  bind();
  const std::int64_t n = params.defined() ? params.numel() : 0;
  gpu::ArgCheck(*this, "adamw")
      .f32(params, "params", n)
      .f32(grads, "grads", n)
      .f32(m, "m", n)
      .f32(v, "v", n);
  // The constants exactly as core/cpu/adamw.cpp computes them for float.
  const float lr = static_cast<float>(s.lr);
  const float bc1 = static_cast<float>(1.0 - std::pow(s.beta1, static_cast<double>(s.step)));
  gpu::AdamWConstants c{};
  c.beta1 = static_cast<float>(s.beta1);
  c.beta2 = static_cast<float>(s.beta2);
  c.bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(s.beta2, static_cast<double>(s.step))));
  c.eps = static_cast<float>(s.eps);
  c.decay = static_cast<float>(1.0 - s.lr * s.weight_decay);
  c.grad_scale = static_cast<float>(s.grad_scale);
  c.step_size = lr / bc1;
  gpu::adamw(stream_, f(params), f(grads), f(m), f(v), n, c);
}

}  // namespace lwb

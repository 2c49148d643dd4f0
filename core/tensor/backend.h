#pragma once
// Backend: memory and every numerical op the engine runs, behind one interface
// so the CPU reference and the CUDA backend are interchangeable and can be
// compared op by op (tests/core/test_ops.cpp, tests/gpu/).
//
// Conventions (after llm.c):
//  - Row-major. "n" is the number of token rows (B*T); a row of an activation is
//    one token. Shapes are given in each comment as [rows, cols].
//  - Forward ops overwrite their outputs.
//  - Backward ops overwrite activation gradients (=) except where marked (+=):
//    parameter gradients always accumulate (+=), and so does the gradient of the
//    residual stream, which several paths feed.
//  - Every float tensor of one op call has the same dtype (F32 in training; the
//    CPU backend also runs F64 for finite-difference checks). Two exceptions
//    serve bf16 frozen weights (model.frozen_dtype): gemm takes one BF16
//    operand A or B beside F32 ones, and copy widens a BF16 tensor into F32.
//  - Tensor arguments are views; `const` applies to the view, not to the data.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/tensor/tensor.h"

namespace lwb {

struct AttentionShape {
  std::int64_t B = 0, T = 0;  // batch rows, tokens per row
  int heads = 0, kv_heads = 0, head_dim = 0;
  std::int64_t rows() const { return B * T; }
};

// Attention of query rows over a K/V cache (inference). The cache holds
// `sequences` sequences of up to `capacity` positions each: k_cache, v_cache
// [sequences * capacity, kv_heads*head_dim], position p of sequence b in row
// b * capacity + p.
struct CachedAttentionShape {
  std::int64_t n = 0;  // query rows
  int heads = 0, kv_heads = 0, head_dim = 0;
  std::int64_t sequences = 0, capacity = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string name() const = 0;  // "cpu", "cuda:0 (NVIDIA H200)"
  virtual Device device() const = 0;

  // ---- memory -------------------------------------------------------------
  // Throws OutOfMemoryError with the requested and free byte counts.
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void release(void* ptr, std::size_t bytes) = 0;
  virtual std::size_t allocated_bytes() const = 0;  // live bytes made by allocate()
  // Free memory of the device (physical RAM for the CPU); 0 if unknown.
  virtual std::size_t device_free_bytes() const = 0;
  virtual std::size_t device_total_bytes() const = 0;
  virtual void upload(const Tensor& dst, const void* host_src, std::size_t bytes) = 0;
  virtual void download(void* host_dst, const Tensor& src, std::size_t bytes) = 0;
  // Same shape and dtype, or a BF16 src widened (exactly) into an F32 dst.
  virtual void copy(const Tensor& dst, const Tensor& src) = 0;
  virtual void fill(const Tensor& dst, double value) = 0;
  virtual void synchronize() = 0;

  // ---- dense algebra --------------------------------------------------------
  // C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, op = transpose or not.
  // C is F32/F64; one of A, B may be BF16 with the rest F32. How the mixed
  // product is formed is the backend's: the CPU widens the BF16 operand to
  // fp32 (exact products of the rounded weight), CUDA rounds the fp32 operand
  // to bf16 too and runs bf16 x bf16 -> fp32 (as torch's bf16 autocast).
  virtual void gemm(bool trans_a, bool trans_b, std::int64_t M, std::int64_t N, std::int64_t K,
                    double alpha, const Tensor& A, std::int64_t lda, const Tensor& B,
                    std::int64_t ldb, double beta, const Tensor& C, std::int64_t ldc) = 0;
  // Sizes the conversion scratch a mixed gemm needs for BF16 operands of up
  // to max_bf16_elems elements meeting fp32 operands of up to max_f32_elems,
  // so the step loop never allocates. Returns the bytes the scratch holds for
  // it (the model records them in the ledger as workspace).
  virtual std::size_t reserve_mixed_gemm(std::int64_t max_bf16_elems, std::int64_t max_f32_elems) = 0;
  // out = a + b (elementwise, same numel). out may alias a or b.
  virtual void add(const Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // y += alpha * x
  virtual void axpy(const Tensor& y, double alpha, const Tensor& x) = 0;
  virtual void scale(const Tensor& x, double alpha) = 0;
  virtual double sum(const Tensor& x) = 0;
  virtual double sum_squares(const Tensor& x) = 0;

  // ---- transformer ops ------------------------------------------------------
  // out[n,C] = table[tokens[i], :]; tokens I32 [n].
  virtual void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& table,
                                 std::int64_t n, std::int64_t C) = 0;
  // dtable[tokens[i], :] += dout[i, :]
  virtual void embedding_backward(const Tensor& dtable, const Tensor& tokens, const Tensor& dout,
                                  std::int64_t n, std::int64_t C) = 0;

  // out = x * rstd * w, rstd[i] = 1/sqrt(mean(x[i]^2) + eps); x, out [n,C], w [C].
  virtual void rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x,
                               const Tensor& w, std::int64_t n, std::int64_t C, double eps) = 0;
  // dx (+=, residual stream), dw (+=; skipped when undefined).
  virtual void rmsnorm_backward(const Tensor& dx, const Tensor& dw, const Tensor& dout,
                                const Tensor& x, const Tensor& w, const Tensor& rstd,
                                std::int64_t n, std::int64_t C) = 0;

  // In-place rotary embedding in HF LLaMA layout (dimension j pairs with
  // j + head_dim/2). x [n, heads*head_dim], token i at position i % T.
  // table [T_max, head_dim]: cos in the first half, sin in the second.
  virtual void rope_forward(const Tensor& x, const Tensor& table, std::int64_t n, std::int64_t T,
                            int heads, int head_dim) = 0;
  // Gradient through the rotation: rotates dx back, in place.
  virtual void rope_backward(const Tensor& dx, const Tensor& table, std::int64_t n,
                             std::int64_t T, int heads, int head_dim) = 0;

  // Causal attention with grouped KV heads; query head h reads kv head
  // h / (heads / kv_heads). q, out [n, heads*head_dim]; k, v [n, kv_heads*head_dim];
  // lse [B, heads, T] = log-sum-exp of each softmax row (scaled scores), kept for
  // the backward, which recomputes the probabilities instead of storing S x S.
  virtual void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q,
                                 const Tensor& k, const Tensor& v, const AttentionShape& s,
                                 const Tensor& workspace) = 0;
  // dq, dk, dv (=).
  virtual void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                  const Tensor& dout, const Tensor& q, const Tensor& k,
                                  const Tensor& v, const Tensor& out, const Tensor& lse,
                                  const AttentionShape& s, const Tensor& workspace) = 0;
  // Scratch bytes the two calls above need (in the dtype's elements * size).
  virtual std::size_t attention_workspace_bytes(const AttentionShape& s, DType dtype) const = 0;

  // h = silu(gate) * up, all [n, I].
  virtual void swiglu_forward(const Tensor& h, const Tensor& gate, const Tensor& up,
                              std::int64_t numel) = 0;
  // dgate, dup (=).
  virtual void swiglu_backward(const Tensor& dgate, const Tensor& dup, const Tensor& dh,
                               const Tensor& gate, const Tensor& up, std::int64_t numel) = 0;

  // losses[i] = -log softmax(logits[i])[targets[i]], 0 where targets[i] < 0.
  // With dlogits defined: dlogits[i] = (softmax(logits[i]) - onehot) * scale for
  // scored rows, 0 for ignored rows. dlogits may alias logits.
  virtual void cross_entropy(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                             const Tensor& targets, std::int64_t n, std::int64_t V,
                             double scale) = 0;
  // ids[i] = argmax_j logits[i, j] (lowest index on ties); ids I32 [n].
  virtual void argmax_rows(const Tensor& ids, const Tensor& logits, std::int64_t n,
                           std::int64_t V) = 0;

  // out = x * keep / (1 - p), keep ~ Bernoulli(1 - p) drawn from a counter-based
  // hash of (seed, i), so every backend draws the same mask.
  virtual void dropout_forward(const Tensor& out, const Tensor& x, double p, std::uint64_t seed,
                               std::int64_t numel) = 0;
  // dx (+=) = dout * keep / (1 - p) with the same mask.
  virtual void dropout_backward(const Tensor& dx, const Tensor& dout, double p,
                                std::uint64_t seed, std::int64_t numel) = 0;

  // ---- adapter variants (DoRA, AdaLoRA, ReLoRA) ---------------------------------
  // norms[i] = ||X[i, :]||_2; X [rows, cols].
  virtual void row_norms(const Tensor& norms, const Tensor& X, std::int64_t rows,
                         std::int64_t cols) = 0;
  // out[i, j] = x[i, j] * s[j] (s has cols entries); out may alias x.
  virtual void scale_columns(const Tensor& out, const Tensor& x, const Tensor& s,
                             std::int64_t rows, std::int64_t cols) = 0;
  // out[i, j] = x[i, j] * s[i] (s has rows entries); out may alias x.
  virtual void scale_rows(const Tensor& out, const Tensor& x, const Tensor& s, std::int64_t rows,
                          std::int64_t cols) = 0;
  // dot[j] += alpha * sum_i a[i, j] * b[i, j] and scaled[i, j] = a[i, j] * s[j],
  // in one pass over a: the backward of a column scale y = v * s needs both,
  // ds from dy and v, and dv = dy * s. scaled may alias a or b.
  virtual void column_dot_scale(const Tensor& dot, const Tensor& scaled, const Tensor& a,
                                const Tensor& b, const Tensor& s, std::int64_t rows, std::int64_t cols,
                                double alpha) = 0;
  // out = a * b and out = a / b elementwise (same numel); out may alias either.
  virtual void multiply(const Tensor& out, const Tensor& a, const Tensor& b) = 0;
  virtual void divide(const Tensor& out, const Tensor& a, const Tensor& b) = 0;
  // AdaLoRA sensitivity: I = |p * g * grad_scale|, ipt = b1 ipt + (1 - b1) I,
  // unc = b2 unc + (1 - b2) |I - ipt| (with the new ipt). All same numel.
  virtual void adalora_importance(const Tensor& ipt, const Tensor& unc, const Tensor& params,
                                  const Tensor& grads, double beta1, double beta2,
                                  double grad_scale) = 0;
  // x[i] = 0 where |x[i]| <= threshold (ReLoRA's magnitude pruning of moments).
  virtual void zero_below(const Tensor& x, double threshold) = 0;

  // ---- inference (forward only) ----------------------------------------------------
  // dst[rows[i], :] = src[i, :] for i < n: the inverse of embedding_forward's
  // gather, for writing K/V rows into a cache. rows I32 [n], distinct, each
  // below dst's row count; src [n, C].
  virtual void scatter_rows(const Tensor& dst, const Tensor& rows, const Tensor& src, std::int64_t n,
                            std::int64_t C) = 0;
  // out[i] = softmax(q[i] K^T / sqrt(head_dim)) V over keys 0..positions[i] of
  // cached sequence sequences[i] (causal by position: a row's own key must
  // already be in the cache), per head with grouped KV heads as
  // attention_forward. q, out [n, heads*head_dim]; sequences, positions I32
  // [n], positions[i] < capacity. Rows may belong to different sequences in
  // any order (a batch decoding one token each, several prompts prefilled
  // together, or both).
  virtual void attention_cached(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                                const Tensor& v_cache, const Tensor& sequences, const Tensor& positions,
                                const CachedAttentionShape& s, const Tensor& workspace) = 0;
  virtual std::size_t attention_cached_workspace_bytes(const CachedAttentionShape& s,
                                                       DType dtype) const = 0;

  // ---- optimiser --------------------------------------------------------------
  struct AdamWStep {
    double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
    std::int64_t step = 1;    // 1-based, for bias correction
    double grad_scale = 1.0;  // folds global-norm clipping into the update
  };
  // Decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW:
  // p -= lr*wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
  // p -= lr * mhat / (sqrt(vhat) + eps). All four tensors same numel.
  virtual void adamw(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
                     const AdamWStep& step) = 0;
};

}  // namespace lwb

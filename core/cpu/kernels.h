#pragma once
// The CPU reference kernels, templated on the element type so the same code
// runs in float (training) and double (finite-difference checks). Pointer
// conventions and overwrite/accumulate rules are those of core/tensor/backend.h.
#include <cstddef>
#include <cstdint>

#include "core/tensor/backend.h"

namespace lwb::cpu {

template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, T alpha, const T* A,
          std::int64_t lda, const T* B, std::int64_t ldb, T beta, T* C, std::int64_t ldc);

template <class T>
void add(T* out, const T* a, const T* b, std::int64_t n);
template <class T>
void axpy(T* y, T alpha, const T* x, std::int64_t n);
template <class T>
void scale(T* x, T alpha, std::int64_t n);
template <class T>
double sum(const T* x, std::int64_t n);
template <class T>
double sum_squares(const T* x, std::int64_t n);

template <class T>
void embedding_forward(T* out, const std::int32_t* tokens, const T* table, std::int64_t n,
                       std::int64_t C);
template <class T>
void embedding_backward(T* dtable, const std::int32_t* tokens, const T* dout, std::int64_t n,
                        std::int64_t C);
template <class T>
void scatter_rows(T* dst, const std::int32_t* rows, const T* src, std::int64_t n, std::int64_t C);

template <class T>
void rmsnorm_forward(T* out, T* rstd, const T* x, const T* w, std::int64_t n, std::int64_t C,
                     double eps);
template <class T>
void rmsnorm_backward(T* dx, T* dw, const T* dout, const T* x, const T* w, const T* rstd,
                      std::int64_t n, std::int64_t C);

template <class T>
void rope(T* x, const T* table, std::int64_t n, std::int64_t T_, int heads, int head_dim,
          bool inverse);

template <class T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v,
                       const AttentionShape& s, T* workspace);
template <class T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const AttentionShape& s, T* workspace);
std::size_t attention_workspace_elems(const AttentionShape& s, int threads);
template <class T>
void attention_cached(T* out, const T* q, const T* k_cache, const T* v_cache,
                      const std::int32_t* sequences, const std::int32_t* positions,
                      const CachedAttentionShape& s, T* workspace);
std::size_t attention_cached_workspace_elems(const CachedAttentionShape& s, int threads);

template <class T>
void swiglu_forward(T* h, const T* gate, const T* up, std::int64_t n);
template <class T>
void swiglu_backward(T* dgate, T* dup, const T* dh, const T* gate, const T* up, std::int64_t n);

template <class T>
void cross_entropy(T* losses, T* dlogits, const T* logits, const std::int32_t* targets,
                   std::int64_t n, std::int64_t V, double scale);
template <class T>
void argmax_rows(std::int32_t* ids, const T* logits, std::int64_t n, std::int64_t V);

template <class T>
void dropout_forward(T* out, const T* x, double p, std::uint64_t seed, std::int64_t n);
template <class T>
void dropout_backward(T* dx, const T* dout, double p, std::uint64_t seed, std::int64_t n);

template <class T>
void row_norms(T* norms, const T* X, std::int64_t rows, std::int64_t cols);
template <class T>
void scale_columns(T* out, const T* x, const T* s, std::int64_t rows, std::int64_t cols);
template <class T>
void scale_rows(T* out, const T* x, const T* s, std::int64_t rows, std::int64_t cols);
template <class T>
void column_dot_scale(T* dot, T* scaled, const T* a, const T* b, const T* s, std::int64_t rows,
                      std::int64_t cols, T alpha);
template <class T>
void multiply(T* out, const T* a, const T* b, std::int64_t n);
template <class T>
void divide(T* out, const T* a, const T* b, std::int64_t n);
template <class T>
void adalora_importance(T* ipt, T* unc, const T* p, const T* g, std::int64_t n, T beta1, T beta2,
                        T grad_scale);
template <class T>
void zero_below(T* x, std::int64_t n, T threshold);

template <class T>
void adamw(T* params, const T* grads, T* m, T* v, std::int64_t n, const Backend::AdamWStep& s);

}  // namespace lwb::cpu

// Causal grouped-query attention on the CPU, FlashAttention-style in what it
// keeps: the forward stores only the output and each softmax row's log-sum-exp;
// the backward recomputes the probabilities block by block. Work is split over
// (batch row, kv head) so the heads that share a kv head accumulate dK and dV
// in one thread, without races. Query rows are processed in blocks of kRowBlock
// and each block only multiplies against the keys it can see, which skips most
// of the masked upper triangle; in fp32 the block products skip what is left
// of it a tile at a time (attention_gemm.h). A task writes its kv head's K
// (and in the backward V) transposed once, so that every product reads its
// right-hand side by rows.
//
// Cached attention (inference) reads keys from a K/V cache instead: the query
// rows are cut into blocks of consecutive positions of one sequence (a prompt's
// rows in a prefill, a single row per sequence in a decode step), and each
// block runs the same causal block computation with its first position as the
// offset of the block's first row.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/cpu/attention_gemm.h"
#include "core/cpu/fast_exp.h"
#include "core/cpu/kernels.h"

namespace lwb::cpu {

namespace {
constexpr std::int64_t kRowBlock = 64;

struct Layout {
  std::int64_t T, q_ld, kv_ld;  // row strides (elements) of q/out and k/v
  int hd, group;
  double scale;
  explicit Layout(const AttentionShape& s)
      : T(s.T),
        q_ld(static_cast<std::int64_t>(s.heads) * s.head_dim),
        kv_ld(static_cast<std::int64_t>(s.kv_heads) * s.head_dim),
        hd(s.head_dim),
        group(s.heads / s.kv_heads),
        scale(1.0 / std::sqrt(static_cast<double>(s.head_dim))) {}
};

// P[rows, keys] = softmax over visible keys of scale * Q K^T, from a known lse
// (backward) or computing it (forward, lse_out != nullptr).
template <class T>
void causal_probabilities(T* P, std::int64_t r0, std::int64_t rows, std::int64_t keys,
                          const T* lse_in, T* lse_out) {
  for (std::int64_t i = 0; i < rows; ++i) {
    T* p = P + i * keys;
    const std::int64_t visible = r0 + i + 1;
    T lse;
    if (lse_out) {
      T mx = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : mx)
      for (std::int64_t j = 0; j < visible; ++j) mx = std::max(mx, p[j]);
      T z = 0;
#pragma omp simd reduction(+ : z)
      for (std::int64_t j = 0; j < visible; ++j) z += fast_exp(p[j] - mx);
      lse = mx + std::log(z);
      lse_out[i] = lse;
    } else {
      lse = lse_in[i];
    }
#pragma omp simd
    for (std::int64_t j = 0; j < visible; ++j) p[j] = fast_exp(p[j] - lse);
    for (std::int64_t j = visible; j < keys; ++j) p[j] = 0;
  }
}

// C = beta C + alpha op(A) B for one block: fp32 through the block kernel,
// fp64 (the gradient checks') through BLAS, which computes what the skipped
// tiles would hold as well.
void block_product(bool ta, std::int64_t M, std::int64_t N, std::int64_t K, float alpha, const float* A,
                   std::int64_t lda, const float* B, std::int64_t ldb, float beta, float* C, std::int64_t ldc,
                   CausalSkip skip, std::int64_t offset) {
  attention_block_gemm(ta, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, skip, offset);
}
void block_product(bool ta, std::int64_t M, std::int64_t N, std::int64_t K, double alpha, const double* A,
                   std::int64_t lda, const double* B, std::int64_t ldb, double beta, double* C, std::int64_t ldc,
                   CausalSkip, std::int64_t) {
  gemm<double>(ta, false, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// dst[d, t] = src[t, d] for t < rows, d < hd: a kv head's keys or values
// [rows, hd] (row stride ld) as [hd, rows]. In tiles of 8 x 8, so that both
// sides move whole cache lines; element by element the writes, a row apart,
// cost as much as a block product.
template <class T>
void transpose_head(T* dst, const T* src, std::int64_t rows, std::int64_t ld, int hd) {
  constexpr std::int64_t kTile = 8;
  for (std::int64_t t0 = 0; t0 < rows; t0 += kTile)
    for (std::int64_t d0 = 0; d0 < hd; d0 += kTile) {
      const std::int64_t t1 = std::min(rows, t0 + kTile), d1 = std::min<std::int64_t>(hd, d0 + kTile);
      for (std::int64_t d = d0; d < d1; ++d)
        for (std::int64_t t = t0; t < t1; ++t) dst[d * rows + t] = src[t * ld + d];
    }
}

// Per thread: probabilities and their gradient for one block of query rows,
// then K^T and V^T of one kv head.
std::size_t workspace_per_thread(const AttentionShape& s) {
  return static_cast<std::size_t>(2 * kRowBlock + 2 * s.head_dim) * static_cast<std::size_t>(s.T);
}
}  // namespace

std::size_t attention_workspace_elems(const AttentionShape& s, int threads) {
  return static_cast<std::size_t>(threads) * workspace_per_thread(s);
}

template <class T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v,
                       const AttentionShape& s, T* workspace) {
  const Layout L(s);
  const std::int64_t tasks = s.B * s.kv_heads;
#pragma omp parallel for schedule(static)
  for (std::int64_t task = 0; task < tasks; ++task) {
    T* P = workspace + static_cast<std::size_t>(omp_get_thread_num()) * workspace_per_thread(s);
    T* kt = P + 2 * kRowBlock * L.T;
    const std::int64_t b = task / s.kv_heads;
    const int kvh = static_cast<int>(task % s.kv_heads);
    const T* kb = k + b * L.T * L.kv_ld + kvh * L.hd;
    const T* vb = v + b * L.T * L.kv_ld + kvh * L.hd;
    transpose_head(kt, kb, L.T, L.kv_ld, L.hd);
    for (int h = kvh * L.group; h < (kvh + 1) * L.group; ++h) {
      const T* qb = q + b * L.T * L.q_ld + h * L.hd;
      T* ob = out + b * L.T * L.q_ld + h * L.hd;
      T* lse_bh = lse + (b * s.heads + h) * L.T;
      for (std::int64_t r0 = 0; r0 < L.T; r0 += kRowBlock) {
        const std::int64_t rows = std::min(kRowBlock, L.T - r0);
        const std::int64_t keys = r0 + rows;
        block_product(false, rows, keys, L.hd, T(L.scale), qb + r0 * L.q_ld, L.q_ld, kt, L.T, T(0), P, keys,
                      CausalSkip::Columns, r0);
        causal_probabilities<T>(P, r0, rows, keys, nullptr, lse_bh + r0);
        block_product(false, rows, L.hd, keys, T(1), P, keys, vb, L.kv_ld, T(0), ob + r0 * L.q_ld, L.q_ld,
                      CausalSkip::InnerUpTo, r0);
      }
    }
  }
}

// With P = softmax(S), S = scale Q K^T, O = P V and upstream dO:
// dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)), dQ = scale dS K,
// dK = scale dS^T Q.
template <class T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* q, const T* k, const T* v,
                        const T* out, const T* lse, const AttentionShape& s, T* workspace) {
  const Layout L(s);
  const std::int64_t tasks = s.B * s.kv_heads;
#pragma omp parallel for schedule(static)
  for (std::int64_t task = 0; task < tasks; ++task) {
    T* P = workspace + static_cast<std::size_t>(omp_get_thread_num()) * workspace_per_thread(s);
    T* dP = P + kRowBlock * L.T;
    T* kt = dP + kRowBlock * L.T;
    T* vt = kt + L.hd * L.T;
    const std::int64_t b = task / s.kv_heads;
    const int kvh = static_cast<int>(task % s.kv_heads);
    const T* kb = k + b * L.T * L.kv_ld + kvh * L.hd;
    const T* vb = v + b * L.T * L.kv_ld + kvh * L.hd;
    T* dkb = dk + b * L.T * L.kv_ld + kvh * L.hd;
    T* dvb = dv + b * L.T * L.kv_ld + kvh * L.hd;
    transpose_head(kt, kb, L.T, L.kv_ld, L.hd);
    transpose_head(vt, vb, L.T, L.kv_ld, L.hd);
    for (std::int64_t t = 0; t < L.T; ++t)
      for (int d = 0; d < L.hd; ++d) dkb[t * L.kv_ld + d] = dvb[t * L.kv_ld + d] = 0;
    for (int h = kvh * L.group; h < (kvh + 1) * L.group; ++h) {
      const std::int64_t qoff = b * L.T * L.q_ld + h * L.hd;
      const T* lse_bh = lse + (b * s.heads + h) * L.T;
      for (std::int64_t r0 = 0; r0 < L.T; r0 += kRowBlock) {
        const std::int64_t rows = std::min(kRowBlock, L.T - r0);
        const std::int64_t keys = r0 + rows;
        const T* qr = q + qoff + r0 * L.q_ld;
        const T* dor = dout + qoff + r0 * L.q_ld;
        const T* orow = out + qoff + r0 * L.q_ld;
        block_product(false, rows, keys, L.hd, T(L.scale), qr, L.q_ld, kt, L.T, T(0), P, keys,
                      CausalSkip::Columns, r0);
        causal_probabilities<T>(P, r0, rows, keys, lse_bh + r0, nullptr);
        block_product(true, keys, L.hd, rows, T(1), P, keys, dor, L.q_ld, T(1), dvb, L.kv_ld,
                      CausalSkip::InnerFrom, r0);
        block_product(false, rows, keys, L.hd, T(1), dor, L.q_ld, vt, L.T, T(0), dP, keys,
                      CausalSkip::Columns, r0);
        // dP beyond a row's visible keys may not have been computed: its
        // dS is zero, written rather than derived from it.
        for (std::int64_t i = 0; i < rows; ++i) {
          T D = 0;
#pragma omp simd reduction(+ : D)
          for (int d = 0; d < L.hd; ++d) D += dor[i * L.q_ld + d] * orow[i * L.q_ld + d];
          T* dpi = dP + i * keys;
          const T* pi = P + i * keys;
          const std::int64_t visible = r0 + i + 1;
#pragma omp simd
          for (std::int64_t j = 0; j < visible; ++j) dpi[j] = pi[j] * (dpi[j] - D);
          for (std::int64_t j = visible; j < keys; ++j) dpi[j] = 0;
        }
        block_product(false, rows, L.hd, keys, T(L.scale), dP, keys, kb, L.kv_ld, T(0),
                      dq + qoff + r0 * L.q_ld, L.q_ld, CausalSkip::InnerUpTo, r0);
        block_product(true, keys, L.hd, rows, T(L.scale), dP, keys, qr, L.q_ld, T(1), dkb, L.kv_ld,
                      CausalSkip::InnerFrom, r0);
      }
    }
  }
}

std::size_t attention_cached_workspace_elems(const CachedAttentionShape& s, int threads) {
  // Per thread: the probabilities of one block of query rows over a whole sequence.
  return static_cast<std::size_t>(threads) * kRowBlock *
         static_cast<std::size_t>(s.capacity);
}

template <class T>
void attention_cached(T* out, const T* q, const T* k_cache, const T* v_cache,
                      const std::int32_t* sequences, const std::int32_t* positions,
                      const CachedAttentionShape& s, T* workspace) {
  const std::int64_t q_ld = static_cast<std::int64_t>(s.heads) * s.head_dim;
  const std::int64_t kv_ld = static_cast<std::int64_t>(s.kv_heads) * s.head_dim;
  const int hd = s.head_dim, group = s.heads / s.kv_heads;
  const T scale = T(1.0 / std::sqrt(static_cast<double>(hd)));
  // A block starts every kRowBlock rows and wherever the run of one
  // sequence's consecutive positions breaks.
  auto starts_block = [&](std::int64_t i) {
    return i % kRowBlock == 0 || sequences[i] != sequences[i - 1] || positions[i] != positions[i - 1] + 1;
  };
  const std::int64_t tasks = s.n * s.kv_heads;
#pragma omp parallel for schedule(dynamic)
  for (std::int64_t task = 0; task < tasks; ++task) {
    const std::int64_t i0 = task / s.kv_heads;
    const int kvh = static_cast<int>(task % s.kv_heads);
    if (!starts_block(i0)) continue;
    std::int64_t rows = 1;
    while (i0 + rows < s.n && !starts_block(i0 + rows)) ++rows;
    const std::int64_t p0 = positions[i0], keys = p0 + rows;
    const std::int64_t first_row = static_cast<std::int64_t>(sequences[i0]) * s.capacity;
    const T* kb = k_cache + first_row * kv_ld + kvh * hd;
    const T* vb = v_cache + first_row * kv_ld + kvh * hd;
    T* P = workspace + static_cast<std::size_t>(omp_get_thread_num()) * kRowBlock * s.capacity;
    T lse[kRowBlock];
    for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
      const std::int64_t off = i0 * q_ld + h * hd;
      gemm<T>(false, true, rows, keys, hd, scale, q + off, q_ld, kb, kv_ld, T(0), P, keys);
      causal_probabilities<T>(P, p0, rows, keys, nullptr, lse);
      gemm<T>(false, false, rows, hd, keys, T(1), P, keys, vb, kv_ld, T(0), out + off, q_ld);
    }
  }
}

template void attention_cached<float>(float*, const float*, const float*, const float*,
                                      const std::int32_t*, const std::int32_t*,
                                      const CachedAttentionShape&, float*);
template void attention_cached<double>(double*, const double*, const double*, const double*,
                                       const std::int32_t*, const std::int32_t*,
                                       const CachedAttentionShape&, double*);
template void attention_forward<float>(float*, float*, const float*, const float*, const float*,
                                       const AttentionShape&, float*);
template void attention_forward<double>(double*, double*, const double*, const double*,
                                        const double*, const AttentionShape&, double*);
template void attention_backward<float>(float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*, const float*,
                                        const AttentionShape&, float*);
template void attention_backward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*,
                                         const double*, const AttentionShape&, double*);

}  // namespace lwb::cpu

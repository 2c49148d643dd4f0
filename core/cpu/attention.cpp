// Causal grouped-query attention on the CPU, FlashAttention-style in what it
// keeps: the forward stores only the output and each softmax row's log-sum-exp;
// the backward recomputes the probabilities block by block. Work is split over
// (batch row, kv head) so the heads that share a kv head accumulate dK and dV
// in one thread, without races. Query rows are processed in blocks of kRowBlock
// and each block only multiplies against the keys it can see, which skips most
// of the masked upper triangle.
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
}  // namespace

std::size_t attention_workspace_elems(const AttentionShape& s, int threads) {
  // Per thread: probabilities and their gradient for one block of query rows.
  return static_cast<std::size_t>(threads) * 2 * kRowBlock *
         static_cast<std::size_t>(s.T);
}

template <class T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v,
                       const AttentionShape& s, T* workspace) {
  const Layout L(s);
  const std::int64_t tasks = s.B * s.kv_heads;
#pragma omp parallel for schedule(static)
  for (std::int64_t task = 0; task < tasks; ++task) {
    T* P = workspace + static_cast<std::size_t>(omp_get_thread_num()) * 2 * kRowBlock * L.T;
    const std::int64_t b = task / s.kv_heads;
    const int kvh = static_cast<int>(task % s.kv_heads);
    const T* kb = k + b * L.T * L.kv_ld + kvh * L.hd;
    const T* vb = v + b * L.T * L.kv_ld + kvh * L.hd;
    for (int h = kvh * L.group; h < (kvh + 1) * L.group; ++h) {
      const T* qb = q + b * L.T * L.q_ld + h * L.hd;
      T* ob = out + b * L.T * L.q_ld + h * L.hd;
      T* lse_bh = lse + (b * s.heads + h) * L.T;
      for (std::int64_t r0 = 0; r0 < L.T; r0 += kRowBlock) {
        const std::int64_t rows = std::min(kRowBlock, L.T - r0);
        const std::int64_t keys = r0 + rows;
        gemm<T>(false, true, rows, keys, L.hd, T(L.scale), qb + r0 * L.q_ld, L.q_ld, kb, L.kv_ld,
                T(0), P, keys);
        causal_probabilities<T>(P, r0, rows, keys, nullptr, lse_bh + r0);
        gemm<T>(false, false, rows, L.hd, keys, T(1), P, keys, vb, L.kv_ld, T(0),
                ob + r0 * L.q_ld, L.q_ld);
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
    T* P = workspace + static_cast<std::size_t>(omp_get_thread_num()) * 2 * kRowBlock * L.T;
    T* dP = P + kRowBlock * L.T;
    const std::int64_t b = task / s.kv_heads;
    const int kvh = static_cast<int>(task % s.kv_heads);
    const T* kb = k + b * L.T * L.kv_ld + kvh * L.hd;
    const T* vb = v + b * L.T * L.kv_ld + kvh * L.hd;
    T* dkb = dk + b * L.T * L.kv_ld + kvh * L.hd;
    T* dvb = dv + b * L.T * L.kv_ld + kvh * L.hd;
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
        gemm<T>(false, true, rows, keys, L.hd, T(L.scale), qr, L.q_ld, kb, L.kv_ld, T(0), P, keys);
        causal_probabilities<T>(P, r0, rows, keys, lse_bh + r0, nullptr);
        gemm<T>(true, false, keys, L.hd, rows, T(1), P, keys, dor, L.q_ld, T(1), dvb, L.kv_ld);
        gemm<T>(false, true, rows, keys, L.hd, T(1), dor, L.q_ld, vb, L.kv_ld, T(0), dP, keys);
        for (std::int64_t i = 0; i < rows; ++i) {
          T D = 0;
#pragma omp simd reduction(+ : D)
          for (int d = 0; d < L.hd; ++d) D += dor[i * L.q_ld + d] * orow[i * L.q_ld + d];
          T* dpi = dP + i * keys;
          const T* pi = P + i * keys;
#pragma omp simd
          for (std::int64_t j = 0; j < keys; ++j) dpi[j] = pi[j] * (dpi[j] - D);
        }
        gemm<T>(false, false, rows, L.hd, keys, T(L.scale), dP, keys, kb, L.kv_ld, T(0),
                dq + qoff + r0 * L.q_ld, L.q_ld);
        gemm<T>(true, false, keys, L.hd, rows, T(L.scale), dP, keys, qr, L.q_ld, T(1), dkb,
                L.kv_ld);
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

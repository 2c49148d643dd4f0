// Attention of query rows over a K/V cache (inference; core/cpu/attention.cpp's
// attention_cached is the reference). One block of kThreadsCached threads per
// (query row, head): the row's keys 0..position of its sequence are visited in
// tiles of one key per thread, with the online softmax of FlashAttention
// (running maximum and sum, the output rescaled per tile). Each thread holds
// two of the head's dimensions (head_dim <= 256). Keys are summed in a fixed
// order, so results are deterministic. A decode step has few rows and many
// keys; a prefill re-reads each key once per query row, which the cache's
// fp32 rows in L2 make affordable at the context lengths the chat runs.
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

constexpr int kThreadsCached = 128;
static_assert(2 * kThreadsCached >= kAttentionMaxHeadDim, "two dimensions per thread");

struct CachedDims {
  int heads, kv_heads, hd;
  i64 capacity;
  float scale;
};

__global__ void __launch_bounds__(kThreadsCached)
    attention_cached_kernel(float* out, const float* q, const float* k_cache, const float* v_cache,
                            const std::int32_t* sequences, const std::int32_t* positions, CachedDims dm) {
  LWB_SHARED(float, qs, [kAttentionMaxHeadDim]);
  LWB_SHARED(float, ps, [kThreadsCached]);
  LWB_SHARED(float, red, [32]);
  const i64 i = blockIdx.x;
  const int h = blockIdx.y, tid = threadIdx.x, hd = dm.hd;
  const int kvh = h / (dm.heads / dm.kv_heads);
  const i64 q_ld = static_cast<i64>(dm.heads) * hd, kv_ld = static_cast<i64>(dm.kv_heads) * hd;
  const float* qrow = q + i * q_ld + static_cast<i64>(h) * hd;
  for (int d = tid; d < hd; d += kThreadsCached) qs[d] = qrow[d];
  const i64 first_row = static_cast<i64>(sequences[i]) * dm.capacity;
  const float* kb = k_cache + first_row * kv_ld + static_cast<i64>(kvh) * hd;
  const float* vb = v_cache + first_row * kv_ld + static_cast<i64>(kvh) * hd;
  const int keys = positions[i] + 1;
  const int d0 = tid, d1 = tid + kThreadsCached;
  float o0 = 0.0f, o1 = 0.0f, m = -INFINITY, l = 0.0f;
  __syncthreads();  // qs is complete

  for (int c0 = 0; c0 < keys; c0 += kThreadsCached) {
    const int j = c0 + tid;
    float score = -INFINITY;
    if (j < keys) {
      const float* krow = kb + static_cast<i64>(j) * kv_ld;
      float dot = 0.0f;
      for (int d = 0; d < hd; ++d) dot += qs[d] * krow[d];
      score = dot * dm.scale;
    }
    // Key c0 is always visible, so the tile maximum is finite.
    const float m_new = fmaxf(m, block_max(score, red));
    const float p = j < keys ? expf(score - m_new) : 0.0f;
    ps[tid] = p;
    const float psum = block_sum(p, red);  // its barriers also publish ps
    const float alpha = m == -INFINITY ? 0.0f : expf(m - m_new);
    l = l * alpha + psum;
    m = m_new;
    o0 *= alpha;
    o1 *= alpha;
    const int tile = min(kThreadsCached, keys - c0);
    for (int jj = 0; jj < tile; ++jj) {
      const float pj = ps[jj];
      const float* vrow = vb + static_cast<i64>(c0 + jj) * kv_ld;
      if (d0 < hd) o0 += pj * vrow[d0];
      if (d1 < hd) o1 += pj * vrow[d1];
    }
    __syncthreads();  // ps is read by every thread before the next tile writes it
  }
  float* orow = out + i * q_ld + static_cast<i64>(h) * hd;
  const float inv = 1.0f / l;
  if (d0 < hd) orow[d0] = o0 * inv;
  if (d1 < hd) orow[d1] = o1 * inv;
}

}  // namespace

void attention_cached(cudaStream_t s, float* out, const float* q, const float* k_cache,
                      const float* v_cache, const std::int32_t* sequences,
                      const std::int32_t* positions, i64 n, int heads, int kv_heads, int head_dim,
                      i64 capacity) {
  if (n <= 0) return;
  const CachedDims dm{heads, kv_heads, head_dim, capacity,
                      1.0f / sqrtf(static_cast<float>(head_dim))};
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(heads));
  LWB_LAUNCH(attention_cached_kernel, grid, kThreadsCached, 0, s)
  (out, q, k_cache, v_cache, sequences, positions, dm);
  LWB_LAUNCH_CHECK(s, "attention_cached_kernel");
}

}  // namespace lwb::gpu

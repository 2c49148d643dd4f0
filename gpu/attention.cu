// Causal grouped-query attention, FlashAttention-2 style, fp32 throughout.
// Nothing of size T x T is stored: the forward keeps the output and the
// log-sum-exp of each softmax row (lse [B, H, T]); the backward recomputes the
// probabilities tile by tile from lse.
//
// Tiles are 32 query rows x 32 keys, 128 threads per block. Thread t owns
// tile row t / 4 ("row") and, of that row, the keys quad + 4 kk (kk < 8) and
// the head dimensions quad + 4 k (k < DPT), quad = t % 4: the four threads of
// a row are adjacent lanes of one warp, so row maxima and sums are two
// shuffles. Shared rows are padded to head_dim + 1 floats (no bank conflicts).
//
// Kernels:
//  forward  grid (T/32, H, B): online softmax over the key tiles 0..row tile.
//  dot      D[b,h,i] = sum_d dO * O (the rowsum term of the softmax backward).
//  dq       grid (T/32, H, B): loops over key tiles <= the query tile,
//           dQ = scale * dS K, written once (=).
//  dkv      grid (T/32, KVH, B): a block owns one key tile of one kv head and
//           loops, in order, over every query head of its group and every query
//           tile at or after the key tile: dV = P^T dO, dK = scale dS^T Q,
//           accumulated in registers and written once (=). The heads sharing a
//           kv head are serialised in one block, so no atomics: deterministic.
// With P = exp(scale q.k - lse), dP = dO V^T, dS = P (dP - D).
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

constexpr int kTile = 32;  // query rows per tile = keys per tile
constexpr int kAttnThreads = 128;
constexpr int kKeysPerThread = kTile / 4;

struct Dims {
  int T, H, KVH, hd;
  float scale;
};

__device__ __forceinline__ void load_tile(float* dst, const float* src, i64 row_stride, int r0,
                                          int T, int hd) {
  const int ld = hd + 1;
  for (int idx = threadIdx.x; idx < kTile * hd; idx += kAttnThreads) {
    const int r = idx / hd, d = idx - r * hd;
    const int t = r0 + r;
    dst[r * ld + d] = t < T ? src[static_cast<i64>(t) * row_stride + d] : 0.0f;
  }
}

template <int DPT>
__global__ void __launch_bounds__(kAttnThreads)
    attention_forward_kernel(float* out, float* lse, const float* q, const float* k, const float* v,
                             Dims dm) {
  LWB_DYNAMIC_SHARED(float, smem);
  const int T = dm.T, hd = dm.hd, ld = hd + 1;
  float* Qs = smem;
  float* Ks = Qs + kTile * ld;
  float* Vs = Ks + kTile * ld;
  float* Ps = Vs + kTile * ld;  // [kTile][kTile + 1]

  const int tid = threadIdx.x, row = tid >> 2, quad = tid & 3;
  const int r0 = blockIdx.x * kTile, h = blockIdx.y;
  const i64 b = blockIdx.z;
  const int kvh = h / (dm.H / dm.KVH);
  const i64 q_ld = static_cast<i64>(dm.H) * hd, kv_ld = static_cast<i64>(dm.KVH) * hd;
  const float* qb = q + b * T * q_ld + static_cast<i64>(h) * hd;
  const float* kb = k + b * T * kv_ld + static_cast<i64>(kvh) * hd;
  const float* vb = v + b * T * kv_ld + static_cast<i64>(kvh) * hd;

  load_tile(Qs, qb, q_ld, r0, T, hd);
  const int i = r0 + row;
  const bool row_valid = i < T;
  float o[DPT];
#pragma unroll
  for (int kx = 0; kx < DPT; ++kx) o[kx] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  const int kv_end = min(T, r0 + kTile);
  for (int c0 = 0; c0 < kv_end; c0 += kTile) {
    __syncthreads();  // the previous tile's K, V, P are no longer read
    load_tile(Ks, kb, kv_ld, c0, T, hd);
    load_tile(Vs, vb, kv_ld, c0, T, hd);
    __syncthreads();

    float s[kKeysPerThread];
#pragma unroll
    for (int kk = 0; kk < kKeysPerThread; ++kk) s[kk] = 0.0f;
    for (int d = 0; d < hd; ++d) {
      const float qv = Qs[row * ld + d];
#pragma unroll
      for (int kk = 0; kk < kKeysPerThread; ++kk) s[kk] += qv * Ks[(quad + 4 * kk) * ld + d];
    }
    float tile_max = -INFINITY;
#pragma unroll
    for (int kk = 0; kk < kKeysPerThread; ++kk) {
      const int j = c0 + quad + 4 * kk;
      s[kk] = (row_valid && j <= i) ? s[kk] * dm.scale : -INFINITY;
      tile_max = fmaxf(tile_max, s[kk]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
    const float m_new = fmaxf(m, tile_max);
    float psum = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kKeysPerThread; ++kk) {
      const float p = s[kk] == -INFINITY ? 0.0f : expf(s[kk] - m_new);
      Ps[row * (kTile + 1) + quad + 4 * kk] = p;
      psum += p;
    }
    psum += __shfl_xor_sync(0xffffffffu, psum, 1);
    psum += __shfl_xor_sync(0xffffffffu, psum, 2);
    const float alpha = m == -INFINITY ? 0.0f : expf(m - m_new);
    l = l * alpha + psum;
    m = m_new;
    __syncwarp();  // the row's P (written by its four lanes) is visible
#pragma unroll
    for (int kx = 0; kx < DPT; ++kx) o[kx] *= alpha;
    for (int jj = 0; jj < kTile; ++jj) {
      const float p = Ps[row * (kTile + 1) + jj];
#pragma unroll
      for (int kx = 0; kx < DPT; ++kx) {
        const int d = quad + 4 * kx;
        if (d < hd) o[kx] += p * Vs[jj * ld + d];
      }
    }
  }
  if (!row_valid) return;
  const float inv = 1.0f / l;
  float* ob = out + (b * T + i) * q_ld + static_cast<i64>(h) * hd;
#pragma unroll
  for (int kx = 0; kx < DPT; ++kx) {
    const int d = quad + 4 * kx;
    if (d < hd) ob[d] = o[kx] * inv;
  }
  if (quad == 0) lse[(b * dm.H + h) * T + i] = m + logf(l);
}

// D[(b*H + h)*T + t] = sum_d dout[b,t,h,d] * out[b,t,h,d]; one warp per (token row, head).
__global__ void attention_dot_kernel(float* D, const float* dout, const float* out, i64 rows,
                                     Dims dm) {
  const i64 w = (static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (w >= rows * dm.H) return;
  const i64 n = w / dm.H;
  const int h = static_cast<int>(w - n * dm.H);
  const i64 off = n * dm.H * static_cast<i64>(dm.hd) + static_cast<i64>(h) * dm.hd;
  float acc = 0.0f;
  for (int d = lane; d < dm.hd; d += 32) acc += dout[off + d] * out[off + d];
  acc = warp_sum(acc);
  if (lane == 0) {
    const i64 b = n / dm.T, t = n - b * dm.T;
    D[(b * dm.H + h) * dm.T + t] = acc;
  }
}

template <int DPT>
__global__ void __launch_bounds__(kAttnThreads)
    attention_dq_kernel(float* dq, const float* dout, const float* q, const float* k,
                        const float* v, const float* lse, const float* D, Dims dm) {
  LWB_DYNAMIC_SHARED(float, smem);
  const int T = dm.T, hd = dm.hd, ld = hd + 1;
  float* Qs = smem;
  float* dOs = Qs + kTile * ld;
  float* Ks = dOs + kTile * ld;
  float* Vs = Ks + kTile * ld;
  float* dSs = Vs + kTile * ld;  // [kTile][kTile + 1]

  const int tid = threadIdx.x, row = tid >> 2, quad = tid & 3;
  const int r0 = blockIdx.x * kTile, h = blockIdx.y;
  const i64 b = blockIdx.z;
  const int kvh = h / (dm.H / dm.KVH);
  const i64 q_ld = static_cast<i64>(dm.H) * hd, kv_ld = static_cast<i64>(dm.KVH) * hd;
  const i64 q_off = b * T * q_ld + static_cast<i64>(h) * hd;
  const float* kb = k + b * T * kv_ld + static_cast<i64>(kvh) * hd;
  const float* vb = v + b * T * kv_ld + static_cast<i64>(kvh) * hd;

  load_tile(Qs, q + q_off, q_ld, r0, T, hd);
  load_tile(dOs, dout + q_off, q_ld, r0, T, hd);
  const int i = r0 + row;
  const bool row_valid = i < T;
  const i64 stat = (b * dm.H + h) * T + i;
  const float lse_i = row_valid ? lse[stat] : 0.0f;
  const float D_i = row_valid ? D[stat] : 0.0f;
  float acc[DPT];
#pragma unroll
  for (int kx = 0; kx < DPT; ++kx) acc[kx] = 0.0f;

  const int kv_end = min(T, r0 + kTile);
  for (int c0 = 0; c0 < kv_end; c0 += kTile) {
    __syncthreads();
    load_tile(Ks, kb, kv_ld, c0, T, hd);
    load_tile(Vs, vb, kv_ld, c0, T, hd);
    __syncthreads();

    float s[kKeysPerThread], dp[kKeysPerThread];
#pragma unroll
    for (int kk = 0; kk < kKeysPerThread; ++kk) s[kk] = dp[kk] = 0.0f;
    for (int d = 0; d < hd; ++d) {
      const float qv = Qs[row * ld + d], gv = dOs[row * ld + d];
#pragma unroll
      for (int kk = 0; kk < kKeysPerThread; ++kk) {
        const int jr = quad + 4 * kk;
        s[kk] += qv * Ks[jr * ld + d];
        dp[kk] += gv * Vs[jr * ld + d];
      }
    }
#pragma unroll
    for (int kk = 0; kk < kKeysPerThread; ++kk) {
      const int j = c0 + quad + 4 * kk;
      const float p = (row_valid && j <= i) ? expf(s[kk] * dm.scale - lse_i) : 0.0f;
      dSs[row * (kTile + 1) + quad + 4 * kk] = p * (dp[kk] - D_i);
    }
    __syncwarp();
    for (int jj = 0; jj < kTile; ++jj) {
      const float ds = dSs[row * (kTile + 1) + jj];
#pragma unroll
      for (int kx = 0; kx < DPT; ++kx) {
        const int d = quad + 4 * kx;
        if (d < hd) acc[kx] += ds * Ks[jj * ld + d];
      }
    }
  }
  if (!row_valid) return;
  float* dqr = dq + q_off + static_cast<i64>(i) * q_ld;
#pragma unroll
  for (int kx = 0; kx < DPT; ++kx) {
    const int d = quad + 4 * kx;
    if (d < hd) dqr[d] = acc[kx] * dm.scale;
  }
}

template <int DPT>
__global__ void __launch_bounds__(kAttnThreads)
    attention_dkv_kernel(float* dk, float* dv, const float* dout, const float* q, const float* k,
                         const float* v, const float* lse, const float* D, Dims dm) {
  LWB_DYNAMIC_SHARED(float, smem);
  const int T = dm.T, hd = dm.hd, ld = hd + 1;
  float* Ks = smem;
  float* Vs = Ks + kTile * ld;
  float* Qs = Vs + kTile * ld;
  float* dOs = Qs + kTile * ld;
  float* Ps = dOs + kTile * ld;  // [key][query], kTile x (kTile + 1)
  float* dSs = Ps + kTile * (kTile + 1);
  float* lse_s = dSs + kTile * (kTile + 1);
  float* D_s = lse_s + kTile;

  const int tid = threadIdx.x, krow = tid >> 2, quad = tid & 3;
  const int c0 = blockIdx.x * kTile, kvh = blockIdx.y;
  const i64 b = blockIdx.z;
  const int group = dm.H / dm.KVH;
  const i64 q_ld = static_cast<i64>(dm.H) * hd, kv_ld = static_cast<i64>(dm.KVH) * hd;
  const i64 kv_off = b * T * kv_ld + static_cast<i64>(kvh) * hd;

  load_tile(Ks, k + kv_off, kv_ld, c0, T, hd);
  load_tile(Vs, v + kv_off, kv_ld, c0, T, hd);
  const int j = c0 + krow;
  const bool key_valid = j < T;
  float dk_acc[DPT], dv_acc[DPT];
#pragma unroll
  for (int kx = 0; kx < DPT; ++kx) dk_acc[kx] = dv_acc[kx] = 0.0f;

  for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
    const i64 q_off = b * T * q_ld + static_cast<i64>(h) * hd;
    const float* lse_bh = lse + (b * dm.H + h) * T;
    const float* D_bh = D + (b * dm.H + h) * T;
    // Query tiles that can see this key tile: rows >= c0 (tiles are aligned).
    for (int r0 = c0; r0 < T; r0 += kTile) {
      __syncthreads();  // previous Q, dO, P, dS no longer read
      load_tile(Qs, q + q_off, q_ld, r0, T, hd);
      load_tile(dOs, dout + q_off, q_ld, r0, T, hd);
      if (tid < kTile) {
        const int t = r0 + tid;
        lse_s[tid] = t < T ? lse_bh[t] : 0.0f;
        D_s[tid] = t < T ? D_bh[t] : 0.0f;
      }
      __syncthreads();

      float s[kKeysPerThread], dp[kKeysPerThread];
#pragma unroll
      for (int kk = 0; kk < kKeysPerThread; ++kk) s[kk] = dp[kk] = 0.0f;
      for (int d = 0; d < hd; ++d) {
        const float kv = Ks[krow * ld + d], vv = Vs[krow * ld + d];
#pragma unroll
        for (int kk = 0; kk < kKeysPerThread; ++kk) {
          const int ir = quad + 4 * kk;
          s[kk] += kv * Qs[ir * ld + d];
          dp[kk] += vv * dOs[ir * ld + d];
        }
      }
#pragma unroll
      for (int kk = 0; kk < kKeysPerThread; ++kk) {
        const int ir = quad + 4 * kk;
        const int i = r0 + ir;
        const float p = (key_valid && i < T && i >= j) ? expf(s[kk] * dm.scale - lse_s[ir]) : 0.0f;
        Ps[krow * (kTile + 1) + ir] = p;
        dSs[krow * (kTile + 1) + ir] = p * (dp[kk] - D_s[ir]);
      }
      __syncwarp();
      for (int ii = 0; ii < kTile; ++ii) {
        const float p = Ps[krow * (kTile + 1) + ii];
        const float ds = dSs[krow * (kTile + 1) + ii];
#pragma unroll
        for (int kx = 0; kx < DPT; ++kx) {
          const int d = quad + 4 * kx;
          if (d < hd) {
            dv_acc[kx] += p * dOs[ii * ld + d];
            dk_acc[kx] += ds * Qs[ii * ld + d];
          }
        }
      }
    }
  }
  if (!key_valid) return;
  float* dkr = dk + kv_off + static_cast<i64>(j) * kv_ld;
  float* dvr = dv + kv_off + static_cast<i64>(j) * kv_ld;
#pragma unroll
  for (int kx = 0; kx < DPT; ++kx) {
    const int d = quad + 4 * kx;
    if (d < hd) {
      dkr[d] = dk_acc[kx] * dm.scale;
      dvr[d] = dv_acc[kx];
    }
  }
}

std::size_t forward_smem(int hd) {
  return (3 * kTile * static_cast<std::size_t>(hd + 1) + kTile * (kTile + 1)) * sizeof(float);
}
std::size_t dq_smem(int hd) {
  return (4 * kTile * static_cast<std::size_t>(hd + 1) + kTile * (kTile + 1)) * sizeof(float);
}
std::size_t dkv_smem(int hd) {
  return (4 * kTile * static_cast<std::size_t>(hd + 1) + 2 * kTile * (kTile + 1) + 2 * kTile) *
         sizeof(float);
}

template <class Kernel>
void allow_smem(Kernel kernel, std::size_t bytes) {
  if (bytes > 48 * 1024)
    LWB_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
}

template <int DPT>
void forward_impl(cudaStream_t s, float* out, float* lse, const float* q, const float* k,
                  const float* v, i64 B, const Dims& dm) {
  const dim3 grid(static_cast<unsigned>((dm.T + kTile - 1) / kTile), dm.H,
                  static_cast<unsigned>(B));
  const std::size_t smem = forward_smem(dm.hd);
  allow_smem(attention_forward_kernel<DPT>, smem);
  LWB_LAUNCH(attention_forward_kernel<DPT>, grid, kAttnThreads, smem, s)(out, lse, q, k, v, dm);
  LWB_LAUNCH_CHECK(s, "attention_forward_kernel");
}

template <int DPT>
void backward_impl(cudaStream_t s, float* dq, float* dk, float* dv, const float* dout,
                   const float* q, const float* k, const float* v, const float* lse, const float* D,
                   i64 B, const Dims& dm) {
  const unsigned tiles = static_cast<unsigned>((dm.T + kTile - 1) / kTile);
  const std::size_t smem_q = dq_smem(dm.hd), smem_kv = dkv_smem(dm.hd);
  allow_smem(attention_dq_kernel<DPT>, smem_q);
  allow_smem(attention_dkv_kernel<DPT>, smem_kv);
  LWB_LAUNCH(attention_dq_kernel<DPT>, dim3(tiles, dm.H, static_cast<unsigned>(B)), kAttnThreads,
             smem_q, s)
  (dq, dout, q, k, v, lse, D, dm);
  LWB_LAUNCH_CHECK(s, "attention_dq_kernel");
  LWB_LAUNCH(attention_dkv_kernel<DPT>, dim3(tiles, dm.KVH, static_cast<unsigned>(B)), kAttnThreads,
             smem_kv, s)
  (dk, dv, dout, q, k, v, lse, D, dm);
  LWB_LAUNCH_CHECK(s, "attention_dkv_kernel");
}

// The smallest dims-per-thread (head_dim <= 4 * DPT) instantiation covering hd.
int dpt_for(int hd) { return hd <= 16 ? 4 : hd <= 32 ? 8 : hd <= 64 ? 16 : hd <= 128 ? 32 : 64; }

Dims make_dims(i64 T, int heads, int kv_heads, int head_dim) {
  return Dims{static_cast<int>(T), heads, kv_heads, head_dim,
              static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)))};
}

}  // namespace

void attention_forward(cudaStream_t s, float* out, float* lse, const float* q, const float* k,
                       const float* v, i64 B, i64 T, int heads, int kv_heads, int head_dim) {
  if (B <= 0 || T <= 0 || heads <= 0) return;
  const Dims dm = make_dims(T, heads, kv_heads, head_dim);
  switch (dpt_for(head_dim)) {
    case 4: forward_impl<4>(s, out, lse, q, k, v, B, dm); break;
    case 8: forward_impl<8>(s, out, lse, q, k, v, B, dm); break;
    case 16: forward_impl<16>(s, out, lse, q, k, v, B, dm); break;
    case 32: forward_impl<32>(s, out, lse, q, k, v, B, dm); break;
    default: forward_impl<64>(s, out, lse, q, k, v, B, dm); break;
  }
}

void attention_backward(cudaStream_t s, float* dq, float* dk, float* dv, const float* dout,
                        const float* q, const float* k, const float* v, const float* out,
                        const float* lse, i64 B, i64 T, int heads, int kv_heads, int head_dim,
                        float* D) {
  if (B <= 0 || T <= 0 || heads <= 0) return;
  const Dims dm = make_dims(T, heads, kv_heads, head_dim);
  const i64 rows = B * T;
  const i64 warps = rows * heads;
  const int per_block = kThreads / 32;
  LWB_LAUNCH(attention_dot_kernel, static_cast<unsigned>((warps + per_block - 1) / per_block),
             kThreads, 0, s)
  (D, dout, out, rows, dm);
  LWB_LAUNCH_CHECK(s, "attention_dot_kernel");
  switch (dpt_for(head_dim)) {
    case 4: backward_impl<4>(s, dq, dk, dv, dout, q, k, v, lse, D, B, dm); break;
    case 8: backward_impl<8>(s, dq, dk, dv, dout, q, k, v, lse, D, B, dm); break;
    case 16: backward_impl<16>(s, dq, dk, dv, dout, q, k, v, lse, D, B, dm); break;
    case 32: backward_impl<32>(s, dq, dk, dv, dout, q, k, v, lse, D, B, dm); break;
    default: backward_impl<64>(s, dq, dk, dv, dout, q, k, v, lse, D, B, dm); break;
  }
}

}  // namespace lwb::gpu

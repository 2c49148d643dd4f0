// Fused softmax cross-entropy (forward and backward in one kernel, llm.c's
// fused classifier) and greedy argmax (core/cpu/loss.cpp). One block per row.
#include <climits>

#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

// Both kernels run with up to 1024 threads a block (row_threads), so ptxas
// must keep them within 64 registers a thread: __launch_bounds__(1024).
//
// dlogits may alias logits: every element is read (max, sum, target) before
// the block passes a barrier, and afterwards each thread rewrites only the
// elements it reads.
__global__ void __launch_bounds__(1024)
    cross_entropy_kernel(float* losses, float* dlogits, const float* logits,
                         const std::int32_t* targets, i64 V, float scale) {
  LWB_SHARED(float, shared, [32]);
  const i64 row = blockIdx.x;
  const std::int32_t t = targets[row];
  float* di = dlogits ? dlogits + row * V : nullptr;
  if (t < 0) {  // ignored row (uniform over the block)
    if (threadIdx.x == 0) losses[row] = 0.0f;
    if (di)
      for (i64 j = threadIdx.x; j < V; j += blockDim.x) di[j] = 0.0f;
    return;
  }
  const float* li = logits + row * V;
  float mx = -INFINITY;
  for (i64 j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, li[j]);
  mx = block_max(mx, shared);
  float z = 0.0f;
  for (i64 j = threadIdx.x; j < V; j += blockDim.x) z += expf(li[j] - mx);
  z = block_sum(z, shared);
  const float log_z = mx + logf(z);
  const float target_logit = li[t];
  __syncthreads();  // li[t] read by all before its owner overwrites it
  if (threadIdx.x == 0) losses[row] = log_z - target_logit;
  if (!di) return;
  for (i64 j = threadIdx.x; j < V; j += blockDim.x) {
    float d = expf(li[j] - log_z) * scale;
    if (j == t) d -= scale;
    di[j] = d;
  }
}

__global__ void __launch_bounds__(1024)
    argmax_rows_kernel(std::int32_t* ids, const float* logits, i64 V) {
  LWB_SHARED(float, best_v, [1024]);
  LWB_SHARED(i64, best_i, [1024]);
  const i64 row = blockIdx.x;
  const float* li = logits + row * V;
  const int tid = threadIdx.x;
  float bv = -INFINITY;
  i64 bi = LLONG_MAX;
  if (tid < V) {
    bv = li[tid];
    bi = tid;
    for (i64 j = tid + blockDim.x; j < V; j += blockDim.x)
      if (li[j] > bv) {
        bv = li[j];
        bi = j;
      }
  }
  best_v[tid] = bv;
  best_i[tid] = bi;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (tid < stride) {
      const float ov = best_v[tid + stride];
      const i64 oi = best_i[tid + stride];
      if (ov > best_v[tid] || (ov == best_v[tid] && oi < best_i[tid])) {
        best_v[tid] = ov;
        best_i[tid] = oi;
      }
    }
    __syncthreads();
  }
  if (tid == 0) ids[row] = static_cast<std::int32_t>(best_i[0] == LLONG_MAX ? 0 : best_i[0]);
}

int row_threads(i64 V) { return V >= 8192 ? 1024 : (V >= 1024 ? 512 : 128); }

}  // namespace

void cross_entropy(cudaStream_t s, float* losses, float* dlogits, const float* logits,
                   const std::int32_t* targets, i64 n, i64 V, float scale) {
  if (n <= 0) return;
  LWB_LAUNCH(cross_entropy_kernel, static_cast<unsigned>(n), row_threads(V), 0, s)
  (losses, dlogits, logits, targets, V, scale);
  LWB_LAUNCH_CHECK(s, "cross_entropy_kernel");
}

void argmax_rows(cudaStream_t s, std::int32_t* ids, const float* logits, i64 n, i64 V) {
  if (n <= 0) return;
  LWB_LAUNCH(argmax_rows_kernel, static_cast<unsigned>(n), row_threads(V), 0, s)(ids, logits, V);
  LWB_LAUNCH_CHECK(s, "argmax_rows_kernel");
}

}  // namespace lwb::gpu

// sum and sum_squares: a deterministic two-pass reduction in double.
// Pass 1: a block count that depends on n only (never on the device), each
// thread a grid-stride sum in double, a fixed-order tree per block. Pass 2: one
// block adds the partial sums in a fixed tree. Same input => same bits.
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

constexpr int kReduceThreads = 256;
constexpr int kElemsPerThread = 16;

__device__ double block_sum_double(double v, double* shared) {
  const int tid = threadIdx.x;
  shared[tid] = v;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (tid < stride) shared[tid] += shared[tid + stride];
    __syncthreads();
  }
  return shared[0];
}

template <bool kSquares>
__global__ void reduce_partial_kernel(const float* x, i64 n, double* partials) {
  LWB_SHARED(double, shared, [kReduceThreads]);
  double acc = 0.0;
  for (i64 i = global_index(); i < n; i += global_stride()) {
    const double v = static_cast<double>(x[i]);
    acc += kSquares ? v * v : v;
  }
  const double total = block_sum_double(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// Launched with kReduceMaxBlocks (1024) threads: at most 64 registers a thread.
__global__ void __launch_bounds__(kReduceMaxBlocks)
    reduce_final_kernel(const double* partials, int count, double* result) {
  LWB_SHARED(double, shared, [kReduceMaxBlocks]);
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  const double total = block_sum_double(acc, shared);
  if (threadIdx.x == 0) *result = total;
}

}  // namespace

void reduce_sum(cudaStream_t s, const float* x, i64 n, bool squares, double* partials,
                double* result) {
  if (n <= 0) {
    LWB_CUDA_CHECK(cudaMemsetAsync(result, 0, sizeof(double), s));
    return;
  }
  const i64 per_block = static_cast<i64>(kReduceThreads) * kElemsPerThread;
  const i64 want = (n + per_block - 1) / per_block;
  const int blocks = static_cast<int>(want < kReduceMaxBlocks ? want : kReduceMaxBlocks);
  if (squares)
    LWB_LAUNCH(reduce_partial_kernel<true>, blocks, kReduceThreads, 0, s)(x, n, partials);
  else
    LWB_LAUNCH(reduce_partial_kernel<false>, blocks, kReduceThreads, 0, s)(x, n, partials);
  LWB_LAUNCH_CHECK(s, "reduce_partial_kernel");
  LWB_LAUNCH(reduce_final_kernel, 1, kReduceMaxBlocks, 0, s)(partials, blocks, result);
  LWB_LAUNCH_CHECK(s, "reduce_final_kernel");
}

}  // namespace lwb::gpu

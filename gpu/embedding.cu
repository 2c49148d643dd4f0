// Token embedding (core/cpu/norm.cpp). The backward is parallel over columns
// with the rows visited in order inside each thread, exactly like the CPU
// loop: rows sharing a token add into the same table row without atomics, and
// every element receives its additions in the same order as on the CPU.
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

__global__ void embedding_forward_kernel(float* out, const std::int32_t* tokens, const float* table,
                                         i64 n, i64 C) {
  const i64 total = n * C;
  for (i64 idx = global_index(); idx < total; idx += global_stride()) {
    const i64 i = idx / C, c = idx - i * C;
    out[idx] = table[static_cast<i64>(tokens[i]) * C + c];
  }
}

__global__ void embedding_backward_kernel(float* dtable, const std::int32_t* tokens,
                                          const float* dout, i64 n, i64 C) {
  for (i64 c = global_index(); c < C; c += global_stride())
    for (i64 i = 0; i < n; ++i) dtable[static_cast<i64>(tokens[i]) * C + c] += dout[i * C + c];
}

}  // namespace

void embedding_forward(cudaStream_t s, float* out, const std::int32_t* tokens, const float* table,
                       i64 n, i64 C) {
  if (n <= 0 || C <= 0) return;
  LWB_LAUNCH(embedding_forward_kernel, grid_for(n * C), kThreads, 0, s)(out, tokens, table, n, C);
  LWB_LAUNCH_CHECK(s, "embedding_forward_kernel");
}

void embedding_backward(cudaStream_t s, float* dtable, const std::int32_t* tokens,
                        const float* dout, i64 n, i64 C) {
  if (n <= 0 || C <= 0) return;
  // Small blocks: C is the only parallelism, so spread it over many SMs.
  constexpr int kCols = 64;
  LWB_LAUNCH(embedding_backward_kernel, grid_for(C, kCols), kCols, 0, s)
  (dtable, tokens, dout, n, C);
  LWB_LAUNCH_CHECK(s, "embedding_backward_kernel");
}

}  // namespace lwb::gpu

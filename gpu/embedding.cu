// Token embedding (core/cpu/norm.cpp), and its inverse for writing K/V rows
// into a cache (scatter_rows). The backward is parallel over columns
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

__global__ void scatter_rows_kernel(float* dst, const std::int32_t* rows, const float* src, i64 n,
                                    i64 C) {
  const i64 total = n * C;
  for (i64 idx = global_index(); idx < total; idx += global_stride()) {
    const i64 i = idx / C, c = idx - i * C;
    dst[static_cast<i64>(rows[i]) * C + c] = src[idx];
  }
}

}  // namespace

void scatter_rows(cudaStream_t s, float* dst, const std::int32_t* rows, const float* src, i64 n,
                  i64 C) {
  if (n <= 0 || C <= 0) return;
  LWB_LAUNCH(scatter_rows_kernel, grid_for(n * C), kThreads, 0, s)(dst, rows, src, n, C);
  LWB_LAUNCH_CHECK(s, "scatter_rows_kernel");
}

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

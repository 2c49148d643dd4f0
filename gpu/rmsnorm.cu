// RMSNorm (core/cpu/norm.cpp), one warp per row: the row's sums in float over
// the warp's lanes, then a butterfly. dw is a column reduction
// (column_reduce.cu), deterministic.
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

constexpr int kRowsPerBlock = kThreads / 32;

__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* x, const float* w,
                                       i64 n, i64 C, float eps) {
  const i64 row = static_cast<i64>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= n) return;
  const float* xi = x + row * C;
  float ss = 0.0f;
  for (i64 c = lane; c < C; c += 32) ss += xi[c] * xi[c];
  ss = warp_sum(ss);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(C) + eps);
  if (lane == 0) rstd[row] = r;
  float* oi = out + row * C;
  for (i64 c = lane; c < C; c += 32) oi[c] = xi[c] * r * w[c];
}

// dx_c += r w_c g_c - x_c r^3 / C * sum_j(w_j g_j x_j)
__global__ void rmsnorm_backward_dx_kernel(float* dx, const float* dout, const float* x,
                                           const float* w, const float* rstd, i64 n, i64 C) {
  const i64 row = static_cast<i64>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= n) return;
  const float* xi = x + row * C;
  const float* gi = dout + row * C;
  const float r = rstd[row];
  float dot = 0.0f;
  for (i64 c = lane; c < C; c += 32) dot += w[c] * gi[c] * xi[c];
  dot = warp_sum(dot);
  const float k = dot * r * r * r / static_cast<float>(C);
  float* dxi = dx + row * C;
  for (i64 c = lane; c < C; c += 32) dxi[c] += r * w[c] * gi[c] - k * xi[c];
}

__global__ void row_norms_kernel(float* norms, const float* X, i64 rows, i64 cols) {
  const i64 row = static_cast<i64>(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const float* xi = X + row * cols;
  float ss = 0.0f;
  for (i64 c = lane; c < cols; c += 32) ss += xi[c] * xi[c];
  ss = warp_sum(ss);
  if (lane == 0) norms[row] = sqrtf(ss);
}

__global__ void scale_columns_kernel(float* out, const float* x, const float* sc, i64 rows,
                                     i64 cols) {
  const i64 total = rows * cols;
  for (i64 idx = global_index(); idx < total; idx += global_stride())
    out[idx] = x[idx] * sc[idx % cols];
}

__global__ void scale_rows_kernel(float* out, const float* x, const float* sc, i64 rows, i64 cols) {
  const i64 total = rows * cols;
  for (i64 idx = global_index(); idx < total; idx += global_stride())
    out[idx] = x[idx] * sc[idx / cols];
}

unsigned row_blocks(i64 rows) {
  return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

}  // namespace

void rmsnorm_forward(cudaStream_t s, float* out, float* rstd, const float* x, const float* w, i64 n,
                     i64 C, float eps) {
  if (n <= 0 || C <= 0) return;
  LWB_LAUNCH(rmsnorm_forward_kernel, row_blocks(n), kThreads, 0, s)(out, rstd, x, w, n, C, eps);
  LWB_LAUNCH_CHECK(s, "rmsnorm_forward_kernel");
}

void rmsnorm_backward_dx(cudaStream_t s, float* dx, const float* dout, const float* x,
                         const float* w, const float* rstd, i64 n, i64 C) {
  if (n <= 0 || C <= 0) return;
  LWB_LAUNCH(rmsnorm_backward_dx_kernel, row_blocks(n), kThreads, 0, s)(dx, dout, x, w, rstd, n, C);
  LWB_LAUNCH_CHECK(s, "rmsnorm_backward_dx_kernel");
}

void row_norms(cudaStream_t s, float* norms, const float* X, i64 rows, i64 cols) {
  if (rows <= 0) return;
  LWB_LAUNCH(row_norms_kernel, row_blocks(rows), kThreads, 0, s)(norms, X, rows, cols);
  LWB_LAUNCH_CHECK(s, "row_norms_kernel");
}

void scale_columns(cudaStream_t s, float* out, const float* x, const float* sc, i64 rows,
                   i64 cols) {
  if (rows <= 0 || cols <= 0) return;
  LWB_LAUNCH(scale_columns_kernel, grid_for(rows * cols), kThreads, 0, s)(out, x, sc, rows, cols);
  LWB_LAUNCH_CHECK(s, "scale_columns_kernel");
}

void scale_rows(cudaStream_t s, float* out, const float* x, const float* sc, i64 rows, i64 cols) {
  if (rows <= 0 || cols <= 0) return;
  LWB_LAUNCH(scale_rows_kernel, grid_for(rows * cols), kThreads, 0, s)(out, x, sc, rows, cols);
  LWB_LAUNCH_CHECK(s, "scale_rows_kernel");
}

}  // namespace lwb::gpu

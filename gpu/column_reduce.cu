// Column reductions out[c] += alpha * sum_i term(i, c) without atomics, so the
// result is the same on every run: kernel 1 sums fixed chunks of rows per
// column (32 columns x 8 row lanes per block, lanes combined in order), kernel
// 2 adds the chunks of each column in order. Used by rmsnorm's dw and by
// column_dot_scale (DoRA, VeRA, AdaLoRA). Accumulation in float, as the CPU reference.
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

constexpr int kColTile = 32;
constexpr int kRowLanes = 8;
constexpr i64 kMinChunkRows = 256;
constexpr i64 kMaxChunks = 65535;  // gridDim.y

i64 chunk_rows(i64 rows) {
  i64 r = kMinChunkRows;
  while ((rows + r - 1) / r > kMaxChunks) r *= 2;
  return r;
}

struct RmsnormDwTerm {
  const float* dout;
  const float* x;
  const float* rstd;
  i64 cols;
  __device__ float operator()(i64 i, i64 c) const {
    return dout[i * cols + c] * x[i * cols + c] * rstd[i];
  }
};

// The partial kernel visits each (i, c) once, so the scaled copy is written
// there, on the read of a the sum needs anyway; scaled may alias a or b,
// which are read first.
struct DotScaleTerm {
  float* scaled;
  const float* a;
  const float* b;
  const float* sc;
  i64 cols;
  __device__ float operator()(i64 i, i64 c) const {
    const float aic = a[i * cols + c], bic = b[i * cols + c];
    scaled[i * cols + c] = aic * sc[c];
    return aic * bic;
  }
};

template <class Term>
__global__ void column_partial_kernel(Term term, i64 rows, i64 cols, i64 chunk, float* partial) {
  LWB_SHARED(float, acc_s, [kRowLanes][kColTile]);
  const int tx = threadIdx.x, ty = threadIdx.y;
  const i64 c = static_cast<i64>(blockIdx.x) * kColTile + tx;
  const i64 r0 = static_cast<i64>(blockIdx.y) * chunk;
  const i64 r1 = r0 + chunk < rows ? r0 + chunk : rows;
  float acc = 0.0f;
  if (c < cols)
    for (i64 i = r0 + ty; i < r1; i += kRowLanes) acc += term(i, c);
  acc_s[ty][tx] = acc;
  __syncthreads();
  if (ty == 0 && c < cols) {
    float total = acc_s[0][tx];
#pragma unroll
    for (int k = 1; k < kRowLanes; ++k) total += acc_s[k][tx];
    partial[static_cast<i64>(blockIdx.y) * cols + c] = total;
  }
}

__global__ void column_finish_kernel(float* out, const float* partial, i64 chunks, i64 cols,
                                     float alpha) {
  for (i64 c = global_index(); c < cols; c += global_stride()) {
    float total = 0.0f;
    for (i64 k = 0; k < chunks; ++k) total += partial[k * cols + c];
    out[c] += alpha * total;
  }
}

template <class Term>
void launch_column_reduce(cudaStream_t s, float* out, Term term, i64 rows, i64 cols, float alpha,
                          float* scratch) {
  if (rows <= 0 || cols <= 0) return;
  const i64 chunk = chunk_rows(rows);
  const i64 chunks = (rows + chunk - 1) / chunk;
  const dim3 grid(static_cast<unsigned>((cols + kColTile - 1) / kColTile),
                  static_cast<unsigned>(chunks));
  LWB_LAUNCH(column_partial_kernel<Term>, grid, dim3(kColTile, kRowLanes), 0, s)
  (term, rows, cols, chunk, scratch);
  LWB_LAUNCH_CHECK(s, "column_partial_kernel");
  LWB_LAUNCH(column_finish_kernel, grid_for(cols), kThreads, 0, s)
  (out, scratch, chunks, cols, alpha);
  LWB_LAUNCH_CHECK(s, "column_finish_kernel");
}

}  // namespace

std::size_t column_reduce_scratch_elems(i64 rows, i64 cols) {
  if (rows <= 0 || cols <= 0) return 0;
  const i64 chunk = chunk_rows(rows);
  return static_cast<std::size_t>((rows + chunk - 1) / chunk) * static_cast<std::size_t>(cols);
}

void rmsnorm_dw(cudaStream_t s, float* dw, const float* dout, const float* x, const float* rstd,
                i64 rows, i64 cols, float* scratch) {
  launch_column_reduce(s, dw, RmsnormDwTerm{dout, x, rstd, cols}, rows, cols, 1.0f, scratch);
}

void column_dot_scale(cudaStream_t s, float* dot, float* scaled, const float* a, const float* b,
                      const float* sc, i64 rows, i64 cols, float alpha, float* scratch) {
  launch_column_reduce(s, dot, DotScaleTerm{scaled, a, b, sc, cols}, rows, cols, alpha, scratch);
}

}  // namespace lwb::gpu

#pragma once
// Kernel launchers (private header). Each gpu/*.cu file holds one op's
// kernels, forward and backward side by side, and the launchers declared
// here; gpu/*.cpp validate tensors and call them. Pointers are device
// pointers; every launcher enqueues on `stream`, returns at once, and checks
// the launch (LWB_LAUNCH_CHECK). Formulas and overwrite/accumulate rules are
// those of the CPU reference (core/cpu/*.cpp) and core/tensor/backend.h.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace lwb::gpu {

using i64 = std::int64_t;

// ---- elementwise.cu -----------------------------------------------------------
void fill_f32(cudaStream_t s, float* p, i64 n, float value);
void fill_f64(cudaStream_t s, double* p, i64 n, double value);
void fill_i32(cudaStream_t s, std::int32_t* p, i64 n, std::int32_t value);
void fill_u16(cudaStream_t s, std::uint16_t* p, i64 n, std::uint16_t bits);
void add(cudaStream_t s, float* out, const float* a, const float* b, i64 n);
void axpy(cudaStream_t s, float* y, float alpha, const float* x, i64 n);
void scale(cudaStream_t s, float* x, float alpha, i64 n);
void multiply(cudaStream_t s, float* out, const float* a, const float* b, i64 n);
void divide(cudaStream_t s, float* out, const float* a, const float* b, i64 n);
void zero_below(cudaStream_t s, float* x, i64 n, float threshold);
void adalora_importance(cudaStream_t s, float* ipt, float* unc, const float* p, const float* g,
                        i64 n, float beta1, float beta2, float grad_scale);
// dst[r * cols + c] = bf16(src[r * ld + c]), round to nearest even (convert.cu).
void f32_to_bf16_2d(cudaStream_t s, std::uint16_t* dst, const float* src, i64 rows, i64 cols,
                    i64 ld);
// dst[i] = float(src[i]) for bf16 bits src (exact).
void bf16_to_f32(cudaStream_t s, float* dst, const std::uint16_t* src, i64 n);

// ---- reduce.cu ------------------------------------------------------------------
// Deterministic two-pass sum (of x or x^2) in double: the block count depends
// on n only, partial sums are combined in a fixed tree. `partials` holds
// kReduceMaxBlocks doubles; the result lands in *result (device memory).
inline constexpr int kReduceMaxBlocks = 1024;
void reduce_sum(cudaStream_t s, const float* x, i64 n, bool squares, double* partials,
                double* result);

// ---- column_reduce.cu -------------------------------------------------------------
// out[c] += alpha * sum_i term(i, c), summed in float in a fixed order (row
// chunks, then chunks in order) whatever the device: deterministic.
std::size_t column_reduce_scratch_elems(i64 rows, i64 cols);
// term = dout[i, c] * x[i, c] * rstd[i]   (rmsnorm's dw)
void rmsnorm_dw(cudaStream_t s, float* dw, const float* dout, const float* x, const float* rstd,
                i64 rows, i64 cols, float* scratch);
// term = a[i, c] * b[i, c], and scaled[i, c] = a[i, c] * sc[c] on the same visit
void column_dot_scale(cudaStream_t s, float* dot, float* scaled, const float* a, const float* b,
                      const float* sc, i64 rows, i64 cols, float alpha, float* scratch);

// ---- embedding.cu -----------------------------------------------------------------
void embedding_forward(cudaStream_t s, float* out, const std::int32_t* tokens, const float* table,
                       i64 n, i64 C);
void embedding_backward(cudaStream_t s, float* dtable, const std::int32_t* tokens,
                        const float* dout, i64 n, i64 C);
// dst[rows[i], :] = src[i, :].
void scatter_rows(cudaStream_t s, float* dst, const std::int32_t* rows, const float* src, i64 n,
                  i64 C);

// ---- rmsnorm.cu --------------------------------------------------------------------
void rmsnorm_forward(cudaStream_t s, float* out, float* rstd, const float* x, const float* w, i64 n,
                     i64 C, float eps);
// dx += ... (the dw part is rmsnorm_dw above).
void rmsnorm_backward_dx(cudaStream_t s, float* dx, const float* dout, const float* x,
                         const float* w, const float* rstd, i64 n, i64 C);
// norms[i] = ||X[i, :]||_2 (variants.cu, same one-warp-per-row shape).
void row_norms(cudaStream_t s, float* norms, const float* X, i64 rows, i64 cols);
void scale_columns(cudaStream_t s, float* out, const float* x, const float* sc, i64 rows, i64 cols);
void scale_rows(cudaStream_t s, float* out, const float* x, const float* sc, i64 rows, i64 cols);

// ---- rope.cu --------------------------------------------------------------------------
void rope(cudaStream_t s, float* x, const float* table, i64 n, i64 T, int heads, int head_dim,
          bool inverse);

// ---- attention.cu ---------------------------------------------------------------------
inline constexpr int kAttentionMaxHeadDim = 256;
void attention_forward(cudaStream_t s, float* out, float* lse, const float* q, const float* k,
                       const float* v, i64 B, i64 T, int heads, int kv_heads, int head_dim);
// D: B * heads * T floats of workspace (rowsum(dout * out)).
void attention_backward(cudaStream_t s, float* dq, float* dk, float* dv, const float* dout,
                        const float* q, const float* k, const float* v, const float* out,
                        const float* lse, i64 B, i64 T, int heads, int kv_heads, int head_dim,
                        float* D);

// ---- attention_cached.cu --------------------------------------------------------------
// Query rows over a K/V cache [sequences * capacity, kv_heads * head_dim];
// row i attends keys 0..positions[i] of sequence sequences[i].
void attention_cached(cudaStream_t s, float* out, const float* q, const float* k_cache,
                      const float* v_cache, const std::int32_t* sequences,
                      const std::int32_t* positions, i64 n, int heads, int kv_heads, int head_dim,
                      i64 capacity);

// ---- swiglu.cu --------------------------------------------------------------------------
void swiglu_forward(cudaStream_t s, float* h, const float* gate, const float* up, i64 n);
void swiglu_backward(cudaStream_t s, float* dgate, float* dup, const float* dh, const float* gate,
                     const float* up, i64 n);

// ---- loss.cu ------------------------------------------------------------------------------
// dlogits may be null, and may equal logits.
void cross_entropy(cudaStream_t s, float* losses, float* dlogits, const float* logits,
                   const std::int32_t* targets, i64 n, i64 V, float scale);
void argmax_rows(cudaStream_t s, std::int32_t* ids, const float* logits, i64 n, i64 V);

// ---- dropout.cu ---------------------------------------------------------------------------
void dropout_forward(cudaStream_t s, float* out, const float* x, float p, float keep_scale,
                     std::uint64_t seed, i64 n);
void dropout_backward(cudaStream_t s, float* dx, const float* dout, float p, float keep_scale,
                      std::uint64_t seed, i64 n);

// ---- adamw.cu -----------------------------------------------------------------------------
// The constants of one step, computed on the host exactly as core/cpu/adamw.cpp does.
struct AdamWConstants {
  float beta1, beta2, bc2_sqrt, eps, decay, grad_scale, step_size;
};
void adamw(cudaStream_t s, float* params, const float* grads, float* m, float* v, i64 n,
           const AdamWConstants& c);

// ---- probe (device.cu) ---------------------------------------------------------------------
// cudaSuccess when this binary has a kernel image the current device can run.
cudaError_t kernel_image_available();

}  // namespace lwb::gpu

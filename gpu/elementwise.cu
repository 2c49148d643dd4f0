// Fills, elementwise arithmetic and the small per-element kernels of the
// adapter variants (core/cpu/elementwise.cpp, core/cpu/variants.cpp).
#include "gpu/common.cuh"

namespace lwb::gpu {

namespace {

template <class T>
__global__ void fill_kernel(T* p, i64 n, T value) {
  for (i64 i = global_index(); i < n; i += global_stride()) p[i] = value;
}

__global__ void add_kernel(float* out, const float* a, const float* b, i64 n) {
  for (i64 i = global_index(); i < n; i += global_stride()) out[i] = a[i] + b[i];
}

__global__ void axpy_kernel(float* y, float alpha, const float* x, i64 n) {
  for (i64 i = global_index(); i < n; i += global_stride()) y[i] += alpha * x[i];
}

__global__ void scale_kernel(float* x, float alpha, i64 n) {
  for (i64 i = global_index(); i < n; i += global_stride()) x[i] *= alpha;
}

__global__ void multiply_kernel(float* out, const float* a, const float* b, i64 n) {
  for (i64 i = global_index(); i < n; i += global_stride()) out[i] = a[i] * b[i];
}

__global__ void divide_kernel(float* out, const float* a, const float* b, i64 n) {
  for (i64 i = global_index(); i < n; i += global_stride()) out[i] = a[i] / b[i];
}

__global__ void zero_below_kernel(float* x, i64 n, float threshold) {
  for (i64 i = global_index(); i < n; i += global_stride())
    if (fabsf(x[i]) <= threshold) x[i] = 0.0f;
}

__global__ void adalora_importance_kernel(float* ipt, float* unc, const float* p, const float* g,
                                          i64 n, float beta1, float beta2, float grad_scale) {
  for (i64 i = global_index(); i < n; i += global_stride()) {
    const float I = fabsf(p[i] * g[i] * grad_scale);
    const float avg = beta1 * ipt[i] + (1.0f - beta1) * I;
    ipt[i] = avg;
    unc[i] = beta2 * unc[i] + (1.0f - beta2) * fabsf(I - avg);
  }
}

template <class T>
void launch_fill(cudaStream_t s, T* p, i64 n, T value) {
  if (n <= 0) return;
  LWB_LAUNCH(fill_kernel<T>, grid_for(n), kThreads, 0, s)(p, n, value);
  LWB_LAUNCH_CHECK(s, "fill_kernel");
}

}  // namespace

void fill_f32(cudaStream_t s, float* p, i64 n, float value) { launch_fill(s, p, n, value); }
void fill_f64(cudaStream_t s, double* p, i64 n, double value) { launch_fill(s, p, n, value); }
void fill_i32(cudaStream_t s, std::int32_t* p, i64 n, std::int32_t value) {
  launch_fill(s, p, n, value);
}
void fill_u16(cudaStream_t s, std::uint16_t* p, i64 n, std::uint16_t bits) {
  launch_fill(s, p, n, bits);
}

void add(cudaStream_t s, float* out, const float* a, const float* b, i64 n) {
  if (n <= 0) return;
  LWB_LAUNCH(add_kernel, grid_for(n), kThreads, 0, s)(out, a, b, n);
  LWB_LAUNCH_CHECK(s, "add_kernel");
}

void axpy(cudaStream_t s, float* y, float alpha, const float* x, i64 n) {
  if (n <= 0) return;
  LWB_LAUNCH(axpy_kernel, grid_for(n), kThreads, 0, s)(y, alpha, x, n);
  LWB_LAUNCH_CHECK(s, "axpy_kernel");
}

void scale(cudaStream_t s, float* x, float alpha, i64 n) {
  if (n <= 0) return;
  LWB_LAUNCH(scale_kernel, grid_for(n), kThreads, 0, s)(x, alpha, n);
  LWB_LAUNCH_CHECK(s, "scale_kernel");
}

void multiply(cudaStream_t s, float* out, const float* a, const float* b, i64 n) {
  if (n <= 0) return;
  LWB_LAUNCH(multiply_kernel, grid_for(n), kThreads, 0, s)(out, a, b, n);
  LWB_LAUNCH_CHECK(s, "multiply_kernel");
}

void divide(cudaStream_t s, float* out, const float* a, const float* b, i64 n) {
  if (n <= 0) return;
  LWB_LAUNCH(divide_kernel, grid_for(n), kThreads, 0, s)(out, a, b, n);
  LWB_LAUNCH_CHECK(s, "divide_kernel");
}

void zero_below(cudaStream_t s, float* x, i64 n, float threshold) {
  if (n <= 0) return;
  LWB_LAUNCH(zero_below_kernel, grid_for(n), kThreads, 0, s)(x, n, threshold);
  LWB_LAUNCH_CHECK(s, "zero_below_kernel");
}

void adalora_importance(cudaStream_t s, float* ipt, float* unc, const float* p, const float* g,
                        i64 n, float beta1, float beta2, float grad_scale) {
  if (n <= 0) return;
  LWB_LAUNCH(adalora_importance_kernel, grid_for(n), kThreads, 0, s)
  (ipt, unc, p, g, n, beta1, beta2, grad_scale);
  LWB_LAUNCH_CHECK(s, "adalora_importance_kernel");
}

}  // namespace lwb::gpu

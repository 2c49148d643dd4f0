// GEMM through cuBLAS. The engine is row-major, cuBLAS column-major: a
// row-major C[M,N] is the column-major C^T[N,M], and C^T = op(B)^T op(A)^T, so
// cuBLAS is called with the operands swapped (B first, dimensions N, M, K) and
// each operand's own transpose flag; the leading dimensions carry over as is.
//
// fp32 x fp32: CUBLAS_COMPUTE_32F (exact fp32 products, fp32 accumulation),
// or CUBLAS_COMPUTE_32F_FAST_TF32 when the backend was made with tf32.
// A bf16 operand (frozen weights): cuBLAS multiplies bf16 only with bf16, so
// the fp32 operand is rounded to bf16 (nearest even) into scratch and the
// product runs as bf16 x bf16 with fp32 accumulation and an fp32 C, as under
// PyTorch's bf16 autocast.
#include <cublas_v2.h>

#include <climits>
#include <string>

#include "gpu/cuda_backend_impl.h"
#include "gpu/cuda_check.h"
#include "gpu/kernels.h"
#include "gpu/tensor_checks.h"

namespace lwb {

namespace {

// Elements a row-major [rows, cols] matrix with leading dimension ld spans.
std::int64_t span(std::int64_t rows, std::int64_t cols, std::int64_t ld) {
  return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
}

}  // namespace

void CudaBackend::gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K,
                       double alpha, const Tensor& A, std::int64_t lda, const Tensor& B,
                       std::int64_t ldb, double beta, const Tensor& C, std::int64_t ldc) {
  bind();
  const gpu::ArgCheck check(*this, "gemm");
  check.expect(M >= 0 && N >= 0 && K >= 0, "negative dimension");
  for (std::int64_t v : {M, N, K, lda, ldb, ldc})
    check.expect(v <= INT_MAX, "dimension " + std::to_string(v) + " exceeds cuBLAS's int range");
  const std::int64_t a_rows = ta ? K : M, a_cols = ta ? M : K;
  const std::int64_t b_rows = tb ? N : K, b_cols = tb ? K : N;
  check.expect(lda >= (a_cols > 0 ? a_cols : 1),
               "lda " + std::to_string(lda) + " < " + std::to_string(a_cols) + " columns of A");
  check.expect(ldb >= (b_cols > 0 ? b_cols : 1),
               "ldb " + std::to_string(ldb) + " < " + std::to_string(b_cols) + " columns of B");
  check.expect(ldc >= (N > 0 ? N : 1),
               "ldc " + std::to_string(ldc) + " < " + std::to_string(N) + " columns of C");
  const bool a_bf16 = A.defined() && A.dtype == DType::BF16;
  const bool b_bf16 = B.defined() && B.dtype == DType::BF16;
  check.need(A, "A", a_bf16 ? DType::BF16 : DType::F32, span(a_rows, a_cols, lda));
  check.need(B, "B", b_bf16 ? DType::BF16 : DType::F32, span(b_rows, b_cols, ldb));
  check.f32(C, "C", span(M, N, ldc));
  if (M == 0 || N == 0) return;

  const float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K);

  if (!a_bf16 && !b_bf16) {
    LWB_CUBLAS_CHECK(cublasGemmEx(
        cublas_, op_b, op_a, m, n, k, &fa, gpu::device_ptr<void>(B), CUDA_R_32F,
        static_cast<int>(ldb), gpu::device_ptr<void>(A), CUDA_R_32F, static_cast<int>(lda), &fb,
        gpu::device_ptr<void>(C), CUDA_R_32F, static_cast<int>(ldc),
        tf32_ ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return;
  }

  // Mixed: round the fp32 operand (only one can be fp32 here) to a compact bf16 copy.
  const void* a_ptr = gpu::device_ptr<void>(A);
  const void* b_ptr = gpu::device_ptr<void>(B);
  std::int64_t lda_eff = lda, ldb_eff = ldb;
  if (!a_bf16 || !b_bf16) {
    const bool convert_a = !a_bf16;
    const Tensor& src = convert_a ? A : B;
    const std::int64_t rows = convert_a ? a_rows : b_rows, cols = convert_a ? a_cols : b_cols;
    const std::int64_t ld = convert_a ? lda : ldb;
    auto* dst = static_cast<std::uint16_t*>(
        scratch(static_cast<std::size_t>(rows * cols) * sizeof(std::uint16_t)));
    gpu::f32_to_bf16_2d(stream_, dst, gpu::device_ptr<float>(src), rows, cols, ld);
    const std::int64_t ld_new = cols > 0 ? cols : 1;
    if (convert_a) {
      a_ptr = dst;
      lda_eff = ld_new;
    } else {
      b_ptr = dst;
      ldb_eff = ld_new;
    }
  }
  LWB_CUBLAS_CHECK(
      cublasGemmEx(cublas_, op_b, op_a, m, n, k, &fa, b_ptr, CUDA_R_16BF, static_cast<int>(ldb_eff),
                   a_ptr, CUDA_R_16BF, static_cast<int>(lda_eff), &fb, gpu::device_ptr<void>(C),
                   CUDA_R_32F, static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace lwb

// The cuBLAS entry points the CUDA backend calls, done on the CPU for the
// emulated build. cublasGemmEx checks what cuBLAS checks (the type and
// compute-type combination, dimensions, leading dimensions), and that every
// operand lies in one device allocation, then queues the product on the
// handle's stream. The product itself is not the CPU reference's: inputs are
// rounded as the compute type says (TF32: a 10-bit mantissa, round to nearest,
// ties away, as cvt.rna.tf32.f32), products are fused into fp32 partial sums of
// kChunk terms (an MMA's k), and the partials are added in order: a blocked
// sum, as cuBLAS's tiles do, in another order than OpenBLAS's sgemm.
#include <cublas_v2.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "gpu/emulation/emulator.h"

struct cublasContext {
  int math_mode = CUBLAS_DEFAULT_MATH;
  cudaStream_t stream = nullptr;
};

namespace {

constexpr int kChunk = 16;

cublasStatus_t g_detail_status = CUBLAS_STATUS_SUCCESS;
std::string g_detail, g_shown;

cublasStatus_t refuse(cublasStatus_t status, const std::string& why) {
  g_detail_status = status;
  g_detail = "cublasGemmEx: " + why;
  return status;
}

// cublasGemmEx's table of supported combinations (cuBLAS documentation).
bool supported(cublasComputeType_t compute, cudaDataType a, cudaDataType b, cudaDataType c) {
  if (a != b) return false;
  switch (compute) {
    case CUBLAS_COMPUTE_16F:
    case CUBLAS_COMPUTE_16F_PEDANTIC: return a == CUDA_R_16F && c == CUDA_R_16F;
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
      return (a == CUDA_R_32F && c == CUDA_R_32F) || (a == CUDA_C_32F && c == CUDA_C_32F) ||
             ((a == CUDA_R_16F || a == CUDA_R_16BF) && (c == a || c == CUDA_R_32F)) ||
             (a == CUDA_R_8I && c == CUDA_R_32F) || (a == CUDA_C_8I && c == CUDA_C_32F);
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32:
      return (a == CUDA_R_32F && c == CUDA_R_32F) || (a == CUDA_C_32F && c == CUDA_C_32F);
    case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC:
      return (a == CUDA_R_64F && c == CUDA_R_64F) || (a == CUDA_C_64F && c == CUDA_C_64F);
    case CUBLAS_COMPUTE_32I:
    case CUBLAS_COMPUTE_32I_PEDANTIC: return a == CUDA_R_8I && c == CUDA_R_32I;
    default: return false;
  }
}

// The part of that table the emulation computes: real fp32 or bf16 inputs, fp32 output.
bool emulated(cublasComputeType_t compute, cudaDataType a, cudaDataType c) {
  if (c != CUDA_R_32F) return false;
  if (a == CUDA_R_16BF)
    return compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC;
  return a == CUDA_R_32F &&
         (compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC ||
          compute == CUBLAS_COMPUTE_32F_FAST_TF32);
}

std::size_t type_size(cudaDataType t) { return t == CUDA_R_16BF ? 2 : 4; }

float tf32(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;  // Inf and NaN stay
  std::memcpy(&f, &u, 4);
  return f;
}

float load(const void* p, cudaDataType type, std::size_t i, bool round_tf32) {
  if (type == CUDA_R_16BF) {
    const std::uint32_t u = static_cast<std::uint32_t>(static_cast<const std::uint16_t*>(p)[i])
                            << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  const float f = static_cast<const float*>(p)[i];
  return round_tf32 ? tf32(f) : f;
}

struct Gemm {
  cublasOperation_t ta, tb;
  int m, n, k;
  float alpha, beta;
  const void* A;
  cudaDataType at;
  int lda;
  const void* B;
  cudaDataType bt;
  int ldb;
  float* C;
  int ldc;
  bool tf32;

  void operator()() const {
    // op(A) by rows and op(B) by columns, so each element is a contiguous dot product.
    std::vector<float> a(static_cast<std::size_t>(m) * k), b(static_cast<std::size_t>(n) * k);
    for (int i = 0; i < m; ++i)
      for (int p = 0; p < k; ++p)
        a[static_cast<std::size_t>(i) * k + p] =
            load(A, at,
                 ta == CUBLAS_OP_N ? i + static_cast<std::size_t>(p) * lda
                                   : p + static_cast<std::size_t>(i) * lda,
                 tf32);
    for (int j = 0; j < n; ++j)
      for (int p = 0; p < k; ++p)
        b[static_cast<std::size_t>(j) * k + p] =
            load(B, bt,
                 tb == CUBLAS_OP_N ? p + static_cast<std::size_t>(j) * ldb
                                   : j + static_cast<std::size_t>(p) * ldb,
                 tf32);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        const float* ai = a.data() + static_cast<std::size_t>(i) * k;
        const float* bj = b.data() + static_cast<std::size_t>(j) * k;
        float acc = 0.0f;
        for (int p0 = 0; p0 < k; p0 += kChunk) {
          float part = 0.0f;
          for (int p = p0; p < std::min(k, p0 + kChunk); ++p) part = std::fma(ai[p], bj[p], part);
          acc += part;
        }
        float& c = C[i + static_cast<std::size_t>(j) * ldc];
        c = beta == 0.0f ? alpha * acc : alpha * acc + beta * c;  // beta 0: C is not read
      }
  }
};

}  // namespace

cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
  *h = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
  h->stream = s;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  h->math_mode = static_cast<int>(mode);
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_(emulated)";
  }
}
// cuBLAS's sentence, and for the status the emulation returned last, why.
const char* cublasGetStatusString(cublasStatus_t s) {
  g_shown = s == CUBLAS_STATUS_INVALID_VALUE   ? "an invalid numeric value was used as an argument"
            : s == CUBLAS_STATUS_NOT_SUPPORTED ? "the functionality requested is not supported"
                                               : "emulated cuBLAS status";
  if (s == g_detail_status) g_shown += " (" + g_detail + ")";
  return g_shown.c_str();
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t transa, cublasOperation_t transb,
                            int m, int n, int k, const void* alpha, const void* A,
                            cudaDataType Atype, int lda, const void* B, cudaDataType Btype, int ldb,
                            const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t) {
  if (!h) return refuse(CUBLAS_STATUS_NOT_INITIALIZED, "no handle");
  if (!supported(compute, Atype, Btype, Ctype))
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED,
                  "Atype " + std::to_string(Atype) + ", Btype " + std::to_string(Btype) +
                      ", Ctype " + std::to_string(Ctype) + " with compute type " +
                      std::to_string(compute) + " is not a combination cuBLAS supports");
  if (!emulated(compute, Atype, Ctype))
    return refuse(CUBLAS_STATUS_NOT_SUPPORTED,
                  "a valid type combination that the emulation does not compute");
  const bool a_n = transa == CUBLAS_OP_N, b_n = transb == CUBLAS_OP_N;
  const auto ld_check = [](const char* ld, int v, const char* dim, int need, const char* op) {
    return v >= std::max(1, need) ? std::string()
                                  : std::string(ld) + " " + std::to_string(v) + " < " + dim + " " +
                                        std::to_string(need) + " (" + op + ")";
  };
  if (m < 0 || n < 0 || k < 0) return refuse(CUBLAS_STATUS_INVALID_VALUE, "a negative dimension");
  for (const std::string& why :
       {ld_check("lda", lda, a_n ? "m" : "k", a_n ? m : k, a_n ? "transa N" : "transa T"),
        ld_check("ldb", ldb, b_n ? "k" : "n", b_n ? k : n, b_n ? "transb N" : "transb T"),
        ld_check("ldc", ldc, "m", m, "C")})
    if (!why.empty()) return refuse(CUBLAS_STATUS_INVALID_VALUE, why);
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  // Every element each operand's op and ld address, inside one device allocation.
  const auto span = [](int rows, int cols, int ld) {
    return rows == 0 || cols == 0 ? 0 : static_cast<std::size_t>(ld) * (cols - 1) + rows;
  };
  const std::size_t a_span = span(a_n ? m : k, a_n ? k : m, lda),
                    b_span = span(b_n ? k : n, b_n ? n : k, ldb);
  for (const std::string& why :
       {a_span ? lwb::emu::check_device_range(A, a_span * type_size(Atype), "A") : "",
        b_span ? lwb::emu::check_device_range(B, b_span * type_size(Btype), "B") : "",
        lwb::emu::check_device_range(C, span(m, n, ldc) * 4, "C")})
    if (!why.empty()) lwb::emu::fatal("cublasGemmEx: " + why);
  const bool tf32 =
      Atype == CUDA_R_32F &&
      (compute == CUBLAS_COMPUTE_32F_FAST_TF32 ||
       (compute == CUBLAS_COMPUTE_32F && (h->math_mode & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH));
  lwb::emu::enqueue(h->stream, Gemm{transa, transb, m, n, k, *static_cast<const float*>(alpha),
                                    *static_cast<const float*>(beta), A, Atype, lda, B, Btype, ldb,
                                    static_cast<float*>(C), ldc, tf32});
  return CUBLAS_STATUS_SUCCESS;
}

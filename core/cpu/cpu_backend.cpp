#include "core/cpu/cpu_backend.h"

#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <stdexcept>
#include <string>

#include "core/common/errors.h"
#include "core/cpu/kernels.h"
#include "core/common/half.h"
#include "core/cpu/process_settings.h"

namespace lwb {

namespace {

// Runs f with a value of the element type of `dtype` (float or double).
template <class F>
void dispatch(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::F32: f(float{}); return;
    case DType::F64: f(double{}); return;
    default:
      throw std::invalid_argument(std::string("cpu backend: ") + op + " does not support dtype " +
                                  dtype_name(dtype));
  }
}

template <class T>
T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

std::size_t meminfo_kib(const char* key) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  std::size_t v = 0;
  std::string unit;
  while (in >> k >> v >> unit)
    if (k == key) return v;
  return 0;
}

}  // namespace

std::string CpuBackend::name() const {
  return "cpu (" + std::to_string(omp_get_max_threads()) + " threads, OpenMP wait policy " + omp_wait_policy() + ")";
}

void* CpuBackend::allocate(std::size_t bytes) {
  // Arenas of 2 MiB and more are asked for transparent huge pages (Debian's
  // default THP mode is "madvise", which gives none unasked): the step sweeps
  // hundreds of MB of activations, and on 4 KiB pages the LoRA step on
  // `small` ran 1.1% slower (5 of 5 alternating runs). Costs under 2 MiB of
  // rounding per arena.
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  const std::size_t align = bytes >= kHuge ? kHuge : 256;
  const std::size_t rounded = bytes ? (bytes + align - 1) / align * align : align;
  void* p = std::aligned_alloc(align, rounded);
  if (!p) throw OutOfMemoryError("cpu", bytes, device_free_bytes());
  if (align == kHuge) madvise(p, rounded, MADV_HUGEPAGE);
  allocated_ += bytes;
  return p;
}

void CpuBackend::release(void* ptr, std::size_t bytes) {
  std::free(ptr);
  allocated_ -= bytes;
}

std::size_t CpuBackend::device_free_bytes() const { return meminfo_kib("MemAvailable:") * 1024; }
std::size_t CpuBackend::device_total_bytes() const { return meminfo_kib("MemTotal:") * 1024; }

void CpuBackend::upload(const Tensor& dst, const void* host_src, std::size_t bytes) {
  std::memcpy(dst.raw(), host_src, bytes);
}

void CpuBackend::download(void* host_dst, const Tensor& src, std::size_t bytes) {
  std::memcpy(host_dst, src.raw(), bytes);
}

void CpuBackend::copy(const Tensor& dst, const Tensor& src) {
  if (src.dtype == DType::BF16 && dst.dtype == DType::F32) {
    const auto* s = src.data<std::uint16_t>();
    float* d = dst.data<float>();
    const std::int64_t n = src.numel();
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) d[i] = bf16_to_f32(s[i]);
    return;
  }
  if (src.dtype != dst.dtype)
    throw std::invalid_argument(std::string("cpu backend: cannot copy ") + dtype_name(src.dtype) +
                                " into " + dtype_name(dst.dtype));
  std::memcpy(dst.raw(), src.raw(), src.nbytes());
}

void CpuBackend::fill(const Tensor& dst, double value) {
  if (value == 0.0) {
    std::memset(dst.raw(), 0, dst.nbytes());
    return;
  }
  if (dst.dtype == DType::BF16) {
    auto* p = dst.data<std::uint16_t>();
    const std::uint16_t bits = f32_to_bf16(static_cast<float>(value));
    for (std::int64_t i = 0; i < dst.numel(); ++i) p[i] = bits;
    return;
  }
  if (dst.dtype == DType::I32) {
    auto* p = dst.data<std::int32_t>();
    for (std::int64_t i = 0; i < dst.numel(); ++i) p[i] = static_cast<std::int32_t>(value);
    return;
  }
  dispatch(dst.dtype, "fill", [&](auto tag) {
    using T = decltype(tag);
    T* p = dst.data<T>();
    for (std::int64_t i = 0; i < dst.numel(); ++i) p[i] = static_cast<T>(value);
  });
}

std::size_t CpuBackend::reserve_mixed_gemm(std::int64_t max_bf16_elems, std::int64_t) {
  const auto elems = static_cast<std::size_t>(max_bf16_elems);
  if (elems > widened_.size()) widened_.resize(elems);
  return elems * sizeof(float);
}

// A BF16 operand [rows, cols] with leading dimension ld, widened into the
// backend's scratch as a compact fp32 matrix (leading dimension cols).
const float* CpuBackend::widen(const Tensor& t, std::int64_t rows, std::int64_t cols,
                               std::int64_t ld) {
  const auto need = static_cast<std::size_t>(rows * cols);
  if (need > widened_.size()) widened_.resize(need);  // only where reserve_mixed_gemm was not called
  const auto* src = t.data<std::uint16_t>();
  float* dst = widened_.data();
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) dst[r * cols + c] = bf16_to_f32(src[r * ld + c]);
  return dst;
}

void CpuBackend::gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K,
                      double alpha, const Tensor& A, std::int64_t lda, const Tensor& B,
                      std::int64_t ldb, double beta, const Tensor& C, std::int64_t ldc) {
  const bool a_bf16 = A.dtype == DType::BF16, b_bf16 = B.dtype == DType::BF16;
  if (a_bf16 || b_bf16) {
    // Exact products of the rounded weight with the fp32 activation: the
    // reference for "an fp32 model whose frozen weights were rounded to bf16".
    if ((a_bf16 && b_bf16) || (a_bf16 ? B.dtype : A.dtype) != DType::F32 || C.dtype != DType::F32)
      throw std::invalid_argument(std::string("cpu backend: a bf16 gemm operand goes with fp32 ones (got ") +
                                  dtype_name(A.dtype) + ", " + dtype_name(B.dtype) + ", " +
                                  dtype_name(C.dtype) + ")");
    const float* a = a_bf16 ? widen(A, ta ? K : M, ta ? M : K, lda) : A.data<float>();
    const float* b = b_bf16 ? widen(B, tb ? N : K, tb ? K : N, ldb) : B.data<float>();
    cpu::gemm<float>(ta, tb, M, N, K, static_cast<float>(alpha), a, a_bf16 ? (ta ? M : K) : lda, b,
                     b_bf16 ? (tb ? K : N) : ldb, static_cast<float>(beta), C.data<float>(), ldc);
    return;
  }
  if (A.dtype != C.dtype || B.dtype != C.dtype)
    throw std::invalid_argument("cpu backend: gemm operands must share one dtype (got " +
                                std::string(dtype_name(A.dtype)) + ", " + dtype_name(B.dtype) +
                                ", " + dtype_name(C.dtype) + ")");
  dispatch(C.dtype, "gemm", [&](auto tag) {
    using T = decltype(tag);
    cpu::gemm<T>(ta, tb, M, N, K, T(alpha), A.data<T>(), lda, B.data<T>(), ldb, T(beta),
                 C.data<T>(), ldc);
  });
}

void CpuBackend::add(const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch(out.dtype, "add", [&](auto tag) {
    using T = decltype(tag);
    cpu::add<T>(out.data<T>(), a.data<T>(), b.data<T>(), out.numel());
  });
}

void CpuBackend::axpy(const Tensor& y, double alpha, const Tensor& x) {
  dispatch(y.dtype, "axpy", [&](auto tag) {
    using T = decltype(tag);
    cpu::axpy<T>(y.data<T>(), T(alpha), x.data<T>(), y.numel());
  });
}

void CpuBackend::scale(const Tensor& x, double alpha) {
  dispatch(x.dtype, "scale", [&](auto tag) {
    using T = decltype(tag);
    cpu::scale<T>(x.data<T>(), T(alpha), x.numel());
  });
}

double CpuBackend::sum(const Tensor& x) {
  double r = 0;
  dispatch(x.dtype, "sum", [&](auto tag) {
    using T = decltype(tag);
    r = cpu::sum<T>(x.data<T>(), x.numel());
  });
  return r;
}

double CpuBackend::sum_squares(const Tensor& x) {
  double r = 0;
  dispatch(x.dtype, "sum_squares", [&](auto tag) {
    using T = decltype(tag);
    r = cpu::sum_squares<T>(x.data<T>(), x.numel());
  });
  return r;
}

void CpuBackend::embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& table,
                                   std::int64_t n, std::int64_t C) {
  dispatch(out.dtype, "embedding_forward", [&](auto tag) {
    using T = decltype(tag);
    cpu::embedding_forward<T>(out.data<T>(), tokens.data<std::int32_t>(), table.data<T>(), n, C);
  });
}

void CpuBackend::embedding_backward(const Tensor& dtable, const Tensor& tokens,
                                    const Tensor& dout, std::int64_t n, std::int64_t C) {
  dispatch(dtable.dtype, "embedding_backward", [&](auto tag) {
    using T = decltype(tag);
    cpu::embedding_backward<T>(dtable.data<T>(), tokens.data<std::int32_t>(), dout.data<T>(), n,
                               C);
  });
}

void CpuBackend::rmsnorm_forward(const Tensor& out, const Tensor& rstd, const Tensor& x,
                                 const Tensor& w, std::int64_t n, std::int64_t C, double eps) {
  dispatch(out.dtype, "rmsnorm_forward", [&](auto tag) {
    using T = decltype(tag);
    cpu::rmsnorm_forward<T>(out.data<T>(), rstd.data<T>(), x.data<T>(), w.data<T>(), n, C, eps);
  });
}

void CpuBackend::rmsnorm_backward(const Tensor& dx, const Tensor& dw, const Tensor& dout,
                                  const Tensor& x, const Tensor& w, const Tensor& rstd,
                                  std::int64_t n, std::int64_t C) {
  dispatch(dx.dtype, "rmsnorm_backward", [&](auto tag) {
    using T = decltype(tag);
    cpu::rmsnorm_backward<T>(dx.data<T>(), ptr<T>(dw), dout.data<T>(), x.data<T>(), w.data<T>(),
                             rstd.data<T>(), n, C);
  });
}

void CpuBackend::rope_forward(const Tensor& x, const Tensor& table, std::int64_t n,
                              std::int64_t T_, int heads, int head_dim) {
  dispatch(x.dtype, "rope_forward", [&](auto tag) {
    using T = decltype(tag);
    cpu::rope<T>(x.data<T>(), table.data<T>(), n, T_, heads, head_dim, false);
  });
}

void CpuBackend::rope_backward(const Tensor& dx, const Tensor& table, std::int64_t n,
                               std::int64_t T_, int heads, int head_dim) {
  dispatch(dx.dtype, "rope_backward", [&](auto tag) {
    using T = decltype(tag);
    cpu::rope<T>(dx.data<T>(), table.data<T>(), n, T_, heads, head_dim, true);
  });
}

void CpuBackend::attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q,
                                   const Tensor& k, const Tensor& v, const AttentionShape& s,
                                   const Tensor& workspace) {
  dispatch(out.dtype, "attention_forward", [&](auto tag) {
    using T = decltype(tag);
    cpu::attention_forward<T>(out.data<T>(), lse.data<T>(), q.data<T>(), k.data<T>(),
                              v.data<T>(), s, workspace.data<T>());
  });
}

void CpuBackend::attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv,
                                    const Tensor& dout, const Tensor& q, const Tensor& k,
                                    const Tensor& v, const Tensor& out, const Tensor& lse,
                                    const AttentionShape& s, const Tensor& workspace) {
  dispatch(dq.dtype, "attention_backward", [&](auto tag) {
    using T = decltype(tag);
    cpu::attention_backward<T>(dq.data<T>(), dk.data<T>(), dv.data<T>(), dout.data<T>(),
                               q.data<T>(), k.data<T>(), v.data<T>(), out.data<T>(),
                               lse.data<T>(), s, workspace.data<T>());
  });
}

std::size_t CpuBackend::attention_workspace_bytes(const AttentionShape& s, DType dtype) const {
  return cpu::attention_workspace_elems(s, omp_get_max_threads()) * dtype_size(dtype);
}

void CpuBackend::scatter_rows(const Tensor& dst, const Tensor& rows, const Tensor& src,
                              std::int64_t n, std::int64_t C) {
  dispatch(dst.dtype, "scatter_rows", [&](auto tag) {
    using T = decltype(tag);
    cpu::scatter_rows<T>(dst.data<T>(), rows.data<std::int32_t>(), src.data<T>(), n, C);
  });
}

void CpuBackend::attention_cached(const Tensor& out, const Tensor& q, const Tensor& k_cache,
                                  const Tensor& v_cache, const Tensor& sequences,
                                  const Tensor& positions, const CachedAttentionShape& s,
                                  const Tensor& workspace) {
  dispatch(out.dtype, "attention_cached", [&](auto tag) {
    using T = decltype(tag);
    cpu::attention_cached<T>(out.data<T>(), q.data<T>(), k_cache.data<T>(), v_cache.data<T>(),
                             sequences.data<std::int32_t>(), positions.data<std::int32_t>(), s,
                             workspace.data<T>());
  });
}

std::size_t CpuBackend::attention_cached_workspace_bytes(const CachedAttentionShape& s,
                                                         DType dtype) const {
  return cpu::attention_cached_workspace_elems(s, omp_get_max_threads()) * dtype_size(dtype);
}

void CpuBackend::swiglu_forward(const Tensor& h, const Tensor& gate, const Tensor& up,
                                std::int64_t numel) {
  dispatch(h.dtype, "swiglu_forward", [&](auto tag) {
    using T = decltype(tag);
    cpu::swiglu_forward<T>(h.data<T>(), gate.data<T>(), up.data<T>(), numel);
  });
}

void CpuBackend::swiglu_backward(const Tensor& dgate, const Tensor& dup, const Tensor& dh,
                                 const Tensor& gate, const Tensor& up, std::int64_t numel) {
  dispatch(dgate.dtype, "swiglu_backward", [&](auto tag) {
    using T = decltype(tag);
    cpu::swiglu_backward<T>(dgate.data<T>(), dup.data<T>(), dh.data<T>(), gate.data<T>(),
                            up.data<T>(), numel);
  });
}

void CpuBackend::cross_entropy(const Tensor& losses, const Tensor& dlogits, const Tensor& logits,
                               const Tensor& targets, std::int64_t n, std::int64_t V,
                               double scale) {
  dispatch(logits.dtype, "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    cpu::cross_entropy<T>(losses.data<T>(), ptr<T>(dlogits), logits.data<T>(),
                          targets.data<std::int32_t>(), n, V, scale);
  });
}

void CpuBackend::argmax_rows(const Tensor& ids, const Tensor& logits, std::int64_t n,
                             std::int64_t V) {
  dispatch(logits.dtype, "argmax_rows", [&](auto tag) {
    using T = decltype(tag);
    cpu::argmax_rows<T>(ids.data<std::int32_t>(), logits.data<T>(), n, V);
  });
}

void CpuBackend::dropout_forward(const Tensor& out, const Tensor& x, double p, std::uint64_t seed,
                                 std::int64_t numel) {
  dispatch(out.dtype, "dropout_forward", [&](auto tag) {
    using T = decltype(tag);
    cpu::dropout_forward<T>(out.data<T>(), x.data<T>(), p, seed, numel);
  });
}

void CpuBackend::dropout_backward(const Tensor& dx, const Tensor& dout, double p,
                                  std::uint64_t seed, std::int64_t numel) {
  dispatch(dx.dtype, "dropout_backward", [&](auto tag) {
    using T = decltype(tag);
    cpu::dropout_backward<T>(dx.data<T>(), dout.data<T>(), p, seed, numel);
  });
}

void CpuBackend::row_norms(const Tensor& norms, const Tensor& X, std::int64_t rows,
                           std::int64_t cols) {
  dispatch(X.dtype, "row_norms", [&](auto tag) {
    using T = decltype(tag);
    cpu::row_norms<T>(norms.data<T>(), X.data<T>(), rows, cols);
  });
}

void CpuBackend::scale_columns(const Tensor& out, const Tensor& x, const Tensor& s,
                               std::int64_t rows, std::int64_t cols) {
  dispatch(x.dtype, "scale_columns", [&](auto tag) {
    using T = decltype(tag);
    cpu::scale_columns<T>(out.data<T>(), x.data<T>(), s.data<T>(), rows, cols);
  });
}

void CpuBackend::scale_rows(const Tensor& out, const Tensor& x, const Tensor& s, std::int64_t rows,
                            std::int64_t cols) {
  dispatch(x.dtype, "scale_rows", [&](auto tag) {
    using T = decltype(tag);
    cpu::scale_rows<T>(out.data<T>(), x.data<T>(), s.data<T>(), rows, cols);
  });
}

void CpuBackend::column_dot_scale(const Tensor& dot, const Tensor& scaled, const Tensor& a, const Tensor& b,
                                  const Tensor& s, std::int64_t rows, std::int64_t cols, double alpha) {
  dispatch(a.dtype, "column_dot_scale", [&](auto tag) {
    using T = decltype(tag);
    cpu::column_dot_scale<T>(dot.data<T>(), scaled.data<T>(), a.data<T>(), b.data<T>(), s.data<T>(), rows,
                             cols, T(alpha));
  });
}

void CpuBackend::multiply(const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch(out.dtype, "multiply", [&](auto tag) {
    using T = decltype(tag);
    cpu::multiply<T>(out.data<T>(), a.data<T>(), b.data<T>(), out.numel());
  });
}

void CpuBackend::divide(const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch(out.dtype, "divide", [&](auto tag) {
    using T = decltype(tag);
    cpu::divide<T>(out.data<T>(), a.data<T>(), b.data<T>(), out.numel());
  });
}

void CpuBackend::adalora_importance(const Tensor& ipt, const Tensor& unc, const Tensor& params,
                                    const Tensor& grads, double beta1, double beta2,
                                    double grad_scale) {
  dispatch(params.dtype, "adalora_importance", [&](auto tag) {
    using T = decltype(tag);
    cpu::adalora_importance<T>(ipt.data<T>(), unc.data<T>(), params.data<T>(), grads.data<T>(),
                               params.numel(), T(beta1), T(beta2), T(grad_scale));
  });
}

void CpuBackend::zero_below(const Tensor& x, double threshold) {
  dispatch(x.dtype, "zero_below", [&](auto tag) {
    using T = decltype(tag);
    cpu::zero_below<T>(x.data<T>(), x.numel(), T(threshold));
  });
}

void CpuBackend::adamw(const Tensor& params, const Tensor& grads, const Tensor& m,
                       const Tensor& v, const AdamWStep& step) {
  dispatch(params.dtype, "adamw", [&](auto tag) {
    using T = decltype(tag);
    cpu::adamw<T>(params.data<T>(), grads.data<T>(), m.data<T>(), v.data<T>(), params.numel(),
                  step);
  });
}

}  // namespace lwb

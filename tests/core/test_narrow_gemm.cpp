// Products with a side as narrow as a LoRA rank (core/cpu/narrow_gemm)
// against a float64 reference, on every SIMD path this CPU runs (and the
// baseline fallback): C = A·op(B) with N narrow (u = x·A^T, du = dy·B), C =
// A^T·B (dB = dy^T·u) and its transpose (dA = du^T·x); every narrow width,
// inner dimensions shorter and longer than a row group, row counts that
// leave partial tiles, beta 0 (C full of NaN, which must not be read), 1 and
// another, strided rows whose padding must stay untouched. The tolerance is
// relative to the sum of the magnitudes of each element's terms. Also: one
// thread and two give the same bits, cpu::gemm sends these products here,
// and bad shapes are refused.
#include <QtTest>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "core/cpu/kernels.h"
#include "core/cpu/narrow_gemm.h"
#include "expect_throw.h"

using namespace lwb;
using cpu::Simd;

namespace {

std::vector<Simd> paths() {
  std::vector<Simd> p;
  for (Simd s : {Simd::Baseline, Simd::Avx2, Simd::Avx512})
    if (cpu::simd_supported(s)) p.push_back(s);
  return p;
}

std::vector<float> normal_values(std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

constexpr float kPad = -7.0f;  // what the padding between rows of C holds

// C [rows, cols] with ldc: random where beta reads it, NaN where it must not,
// kPad past each row's end.
std::vector<float> output(std::int64_t rows, std::int64_t cols, std::int64_t ldc, float beta, std::mt19937& rng) {
  std::vector<float> C = normal_values(static_cast<std::size_t>(rows * ldc), rng);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < ldc; ++j)
      if (j >= cols) C[i * ldc + j] = kPad;
      else if (beta == 0.0f) C[i * ldc + j] = std::numeric_limits<float>::quiet_NaN();
  return C;
}

// Compares C [rows, cols] against alpha·sum_k term(i, j, k) + beta·C0: the
// first mismatch, or an empty string.
QString mismatch(const QString& what, const std::vector<float>& C, const std::vector<float>& C0, std::int64_t rows,
           std::int64_t cols, std::int64_t ldc, std::int64_t K, float alpha, float beta,
           const std::function<double(std::int64_t, std::int64_t, std::int64_t)>& term) {
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < ldc; ++j) {
      const float got = C[i * ldc + j];
      if (j >= cols) {
        if (got != kPad) return QString("%1: padding C[%2,%3] overwritten").arg(what).arg(i).arg(j);
        continue;
      }
      double ref = 0, mag = 0;
      for (std::int64_t k = 0; k < K; ++k) {
        const double t = double(alpha) * term(i, j, k);
        ref += t;
        mag += std::fabs(t);
      }
      if (beta != 0.0f) {
        ref += double(beta) * C0[i * ldc + j];
        mag += std::fabs(double(beta) * C0[i * ldc + j]);
      }
      // K + 2 roundings (each product-sum, alpha and beta·c), each within eps of the magnitude.
      const double tol = (K + 2) * 0x1p-24 * mag + 1e-30;
      if (!(std::fabs(got - ref) <= tol))
        return QString("%1: C[%2,%3] = %4, reference %5 (tolerance %6)")
            .arg(what).arg(i).arg(j).arg(got, 0, 'g', 9).arg(ref, 0, 'g', 12).arg(tol);
    }
  return {};
}

const std::pair<float, float> kScales[] = {{1.0f, 0.0f}, {0.25f, 1.0f}, {-2.0f, 0.5f}};

}  // namespace

class TestNarrowGemm : public QObject {
  Q_OBJECT
 private slots:
  // C[M, N] = beta·C + alpha·A[M, K]·op(B), N narrow.
  void rows_match_reference() {
    std::mt19937 rng(3);
    int cases = 0;
    for (Simd simd : paths())
      for (bool tb : {true, false})
        for (std::int64_t N : {8, 16, 24, 32})
          for (std::int64_t K : {1, 7, 40})
            for (std::int64_t M : {1, 13, 61})
              for (auto [alpha, beta] : kScales) {
                // tb = false with ldb == N reads B in place; ldb > N is copied first.
                const std::int64_t lda = K + 2, ldb = tb ? K + 3 : N + (M == 13 ? 0 : 5), ldc = N + 5;
                const std::vector<float> A = normal_values(static_cast<std::size_t>(M * lda), rng);
                const std::vector<float> B = normal_values(static_cast<std::size_t>((tb ? N : K) * ldb), rng);
                std::vector<float> C = output(M, N, ldc, beta, rng);
                const std::vector<float> C0 = C;
                cpu::narrow_rows_gemm(tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, simd);
                const QString what = QString("%1 rows tb=%2 M=%3 N=%4 K=%5 alpha=%6 beta=%7")
                                         .arg(cpu::simd_name(simd)).arg(tb).arg(M).arg(N).arg(K).arg(alpha).arg(beta);
                const QString error = mismatch(what, C, C0, M, N, ldc, K, alpha, beta, [&](auto i, auto j, auto k) {
                  return double(A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                });
                if (!error.isEmpty()) QFAIL(qPrintable(error));
                ++cases;
              }
    qInfo("%d products checked", cases);
  }

  // C[M, N] = beta·C + alpha·A[K, M]^T·B[K, N], N narrow, stored as C or C^T.
  void cols_match_reference() {
    std::mt19937 rng(4);
    int cases = 0;
    for (Simd simd : paths())
      for (bool transposed : {false, true})
        for (std::int64_t N : {8, 16, 24, 32})
          for (std::int64_t K : {1, 7, 40})
            for (std::int64_t M : {1, 13, 130})
              for (auto [alpha, beta] : kScales) {
                const std::int64_t lda = M + 2, ldb = N + 3, ldc = (transposed ? M : N) + 5;
                const std::vector<float> A = normal_values(static_cast<std::size_t>(K * lda), rng);
                const std::vector<float> B = normal_values(static_cast<std::size_t>(K * ldb), rng);
                const std::int64_t rows = transposed ? N : M, cols = transposed ? M : N;
                std::vector<float> C = output(rows, cols, ldc, beta, rng);
                const std::vector<float> C0 = C;
                cpu::narrow_cols_gemm(M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, transposed,
                                      simd);
                const QString what = QString("%1 cols transposed=%2 M=%3 N=%4 K=%5 alpha=%6 beta=%7")
                                         .arg(cpu::simd_name(simd)).arg(transposed).arg(M).arg(N).arg(K).arg(alpha)
                                         .arg(beta);
                const QString error = mismatch(what, C, C0, rows, cols, ldc, K, alpha, beta, [&](auto i, auto j, auto k) {
                  const std::int64_t m = transposed ? j : i, n = transposed ? i : j;
                  return double(A[k * lda + m]) * B[k * ldb + n];
                });
                if (!error.isEmpty()) QFAIL(qPrintable(error));
                ++cases;
              }
    qInfo("%d products checked", cases);
  }

  // Each element's sum runs over k in order whichever thread computes it.
  void thread_count_does_not_change_bits() {
    std::mt19937 rng(5);
    const std::int64_t M = 1000, N = 8, K = 300;
    const std::vector<float> A = normal_values(M * K, rng), B = normal_values(K * N, rng),
                             At = normal_values(K * M, rng);
    const int threads = omp_get_max_threads();
    std::vector<float> rows[2], cols[2];
    for (int t : {0, 1}) {
      omp_set_num_threads(t + 1);
      rows[t].assign(M * N, 0.0f);
      cols[t].assign(M * N, 0.0f);
      cpu::narrow_rows_gemm(false, M, N, K, 0.5f, A.data(), K, B.data(), N, 0.0f, rows[t].data(), N);
      cpu::narrow_cols_gemm(M, N, K, 0.5f, At.data(), M, B.data(), N, 0.0f, cols[t].data(), N, false);
    }
    omp_set_num_threads(threads);
    QVERIFY(rows[0] == rows[1]);
    QVERIFY(cols[0] == cols[1]);
  }

  // cpu::gemm takes a LoRA layer's four narrow products here; with beta 0
  // it never reads C (NaN stays out), as BLAS's contract says.
  void gemm_routes_narrow_products() {
    std::mt19937 rng(9);
    const std::int64_t n = 70, in = 50, out = 40, r = 8;
    const std::vector<float> x = normal_values(n * in, rng), dy = normal_values(n * out, rng),
                             lora_A = normal_values(r * in, rng), lora_B = normal_values(out * r, rng),
                             u = normal_values(n * r, rng), du = normal_values(n * r, rng);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    auto same = [&](std::int64_t size, const std::function<void(float*)>& via_gemm,
                    const std::function<void(float*)>& direct) {
      std::vector<float> a(size, nan), b(size);
      via_gemm(a.data());
      direct(b.data());
      return a == b;
    };
    QVERIFY(same(n * r, [&](float* c) { cpu::gemm<float>(false, true, n, r, in, 1.5f, x.data(), in, lora_A.data(), in, 0.0f, c, r); },
                 [&](float* c) { cpu::narrow_rows_gemm(true, n, r, in, 1.5f, x.data(), in, lora_A.data(), in, 0.0f, c, r); }));
    QVERIFY(same(n * r, [&](float* c) { cpu::gemm<float>(false, false, n, r, out, 2.0f, dy.data(), out, lora_B.data(), r, 0.0f, c, r); },
                 [&](float* c) { cpu::narrow_rows_gemm(false, n, r, out, 2.0f, dy.data(), out, lora_B.data(), r, 0.0f, c, r); }));
    QVERIFY(same(out * r, [&](float* c) { cpu::gemm<float>(true, false, out, r, n, 2.0f, dy.data(), out, u.data(), r, 0.0f, c, r); },
                 [&](float* c) { cpu::narrow_cols_gemm(out, r, n, 2.0f, dy.data(), out, u.data(), r, 0.0f, c, r, false); }));
    QVERIFY(same(r * in, [&](float* c) { cpu::gemm<float>(true, false, r, in, n, 1.0f, du.data(), r, x.data(), in, 0.0f, c, in); },
                 [&](float* c) { cpu::narrow_cols_gemm(in, r, n, 1.0f, x.data(), in, du.data(), r, 0.0f, c, in, true); }));
  }

  void bad_shapes_are_refused() {
    std::vector<float> a(256, 1.0f), b(256, 1.0f), c(256);
    EXPECT_THROW_WITH(std::invalid_argument,
                      cpu::narrow_rows_gemm(false, 2, 4, 2, 1.0f, a.data(), 2, b.data(), 4, 0.0f, c.data(), 4),
                      "narrow side 4");
    EXPECT_THROW_WITH(std::invalid_argument,
                      cpu::narrow_cols_gemm(2, 40, 2, 1.0f, a.data(), 2, b.data(), 40, 0.0f, c.data(), 40, false),
                      "narrow side 40");
    EXPECT_THROW_WITH(std::invalid_argument,
                      cpu::narrow_rows_gemm(true, 2, 8, 4, 1.0f, a.data(), 4, b.data(), 3, 0.0f, c.data(), 8),
                      "bad shape");
    EXPECT_THROW_WITH(std::invalid_argument,
                      cpu::narrow_cols_gemm(5, 8, 4, 1.0f, a.data(), 5, b.data(), 8, 0.0f, c.data(), 4, true),
                      "bad shape");
  }
};

QTEST_APPLESS_MAIN(TestNarrowGemm)
#include "test_narrow_gemm.moc"

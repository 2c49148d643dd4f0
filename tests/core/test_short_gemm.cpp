// Products over a LoRA rank (core/cpu/short_gemm) against a float64
// reference, on every SIMD path this CPU runs (and the baseline fallback):
// both layouts of B, beta 0 (C full of NaN, which must not be read), 1 and
// another, odd shapes, strided rows whose padding must stay untouched. The
// sums differ from the reference only by fp32 rounding, so the tolerance is
// relative to the sum of the magnitudes of each element's terms. Also: one
// thread and two give the same bits, cpu::gemm sends such products here,
// and bad shapes are refused.
#include <QtTest>
#include <omp.h>

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/cpu/kernels.h"
#include "core/cpu/short_gemm.h"
#include "expect_throw.h"
#include "gemm_fixtures.h"

using namespace lwb;
using cpu::Simd;
using test::random_normals;
using test::simd_paths;

namespace {

// op(B)[k, j] of B [N, K] (tb) or [K, N], ldb apart.
float op_b(const std::vector<float>& B, bool tb, std::int64_t ldb, std::int64_t k, std::int64_t j) {
  return tb ? B[j * ldb + k] : B[k * ldb + j];
}


}  // namespace

class TestShortGemm : public QObject {
  Q_OBJECT
 private slots:
  void matches_reference() {
    std::mt19937 rng(3);
    int cases = 0;
    for (Simd simd : simd_paths())
      for (bool tb : {true, false})
        for (std::int64_t K : {1, 3, 8, 17, 32})
          for (auto [M, N] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {3, 7}, {4, 16}, {5, 17},
                              {67, 37}, {130, 69}, {9, 130}})
            for (auto [alpha, beta] : {std::pair<float, float>{1.0f, 0.0f}, {0.25f, 1.0f}, {-2.0f, 0.5f}}) {
              const std::int64_t lda = K + 2, ldb = (tb ? K : N) + 3, ldc = N + 5;
              const std::vector<float> A = random_normals(static_cast<std::size_t>(M * lda), rng);
              const std::vector<float> B = random_normals(static_cast<std::size_t>((tb ? N : K) * ldb), rng);
              std::vector<float> C = test::output(M, N, ldc, beta, rng);
              const std::vector<float> C0 = C;
              cpu::short_inner_gemm(tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, simd);
              const QString what = QString("%1 tb=%2 M=%3 N=%4 K=%5 alpha=%6 beta=%7")
                                       .arg(cpu::simd_name(simd)).arg(tb).arg(M).arg(N).arg(K).arg(alpha).arg(beta);
              const QString error = test::mismatch(what, C, C0, M, N, ldc, K, alpha, beta, [&](auto i, auto j, auto k) {
                return double(A[i * lda + k]) * op_b(B, tb, ldb, k, j);
              });
              if (!error.isEmpty()) QFAIL(qPrintable(error));
              ++cases;
            }
    qInfo("%d products checked", cases);
  }

  // Each element's sum does not depend on how the rows are shared out.
  void thread_count_does_not_change_bits() {
    std::mt19937 rng(5);
    const std::int64_t M = 1000, N = 200, K = 8;
    const std::vector<float> A = random_normals(M * K, rng), B = random_normals(N * K, rng);
    std::vector<float> one(M * N), two(M * N);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    cpu::short_inner_gemm(true, M, N, K, 0.5f, A.data(), K, B.data(), K, 0.0f, one.data(), N);
    omp_set_num_threads(2);
    cpu::short_inner_gemm(true, M, N, K, 0.5f, A.data(), K, B.data(), K, 0.0f, two.data(), N);
    omp_set_num_threads(threads);
    QVERIFY(one == two);
  }

  // cpu::gemm takes a product over a short inner dimension here: with beta
  // 0 it never reads C (NaN stays out), as BLAS's contract says.
  void gemm_routes_short_products() {
    std::mt19937 rng(9);
    const std::int64_t M = 70, N = 50, K = 8;
    const std::vector<float> A = random_normals(M * K, rng), B = random_normals(N * K, rng);
    std::vector<float> via_gemm(M * N, std::numeric_limits<float>::quiet_NaN()), direct(M * N);
    cpu::gemm<float>(false, true, M, N, K, 1.5f, A.data(), K, B.data(), K, 0.0f, via_gemm.data(), N);
    cpu::short_inner_gemm(true, M, N, K, 1.5f, A.data(), K, B.data(), K, 0.0f, direct.data(), N);
    QVERIFY(via_gemm == direct);
  }

  void bad_shapes_are_refused() {
    std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64);
    EXPECT_THROW_WITH(std::invalid_argument,
                      cpu::short_inner_gemm(false, 2, 2, 0, 1.0f, a.data(), 1, b.data(), 2, 0.0f, c.data(), 2),
                      "inner dimension 0");
    EXPECT_THROW_WITH(std::invalid_argument,
                      cpu::short_inner_gemm(false, 1, 1, cpu::kShortInnerMax + 1, 1.0f, a.data(), 40, b.data(), 1,
                                            0.0f, c.data(), 1),
                      "inner dimension 33");
    EXPECT_THROW_WITH(std::invalid_argument,
                      cpu::short_inner_gemm(true, 2, 2, 4, 1.0f, a.data(), 3, b.data(), 4, 0.0f, c.data(), 2),
                      "bad shape");
  }
};

QTEST_APPLESS_MAIN(TestShortGemm)
#include "test_short_gemm.moc"

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

#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "core/cpu/kernels.h"
#include "core/cpu/narrow_gemm.h"
#include "expect_throw.h"
#include "gemm_fixtures.h"

using namespace lwb;
using cpu::Simd;
using test::random_normals;
using test::simd_paths;

namespace {

const std::pair<float, float> kScales[] = {{1.0f, 0.0f}, {0.25f, 1.0f}, {-2.0f, 0.5f}};

}  // namespace

class TestNarrowGemm : public QObject {
  Q_OBJECT
 private slots:
  // C[M, N] = beta·C + alpha·A[M, K]·op(B), N narrow.
  void rows_match_reference() {
    std::mt19937 rng(3);
    int cases = 0;
    for (Simd simd : simd_paths())
      for (bool tb : {true, false})
        for (std::int64_t N : {8, 16, 24, 32})
          for (std::int64_t K : {1, 7, 40})
            for (std::int64_t M : {1, 13, 61})
              for (auto [alpha, beta] : kScales) {
                // tb = false with ldb == N reads B in place; ldb > N is copied first.
                const std::int64_t lda = K + 2, ldb = tb ? K + 3 : N + (M == 13 ? 0 : 5), ldc = N + 5;
                const std::vector<float> A = random_normals(static_cast<std::size_t>(M * lda), rng);
                const std::vector<float> B = random_normals(static_cast<std::size_t>((tb ? N : K) * ldb), rng);
                std::vector<float> C = test::output(M, N, ldc, beta, rng);
                const std::vector<float> C0 = C;
                cpu::narrow_rows_gemm(tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, simd);
                const QString what = QString("%1 rows tb=%2 M=%3 N=%4 K=%5 alpha=%6 beta=%7")
                                         .arg(cpu::simd_name(simd)).arg(tb).arg(M).arg(N).arg(K).arg(alpha).arg(beta);
                const QString error = test::mismatch(what, C, C0, M, N, ldc, K, alpha, beta, [&](auto i, auto j, auto k) {
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
    for (Simd simd : simd_paths())
      for (bool transposed : {false, true})
        for (std::int64_t N : {8, 16, 24, 32})
          for (std::int64_t K : {1, 7, 40})
            for (std::int64_t M : {1, 13, 130})
              for (auto [alpha, beta] : kScales) {
                const std::int64_t lda = M + 2, ldb = N + 3, ldc = (transposed ? M : N) + 5;
                const std::vector<float> A = random_normals(static_cast<std::size_t>(K * lda), rng);
                const std::vector<float> B = random_normals(static_cast<std::size_t>(K * ldb), rng);
                const std::int64_t rows = transposed ? N : M, cols = transposed ? M : N;
                std::vector<float> C = test::output(rows, cols, ldc, beta, rng);
                const std::vector<float> C0 = C;
                cpu::narrow_cols_gemm(M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, transposed,
                                      simd);
                const QString what = QString("%1 cols transposed=%2 M=%3 N=%4 K=%5 alpha=%6 beta=%7")
                                         .arg(cpu::simd_name(simd)).arg(transposed).arg(M).arg(N).arg(K).arg(alpha)
                                         .arg(beta);
                const QString error = test::mismatch(what, C, C0, rows, cols, ldc, K, alpha, beta, [&](auto i, auto j, auto k) {
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
    const std::vector<float> A = random_normals(M * K, rng), B = random_normals(K * N, rng),
                             At = random_normals(K * M, rng);
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
    const std::vector<float> x = random_normals(n * in, rng), dy = random_normals(n * out, rng),
                             lora_A = random_normals(r * in, rng), lora_B = random_normals(out * r, rng),
                             u = random_normals(n * r, rng), du = random_normals(n * r, rng);
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

// The block products of causal attention (core/cpu/attention_gemm) against a
// float64 reference on every SIMD path this CPU runs: A as is and
// transposed, beta 0 (C full of NaN, which must not be read) and not, shapes
// with tails in every dimension, strided rows whose padding must stay
// untouched. Each causal skip is checked where it matters: the entries it
// may leave out are exempt, and operands that hold non-zeros right at the
// edge of what may be skipped catch a tile skipped too far. Then the whole
// fp32 attention, forward and backward, against fp64 on the same inputs.
#include <QtTest>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/cpu/attention_gemm.h"
#include "core/cpu/kernels.h"
#include "gemm_fixtures.h"

using namespace lwb;
using cpu::CausalSkip;
using cpu::Simd;
using test::random_normals;
using test::simd_paths;

namespace {

struct Case {
  std::int64_t M, N, K;
};

// The entries C[i, j] that a skip may leave out.
bool exempt(CausalSkip skip, std::int64_t offset, std::int64_t i, std::int64_t j) {
  return skip == CausalSkip::Columns && j > offset + i;
}

// Whether op(A)[i, k] is one that a skip says is zero.
bool zero_by_skip(CausalSkip skip, std::int64_t offset, std::int64_t i, std::int64_t k) {
  return (skip == CausalSkip::InnerUpTo && k > offset + i) || (skip == CausalSkip::InnerFrom && k < i - offset);
}

template <class T>
std::vector<T> cast(const std::vector<float>& v) {
  return std::vector<T>(v.begin(), v.end());
}

}  // namespace

class TestAttentionGemm : public QObject {
  Q_OBJECT
 private slots:
  void matches_reference() {
    std::mt19937 rng(11);
    int cases = 0;
    const std::vector<Case> shapes = {{1, 1, 1},     {5, 7, 3},    {6, 16, 64},  {64, 64, 64},
                                      {13, 37, 100}, {64, 200, 64}, {7, 33, 17}, {64, 24, 130}};
    for (Simd simd : simd_paths())
      for (bool ta : {false, true})
        for (const Case& c : shapes)
          for (CausalSkip skip : {CausalSkip::None, CausalSkip::Columns, CausalSkip::InnerUpTo, CausalSkip::InnerFrom})
            for (std::int64_t offset : {std::int64_t{0}, std::int64_t{5}, c.K / 2})
              for (auto [alpha, beta] : {std::pair<float, float>{0.125f, 0.0f}, {-1.5f, 1.0f}}) {
                if (skip == CausalSkip::None && offset != 0) continue;
                const std::int64_t lda = (ta ? c.M : c.K) + 3, ldb = c.N + 2, ldc = c.N + 5;
                std::vector<float> A = random_normals(static_cast<std::size_t>((ta ? c.K : c.M) * lda), rng);
                auto a_at = [&](std::int64_t i, std::int64_t k) -> float& {
                  return ta ? A[k * lda + i] : A[i * lda + k];
                };
                for (std::int64_t i = 0; i < c.M; ++i)
                  for (std::int64_t k = 0; k < c.K; ++k)
                    if (zero_by_skip(skip, offset, i, k)) a_at(i, k) = 0.0f;
                const std::vector<float> B = random_normals(static_cast<std::size_t>(c.K * ldb), rng);
                std::vector<float> C = test::output(c.M, c.N, ldc, beta, rng);
                const std::vector<float> C0 = C;
                cpu::attention_block_gemm(ta, c.M, c.N, c.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(),
                                          ldc, skip, offset, simd);
                // Exempt entries take their reference value, so that the
                // shared check sees the rest and the padding.
                std::vector<float> seen = C;
                for (std::int64_t i = 0; i < c.M; ++i)
                  for (std::int64_t j = 0; j < c.N; ++j)
                    if (exempt(skip, offset, i, j)) {
                      double ref = beta == 0.0f ? 0.0 : double(beta) * C0[i * ldc + j];
                      for (std::int64_t k = 0; k < c.K; ++k) ref += double(alpha) * a_at(i, k) * B[k * ldb + j];
                      seen[i * ldc + j] = static_cast<float>(ref);
                    }
                const QString what = QString("%1 ta=%2 M=%3 N=%4 K=%5 skip=%6 offset=%7 beta=%8")
                                         .arg(cpu::simd_name(simd)).arg(ta).arg(c.M).arg(c.N).arg(c.K)
                                         .arg(static_cast<int>(skip)).arg(offset).arg(beta);
                const QString error = test::mismatch(what, seen, C0, c.M, c.N, ldc, c.K, alpha, beta,
                                                     [&](auto i, auto j, auto k) {
                                                       return double(a_at(i, k)) * B[k * ldb + j];
                                                     });
                if (!error.isEmpty()) QFAIL(qPrintable(error));
                ++cases;
              }
    qInfo("%d products checked", cases);
  }

  void attention_fp32_matches_fp64_data() {
    QTest::addColumn<int>("B");
    QTest::addColumn<int>("T");
    QTest::addColumn<int>("heads");
    QTest::addColumn<int>("kv_heads");
    QTest::addColumn<int>("head_dim");
    QTest::newRow("small's shape, T 256") << 2 << 256 << 8 << 4 << 64;
    QTest::newRow("T not whole blocks") << 2 << 100 << 4 << 2 << 64;
    QTest::newRow("head_dim 24, no grouping") << 1 << 130 << 3 << 3 << 24;
    QTest::newRow("one token") << 3 << 1 << 2 << 1 << 16;
  }

  // The fp32 path (the block kernel) against the fp64 one (BLAS, which the
  // gradient checks in test_ops cover) on the same inputs.
  void attention_fp32_matches_fp64() {
    QFETCH(int, B);
    QFETCH(int, T);
    QFETCH(int, heads);
    QFETCH(int, kv_heads);
    QFETCH(int, head_dim);
    const AttentionShape s{B, T, heads, kv_heads, head_dim};
    std::mt19937 rng(17);
    const std::size_t rows = static_cast<std::size_t>(B) * T, qn = rows * heads * head_dim,
                      kvn = rows * kv_heads * head_dim;
    const std::vector<float> q = random_normals(qn, rng), k = random_normals(kvn, rng), v = random_normals(kvn, rng),
                             dout = random_normals(qn, rng);
    auto run = [&](auto zero) {
      using V = decltype(zero);
      std::vector<V> out(qn), lse(static_cast<std::size_t>(B) * heads * T), dq(qn), dk(kvn), dv(kvn);
      std::vector<V> ws(cpu::attention_workspace_elems(s, omp_get_max_threads()));
      const std::vector<V> q_ = cast<V>(q), k_ = cast<V>(k), v_ = cast<V>(v), do_ = cast<V>(dout);
      cpu::attention_forward<V>(out.data(), lse.data(), q_.data(), k_.data(), v_.data(), s, ws.data());
      cpu::attention_backward<V>(dq.data(), dk.data(), dv.data(), do_.data(), q_.data(), k_.data(), v_.data(),
                                 out.data(), lse.data(), s, ws.data());
      return std::vector<std::vector<V>>{out, dq, dk, dv};
    };
    const auto f32 = run(0.0f);
    const auto f64 = run(0.0);
    const char* names[] = {"out", "dq", "dk", "dv"};
    for (int t = 0; t < 4; ++t) {
      double worst = 0, scale = 0;
      for (std::size_t i = 0; i < f64[t].size(); ++i) {
        worst = std::max(worst, std::fabs(f32[t][i] - f64[t][i]));
        scale = std::max(scale, std::fabs(f64[t][i]));
      }
      // fp32 rounding over sums of a few hundred terms, relative to the
      // largest value or to 1, the inputs' scale: with one token dq cancels
      // to zero, leaving the rounding of terms of order 1.
      const double tol = 2e-5 * std::max(scale, 1.0);
      qInfo("%s: max |fp32 - fp64| %.3g (largest %.3g)", names[t], worst, scale);
      QVERIFY2(worst <= tol, qPrintable(QString("%1: %2 > %3").arg(names[t]).arg(worst).arg(tol)));
    }
  }
};

QTEST_APPLESS_MAIN(TestAttentionGemm)
#include "test_attention_gemm.moc"

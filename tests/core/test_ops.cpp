// Every CPU op: forward against a direct reference where one is short to
// write, and backward against central finite differences in double.
#include <QtTest>

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/common/errors.h"
#include "core/cpu/cpu_backend.h"
#include "core/model/weights_init.h"
#include "core/optim/adamw.h"
#include "core/optim/schedule.h"
#include "gradcheck.h"

using namespace lwb;
using namespace lwb::test;

namespace {
constexpr double kTol = 1e-8;  // double precision, 4-point stencil with h = 1e-4

std::vector<double> values(Backend& be, const Tensor& t) { return download_values(be, t); }

Tensor i32_tensor(Backend& be, const std::vector<std::int32_t>& v) {
  Tensor t = make_tensor(be, Shape{static_cast<std::int64_t>(v.size())}, DType::I32);
  be.upload(t, v.data(), v.size() * sizeof(std::int32_t));
  return t;
}
}  // namespace

class TestOps : public QObject {
  Q_OBJECT
  CpuBackend be;

 private slots:
  // Skinny products (LoRA's factors) run as blocks of C over OpenMP threads
  // (core/cpu/elementwise.cpp); each block must equal the whole product, for
  // every transpose, split along rows or columns, with a leading dimension
  // wider than the matrix.
  void gemm_blocks_equal_the_product_data() {
    QTest::addColumn<int>("M");
    QTest::addColumn<int>("N");
    QTest::addColumn<int>("K");
    QTest::newRow("rows, small N (x A^T)") << 700 << 6 << 40;
    QTest::newRow("rows, small K (u B^T)") << 530 << 300 << 3;
    QTest::newRow("columns, small M (du^T x)") << 5 << 650 << 300;
  }
  void gemm_blocks_equal_the_product() {
    QFETCH(int, M);
    QFETCH(int, N);
    QFETCH(int, K);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(2);
    for (const bool ta : {false, true})
      for (const bool tb : {false, true}) {
        const std::int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;
        const Tensor A = random_tensor(be, Shape{(ta ? K : M) * lda}, 11);
        const Tensor B = random_tensor(be, Shape{(tb ? N : K) * ldb}, 12);
        const Tensor C = random_tensor(be, Shape{M * ldc}, 13);
        const std::vector<double> a = values(be, A), b = values(be, B), c0 = values(be, C);
        be.gemm(ta, tb, M, N, K, 1.5, A, lda, B, ldb, 0.5, C, ldc);
        const std::vector<double> c = values(be, C);
        double worst = 0;
        for (std::int64_t i = 0; i < M; ++i)
          for (std::int64_t j = 0; j < N + 1; ++j) {
            double want = c0[i * ldc + j];  // the padding column stays as it was
            if (j < N) {
              double s = 0;
              for (std::int64_t k = 0; k < K; ++k) s += a[ta ? k * lda + i : i * lda + k] * b[tb ? j * ldb + k : k * ldb + j];
              want = 1.5 * s + 0.5 * want;
            }
            worst = std::max(worst, std::abs(c[i * ldc + j] - want) / (1 + std::abs(want)));
          }
        QVERIFY2(worst < 1e-12, qPrintable(QString("ta %1 tb %2: %3").arg(ta).arg(tb).arg(worst)));
      }
    omp_set_num_threads(threads);
  }

  // The adapters' column-scale backward: dot += alpha * colsum(a * b) and
  // scaled = a * s in one pass, with scaled in its own buffer, over a, or over
  // b. Widths below one block, of several blocks and not a multiple of 8; the
  // float sums must not depend on the thread count.
  void column_dot_scale_data() {
    QTest::addColumn<int>("rows");
    QTest::addColumn<int>("cols");
    QTest::newRow("rank-wide") << 37 << 8;
    QTest::newRow("one block") << 300 << 61;
    QTest::newRow("blocks") << 129 << 1100;
  }
  void column_dot_scale() {
    QFETCH(int, rows);
    QFETCH(int, cols);
    const std::int64_t n = std::int64_t{rows} * cols;
    const int threads = omp_get_max_threads();
    for (const DType dtype : {DType::F64, DType::F32})
      for (const int over : {0, 1, 2}) {  // scaled into its own buffer, over a, over b
        std::vector<std::vector<double>> dots, scaleds;
        for (const int t : {1, 2}) {
          omp_set_num_threads(t);
          const Tensor a = random_tensor(be, Shape{n}, 21, 1.0, dtype), b = random_tensor(be, Shape{n}, 22, 1.0, dtype);
          const Tensor s = random_tensor(be, Shape{cols}, 23, 1.0, dtype);
          const Tensor dot = random_tensor(be, Shape{cols}, 24, 1.0, dtype);
          const Tensor own = random_tensor(be, Shape{n}, 25, 1.0, dtype);
          const std::vector<double> av = values(be, a), bv = values(be, b), sv = values(be, s), d0 = values(be, dot);
          const Tensor& scaled = over == 0 ? own : over == 1 ? a : b;
          be.column_dot_scale(dot, scaled, a, b, s, rows, cols, -0.75);
          dots.push_back(values(be, dot));
          scaleds.push_back(values(be, scaled));
          double worst = 0;
          for (std::int64_t j = 0; j < cols; ++j) {
            double sum = 0;
            for (std::int64_t i = 0; i < rows; ++i) {
              sum += av[i * cols + j] * bv[i * cols + j];
              const double want = av[i * cols + j] * sv[j];
              worst = std::max(worst, std::abs(scaleds.back()[i * cols + j] - want) / (1 + std::abs(want)));
            }
            const double want = d0[j] - 0.75 * sum;
            worst = std::max(worst, std::abs(dots.back()[j] - want) / (1 + std::abs(want)) / std::sqrt(rows));
          }
          const double tol = dtype == DType::F64 ? 1e-13 : 1e-6;
          QVERIFY2(worst < tol, qPrintable(QString("%1 over %2, %3 threads: %4")
                                               .arg(dtype == DType::F64 ? "f64" : "f32").arg(over).arg(t).arg(worst)));
        }
        QVERIFY(dots[0] == dots[1]);
        QVERIFY(scaleds[0] == scaleds[1]);
      }
    omp_set_num_threads(threads);
  }

  void embedding() {
    const std::int64_t V = 7, C = 5, n = 6;
    Tensor table = random_tensor(be, Shape{V, C}, 1), dtable = make_tensor(be, Shape{V, C}, DType::F64);
    Tensor tokens = i32_tensor(be, {3, 0, 3, 6, 1, 3});  // repeats must accumulate
    Tensor out = make_tensor(be, Shape{n, C}, DType::F64), R = random_tensor(be, Shape{n, C}, 2);
    std::vector<GradInput> in{{"table", table, dtable}};
    auto loss = [&] {
      be.embedding_forward(out, tokens, table, n, C);
      return dot(values(be, out), values(be, R));
    };
    QCOMPARE(values(be, out).size(), std::size_t(n * C));
    const double err = gradcheck("embedding", be, in, loss,
                                 [&] { be.embedding_backward(dtable, tokens, R, n, C); });
    QVERIFY2(err < kTol, qPrintable(QString::number(err)));
  }

  void rmsnorm() {
    const std::int64_t n = 4, C = 6;
    Tensor x = random_tensor(be, Shape{n, C}, 3), w = random_tensor(be, Shape{C}, 4);
    Tensor dx = make_tensor(be, Shape{n, C}, DType::F64), dw = make_tensor(be, Shape{C}, DType::F64);
    Tensor out = make_tensor(be, Shape{n, C}, DType::F64), rstd = make_tensor(be, Shape{n}, DType::F64);
    Tensor R = random_tensor(be, Shape{n, C}, 5);
    auto loss = [&] {
      be.rmsnorm_forward(out, rstd, x, w, n, C, 1e-5);
      return dot(values(be, out), values(be, R));
    };
    loss();
    // Forward against the formula.
    const auto xv = values(be, x), wv = values(be, w), ov = values(be, out);
    for (std::int64_t i = 0; i < n; ++i) {
      double ss = 0;
      for (std::int64_t c = 0; c < C; ++c) ss += xv[i * C + c] * xv[i * C + c];
      const double r = 1 / std::sqrt(ss / C + 1e-5);
      for (std::int64_t c = 0; c < C; ++c) QVERIFY(std::abs(ov[i * C + c] - xv[i * C + c] * r * wv[c]) < 1e-12);
    }
    std::vector<GradInput> in{{"x", x, dx}, {"w", w, dw}};
    const double err = gradcheck("rmsnorm", be, in, loss, [&] {
      loss();
      be.rmsnorm_backward(dx, dw, R, x, w, rstd, n, C);
    });
    QVERIFY2(err < kTol, qPrintable(QString::number(err)));
  }

  void rope() {
    ModelConfig c;
    c.hidden = 8;
    c.heads = 2;
    c.rope_theta = 100.0;
    const std::int64_t T = 5, n = 2 * T;
    const int heads = 2, hd = c.head_dim();
    Tensor table = make_tensor(be, Shape{T, hd}, DType::F64);
    upload_values(be, table, rope_table(c, T));
    Tensor x = random_tensor(be, Shape{n, heads * hd}, 6), dx = make_tensor(be, x.shape, DType::F64);
    Tensor work = make_tensor(be, x.shape, DType::F64), R = random_tensor(be, x.shape, 7);
    auto loss = [&] {
      be.copy(work, x);
      be.rope_forward(work, table, n, T, heads, hd);
      return dot(values(be, work), values(be, R));
    };
    loss();
    // HF rotate_half: out_j = x_j cos - x_{j+d/2} sin, out_{j+d/2} = x_{j+d/2} cos + x_j sin.
    const auto xv = values(be, x), wv = values(be, work);
    for (std::int64_t i = 0; i < n; ++i)
      for (int h = 0; h < heads; ++h)
        for (int j = 0; j < hd / 2; ++j) {
          const double ang = (i % T) * std::pow(100.0, -2.0 * j / hd);
          const std::int64_t b = (i * heads + h) * hd;
          QVERIFY(std::abs(wv[b + j] - (xv[b + j] * std::cos(ang) - xv[b + j + hd / 2] * std::sin(ang))) < 1e-12);
          QVERIFY(std::abs(wv[b + j + hd / 2] - (xv[b + j + hd / 2] * std::cos(ang) + xv[b + j] * std::sin(ang))) < 1e-12);
        }
    std::vector<GradInput> in{{"x", x, dx}};
    const double err = gradcheck("rope", be, in, loss, [&] {
      be.copy(dx, R);
      be.rope_backward(dx, table, n, T, heads, hd);
    });
    QVERIFY2(err < kTol, qPrintable(QString::number(err)));
  }

  void attention_data() {
    QTest::addColumn<int>("B");
    QTest::addColumn<int>("T");
    QTest::addColumn<int>("heads");
    QTest::addColumn<int>("kv_heads");
    QTest::addColumn<int>("head_dim");
    QTest::newRow("mha") << 2 << 5 << 2 << 2 << 4;
    QTest::newRow("gqa") << 2 << 7 << 4 << 2 << 6;
    QTest::newRow("mqa") << 1 << 6 << 3 << 1 << 4;
    // Past the 64-row block edge of the CPU kernel.
    QTest::newRow("gqa-T70") << 1 << 70 << 2 << 1 << 4;
  }
  void attention() {
    QFETCH(int, B);
    QFETCH(int, T);
    QFETCH(int, heads);
    QFETCH(int, kv_heads);
    QFETCH(int, head_dim);
    AttentionShape s{B, T, heads, kv_heads, head_dim};
    const std::int64_t n = s.rows(), qd = heads * head_dim, kvd = kv_heads * head_dim;
    Tensor q = random_tensor(be, Shape{n, qd}, 10), k = random_tensor(be, Shape{n, kvd}, 11),
           v = random_tensor(be, Shape{n, kvd}, 12);
    Tensor dq = make_tensor(be, q.shape, DType::F64), dk = make_tensor(be, k.shape, DType::F64),
           dv = make_tensor(be, v.shape, DType::F64);
    Tensor out = make_tensor(be, q.shape, DType::F64), lse = make_tensor(be, Shape{B * heads * T}, DType::F64);
    Tensor ws = make_tensor(be, Shape{static_cast<std::int64_t>(be.attention_workspace_bytes(s, DType::F64) / 8)}, DType::F64);
    Tensor R = random_tensor(be, q.shape, 13);
    auto loss = [&] {
      be.attention_forward(out, lse, q, k, v, s, ws);
      return dot(values(be, out), values(be, R));
    };
    loss();
    // Forward against a naive causal softmax attention.
    const auto qv = values(be, q), kv = values(be, k), vv = values(be, v), ov = values(be, out),
               lv = values(be, lse);
    const int group = heads / kv_heads;
    double max_err = 0;
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < heads; ++h)
        for (int i = 0; i < T; ++i) {
          std::vector<double> sc(i + 1);
          double mx = -1e300;
          for (int j = 0; j <= i; ++j) {
            double d = 0;
            for (int e = 0; e < head_dim; ++e)
              d += qv[(b * T + i) * qd + h * head_dim + e] * kv[(b * T + j) * kvd + (h / group) * head_dim + e];
            sc[j] = d / std::sqrt(double(head_dim));
            mx = std::max(mx, sc[j]);
          }
          double z = 0;
          for (double x : sc) z += std::exp(x - mx);
          max_err = std::max(max_err, std::abs(lv[(b * heads + h) * T + i] - (mx + std::log(z))));
          for (int e = 0; e < head_dim; ++e) {
            double o = 0;
            for (int j = 0; j <= i; ++j) o += std::exp(sc[j] - mx) / z * vv[(b * T + j) * kvd + (h / group) * head_dim + e];
            max_err = std::max(max_err, std::abs(o - ov[(b * T + i) * qd + h * head_dim + e]));
          }
        }
    QVERIFY2(max_err < 1e-12, qPrintable(QString::number(max_err)));
    std::vector<GradInput> in{{"q", q, dq}, {"k", k, dk}, {"v", v, dv}};
    const double err = gradcheck(std::string("attention ") + QTest::currentDataTag(), be, in, loss, [&] {
      loss();
      be.attention_backward(dq, dk, dv, R, q, k, v, out, lse, s, ws);
    }, 150);
    QVERIFY2(err < kTol, qPrintable(QString::number(err)));
  }

  void swiglu() {
    const std::int64_t n = 24;
    Tensor g = random_tensor(be, Shape{n}, 20, 2.0), u = random_tensor(be, Shape{n}, 21);
    Tensor dg = make_tensor(be, g.shape, DType::F64), du = make_tensor(be, u.shape, DType::F64);
    Tensor h = make_tensor(be, g.shape, DType::F64), R = random_tensor(be, g.shape, 22);
    auto loss = [&] {
      be.swiglu_forward(h, g, u, n);
      return dot(values(be, h), values(be, R));
    };
    std::vector<GradInput> in{{"gate", g, dg}, {"up", u, du}};
    const double err = gradcheck("swiglu", be, in, loss, [&] { be.swiglu_backward(dg, du, R, g, u, n); });
    QVERIFY2(err < kTol, qPrintable(QString::number(err)));
  }

  void cross_entropy() {
    const std::int64_t n = 6, V = 9;
    Tensor logits = random_tensor(be, Shape{n, V}, 30, 2.0), dlogits = make_tensor(be, logits.shape, DType::F64);
    Tensor targets = i32_tensor(be, {3, -1, 0, 8, -1, 3});
    Tensor losses = make_tensor(be, Shape{n}, DType::F64);
    const double scale = 1.0 / 4;  // four scored rows
    auto loss = [&] {
      be.cross_entropy(losses, Tensor{}, logits, targets, n, V, scale);
      return be.sum(losses) * scale;
    };
    loss();
    const auto lv = values(be, losses);
    QCOMPARE(lv[1], 0.0);
    QCOMPARE(lv[4], 0.0);
    // Against -log softmax computed directly.
    const auto xv = values(be, logits);
    double z = 0;
    for (int j = 0; j < V; ++j) z += std::exp(xv[j]);
    QVERIFY(std::abs(lv[0] - (std::log(z) - xv[3])) < 1e-12);
    // The fused backward may overwrite the logits in place.
    Tensor copy = make_tensor(be, logits.shape, DType::F64);
    be.copy(copy, logits);
    be.cross_entropy(losses, copy, copy, targets, n, V, scale);
    std::vector<GradInput> in{{"logits", logits, dlogits}};
    const double err = gradcheck("cross_entropy", be, in, loss, [&] {
      be.cross_entropy(losses, dlogits, logits, targets, n, V, scale);
    });
    QVERIFY2(err < kTol, qPrintable(QString::number(err)));
    const auto inplace = values(be, copy), separate = values(be, dlogits);
    for (std::size_t i = 0; i < inplace.size(); ++i) QCOMPARE(inplace[i], separate[i]);
  }

  void argmax_ties_take_lowest_index() {
    Tensor logits = make_tensor(be, Shape{2, 4}, DType::F32);
    upload_values(be, logits, {1, 3, 3, 0, -1, -2, -1, -5});
    Tensor ids = make_tensor(be, Shape{2}, DType::I32);
    be.argmax_rows(ids, logits, 2, 4);
    std::int32_t out[2];
    be.download(out, ids, sizeof(out));
    QCOMPARE(out[0], 1);
    QCOMPARE(out[1], 0);
  }

  void dropout() {
    const std::int64_t n = 4000;
    const double p = 0.3;
    Tensor x = random_tensor(be, Shape{n}, 40), dx = make_tensor(be, x.shape, DType::F64);
    Tensor out = make_tensor(be, x.shape, DType::F64), R = random_tensor(be, x.shape, 41);
    be.dropout_forward(out, x, p, 99, n);
    const auto ov = values(be, out), xv = values(be, x);
    std::int64_t dropped = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      if (ov[i] == 0) ++dropped;
      else QVERIFY(std::abs(ov[i] - xv[i] / (1 - p)) < 1e-12);
    }
    qInfo("dropout p=%.2f dropped %.3f of %lld", p, double(dropped) / n, (long long)n);
    QVERIFY(std::abs(double(dropped) / n - p) < 0.03);
    // Same seed, same mask; another seed, another mask.
    Tensor again = make_tensor(be, x.shape, DType::F64), other = make_tensor(be, x.shape, DType::F64);
    be.dropout_forward(again, x, p, 99, n);
    be.dropout_forward(other, x, p, 100, n);
    QVERIFY(values(be, again) == ov);
    QVERIFY(values(be, other) != ov);
    std::vector<GradInput> in{{"x", x, dx}};
    auto loss = [&] {
      be.dropout_forward(out, x, p, 99, n);
      return dot(values(be, out), values(be, R));
    };
    const double err = gradcheck("dropout", be, in, loss, [&] { be.dropout_backward(dx, R, p, 99, n); });
    QVERIFY2(err < kTol, qPrintable(QString::number(err)));
  }

  void reductions_are_exact_and_thread_independent() {
    const std::int64_t n = 100003;  // several reduction chunks plus a ragged tail
    Tensor x = random_tensor(be, Shape{n}, 50, 1.0, DType::F32);
    const auto xv = values(be, x);
    double s = 0, s2 = 0;
    for (double v : xv) { s += v; s2 += v * v; }
    QVERIFY(std::abs(be.sum(x) - s) < 1e-9 * n);
    QVERIFY(std::abs(be.sum_squares(x) - s2) < 1e-9 * n);
    const double a = be.sum_squares(x);
    QCOMPARE(be.sum_squares(x), a);
  }

  // Against torch.optim.AdamW's update written out step by step.
  void adamw_matches_torch_formula() {
    const std::int64_t n = 5;
    Tensor p = random_tensor(be, Shape{n}, 60), g = make_tensor(be, Shape{n}, DType::F64);
    Tensor m = make_tensor(be, Shape{n}, DType::F64), v = make_tensor(be, Shape{n}, DType::F64);
    std::vector<double> pr = values(be, p), mr(n, 0), vr(n, 0);
    const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1, gs = 0.5;
    for (int step = 1; step <= 4; ++step) {
      const std::vector<double> gv = normal_values(n, 1.0, 70 + step);
      upload_values(be, g, gv);
      be.adamw(p, g, m, v, Backend::AdamWStep{lr, b1, b2, eps, wd, step, gs});
      for (std::int64_t i = 0; i < n; ++i) {
        const double gi = gv[i] * gs;
        pr[i] *= 1 - lr * wd;
        mr[i] = b1 * mr[i] + (1 - b1) * gi;
        vr[i] = b2 * vr[i] + (1 - b2) * gi * gi;
        const double denom = std::sqrt(vr[i]) / std::sqrt(1 - std::pow(b2, step)) + eps;
        pr[i] -= lr / (1 - std::pow(b1, step)) * mr[i] / denom;
      }
    }
    const auto pv = values(be, p);
    for (std::int64_t i = 0; i < n; ++i) QVERIFY(std::abs(pv[i] - pr[i]) < 1e-14);
  }

  void gradient_clipping_scales_to_max_norm() {
    MemoryLedger ledger;
    ParameterSet set(DType::F64);
    Tensor w, dw;
    set.add(&w, &dw, 0, "w", Shape{3}, true);
    set.materialize(be, ledger);
    AdamW opt(set, AdamWConfig{0.1, 0.9, 0.999, 1e-8, 0.0, 1.0});
    opt.materialize(be, ledger);
    upload_values(be, dw, {3, 0, 4});
    const double norm = opt.grad_norm(be);
    QCOMPARE(norm, 5.0);
    const double clip = opt.step(be, 0.1, norm);
    QVERIFY(std::abs(clip - 1.0 / (5.0 + 1e-6)) < 1e-15);
    // First AdamW step moves each coordinate by lr * sign(g) regardless of scale.
    const auto wv = values(be, w);
    QVERIFY(std::abs(wv[0] + 0.1) < 1e-6 && std::abs(wv[1]) < 1e-12 && std::abs(wv[2] + 0.1) < 1e-6);
  }

  void schedules() {
    ScheduleConfig c{ScheduleKind::Cosine, 10, 0.1};
    QCOMPARE(learning_rate(c, 1.0, 0, 110), 0.1);
    QCOMPARE(learning_rate(c, 1.0, 9, 110), 1.0);
    QCOMPARE(learning_rate(c, 1.0, 10, 110), 1.0);
    QVERIFY(std::abs(learning_rate(c, 1.0, 60, 110) - 0.55) < 1e-12);  // half way: (1 + 0.1) / 2
    QVERIFY(std::abs(learning_rate(c, 1.0, 110, 110) - 0.1) < 1e-12);
    c.kind = ScheduleKind::Constant;
    QCOMPARE(learning_rate(c, 2.0, 50, 110), 2.0);
    QVERIFY_THROWS_EXCEPTION(lwb::ConfigError, parse_schedule("linear"));
  }
};

QTEST_APPLESS_MAIN(TestOps)
#include "test_ops.moc"

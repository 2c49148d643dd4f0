// PiSSA: the initialisation (top-r singular triplets, residual base) exact
// and randomized, the gradient in double through the residual base, the
// conversion of a trained adapter to a rank-2r LoRA of the original base,
// and what the descriptor declares (form field, checks, capabilities, arm).
#include <QtTest>

#include <cmath>

#include "core/adapters/adapter_state.h"
#include "core/adapters/attach.h"
#include "core/adapters/descriptor.h"
#include "core/adapters/numerical_rank.h"
#include "core/adapters/pissa.h"
#include "core/common/errors.h"
#include "core/cpu/cpu_backend.h"
#include "core/optim/adamw.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::test;

namespace {

AdapterConfig pissa_config(int r, int niter = -1) {
  AdapterConfig ac;
  ac.method = "pissa";
  ac.r = r;
  ac.alpha = 6;
  ac.targets.assign(kAllTargets.begin(), kAllTargets.end());
  ac.set_option("pissa.randomized", niter >= 0);
  if (niter >= 0) ac.set_option("pissa.niter", niter);
  return ac;
}

// A [rows, cols] matrix with singular values 10, 5, 2.5, ... (halving),
// from random orthonormal bases: the top triplets are well separated.
std::vector<double> decaying_matrix(int rows, int cols, std::uint64_t seed) {
  const int p = std::min(rows, cols);
  const SingularTriplets q = top_singular_triplets(normal_values(std::int64_t{rows} * cols, 1.0, seed), rows, cols, p);
  std::vector<double> m(static_cast<std::size_t>(rows) * cols, 0.0);
  for (int j = 0; j < p; ++j)
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c)
        m[static_cast<std::size_t>(r) * cols + c] += 10.0 * std::pow(0.5, j) * q.U[r * p + j] * q.Vt[j * cols + c];
  return m;
}

}  // namespace

class TestPissa : public QObject {
  Q_OBJECT
  CpuBackend be;

 private slots:
  // W_res + s B A = W, so the model starts at its base; s B A is the best
  // rank-r approximation of W; A's rows and B's columns are orthogonal
  // with A Aᵀ = Bᵀ B = diag(S / s).
  void init_reconstructs_the_base_from_the_top_triplets() {
    const MicroBatch mb;
    MemoryLedger ledger;
    Model base(micro_config(), Model::Mode::Frozen, DType::F64);
    base.materialize(be, ledger, mb.B, mb.T);
    base.init_base_weights(5);
    const std::vector<double> base_logits = micro_logits(base, be, mb);

    const AdapterConfig ac = pissa_config(3);
    Model m(micro_config(), Model::Mode::Frozen, DType::F64);
    attach_adapters(m, ac);
    m.materialize(be, ledger, mb.B, mb.T);
    m.init_base_weights(5);
    m.init_adapters(9);
    const double at_init = relative_diff(micro_logits(m, be, mb), base_logits);
    qInfo("PiSSA at init vs base logits (F64): relative difference %.3e", at_init);
    QVERIFY2(at_init < 1e-13, qPrintable(QString::number(at_init)));

    for (Target t : kAllTargets) {
      auto& p = dynamic_cast<PissaLinear&>(m.linear(1, t));
      const int in = p.in(), out = p.out(), r = 3;
      const std::vector<double> w = download_values(be, base.linear(1, t).weight),
                                res = download_values(be, p.weight), a = download_values(be, p.lora_A),
                                b = download_values(be, p.lora_B);
      const SingularTriplets exact = top_singular_triplets(w, out, in, r);
      double err = 0, norm = 0;
      for (int o = 0; o < out; ++o)
        for (int c = 0; c < in; ++c) {
          double ba = 0, best = 0;
          for (int j = 0; j < r; ++j) {
            ba += b[o * r + j] * a[j * in + c];
            best += exact.U[o * r + j] * exact.S[j] * exact.Vt[j * in + c];
          }
          const double sba = p.scaling() * ba, i = static_cast<std::size_t>(o) * in + c;
          err = std::max({err, std::abs(sba - best), std::abs(res[i] + sba - w[i])});
          norm = std::max(norm, std::abs(w[i]));
        }
      QVERIFY2(err < 1e-12 * norm, qPrintable(QString("%1: %2").arg(target_module_name(t)).arg(err)));
      for (int i = 0; i < r; ++i)
        for (int j = 0; j < r; ++j) {
          double aa = 0, bb = 0;
          for (int c = 0; c < in; ++c) aa += a[i * in + c] * a[j * in + c];
          for (int o = 0; o < out; ++o) bb += b[o * r + i] * b[o * r + j];
          const double expected = i == j ? exact.S[i] / p.scaling() : 0.0;
          QVERIFY(std::abs(aa - expected) < 1e-12 * exact.S[0] && std::abs(bb - expected) < 1e-12 * exact.S[0]);
        }
    }
  }

  // The randomized SVD: each subspace iteration brings the triplets closer
  // to the exact ones; same seed, same result.
  void randomized_svd_converges_to_the_exact_one() {
    const int rows = 40, cols = 30, r = 3;
    const std::vector<double> w = decaying_matrix(rows, cols, 77);
    const SingularTriplets exact = top_singular_triplets(w, rows, cols, r);
    double previous = INFINITY;
    for (int niter : {0, 1, 2, 4, 8}) {
      const SingularTriplets t = randomized_singular_triplets(w, rows, cols, r, niter, 123);
      double err = 0;  // of the rank-r approximation U S Vt
      for (int i = 0; i < rows; ++i)
        for (int c = 0; c < cols; ++c) {
          double x = 0, y = 0;
          for (int j = 0; j < r; ++j) {
            x += t.U[i * r + j] * t.S[j] * t.Vt[j * cols + c];
            y += exact.U[i * r + j] * exact.S[j] * exact.Vt[j * cols + c];
          }
          err = std::max(err, std::abs(x - y));
        }
      qInfo("niter %d: largest entry error of the rank-%d approximation %.3e, S %.6f %.6f %.6f", niter, r, err,
            t.S[0], t.S[1], t.S[2]);
      QVERIFY2(err < previous || err < 1e-12, qPrintable(QString("niter %1: %2 after %3").arg(niter).arg(err).arg(previous)));
      previous = err;
    }
    // Each iteration shrinks the error by about (σ4 / σ3)² = 1/4 (Halko et al.
    // 2011, §10.4): after 8, (1/2)^17 σ1 ≈ 8e-5 at most; measured 1.1e-6.
    QVERIFY2(previous < 8e-5, qPrintable(QString::number(previous)));
    const SingularTriplets a = randomized_singular_triplets(w, rows, cols, r, 2, 5),
                           b = randomized_singular_triplets(w, rows, cols, r, 2, 5);
    QCOMPARE(a.U, b.U);
    QCOMPARE(a.Vt, b.Vt);
  }

  // Randomized or exact, the residual and the factors add up to W.
  void randomized_init_still_starts_at_the_base() {
    const MicroBatch mb;
    MemoryLedger ledger;
    const std::vector<double> base_logits = base_micro_logits(be, ledger, mb, 5);
    Model m(micro_config(), Model::Mode::Frozen, DType::F32);
    attach_adapters(m, pissa_config(3, 1));
    m.materialize(be, ledger, mb.B, mb.T);
    m.init_base_weights(5);
    m.init_adapters(9);
    const double d = relative_diff(micro_logits(m, be, mb), base_logits);
    qInfo("PiSSA niter 1 at init vs base logits (F32): relative difference %.3e", d);
    QVERIFY2(d < 1e-5, qPrintable(QString::number(d)));
  }

  // Forward and backward over the residual base, in double.
  void gradcheck() {
    MemoryLedger ledger;
    AdapterConfig ac = pissa_config(3);
    ac.dropout = 0.2;
    Model m(micro_config(), Model::Mode::Frozen, DType::F64);
    attach_adapters(m, ac);
    m.materialize(be, ledger, 2, 6);
    m.init_base_weights(11);
    m.init_adapters(3);
    const double err = model_gradcheck(m, be, MicroBatch{}, "pissa");
    qInfo("whole model, PiSSA with dropout: worst relative error %.3e", err);
    QVERIFY2(err < kModelTol, qPrintable(QString::number(err)));
  }

  // After training, the kept adapter is a LoRA of rank 2r of the ORIGINAL
  // base (PEFT's path_initial_model_for_weight_conversion): merged into it,
  // it gives the trained model's logits.
  void trained_adapter_converts_to_a_lora_of_the_original_base() {
    const MicroBatch mb;
    MemoryLedger ledger;
    Model original(micro_config(), Model::Mode::Frozen, DType::F64);
    original.materialize(be, ledger, mb.B, mb.T);
    original.init_base_weights(5);

    AdapterConfig ac = pissa_config(3);
    ac.use_rslora = true;
    Model m(micro_config(), Model::Mode::Frozen, DType::F64);
    attach_adapters(m, ac);
    m.materialize(be, ledger, mb.B, mb.T);
    m.init_base_weights(5);
    m.init_adapters(9);
    AdamWConfig oc;
    oc.lr = 1e-2;
    AdamW opt(m.trainable(), oc);
    opt.materialize(be, ledger);
    auto ctl = make_variant_controller(ac, ScheduleConfig{}, oc.lr, 5, 1);
    QVERIFY(ctl);
    ctl->attach(m, opt, ledger);
    m.set_batch(mb.inputs.data(), mb.targets.data(), mb.B, mb.T);
    for (int step = 0; step < 5; ++step) {
      be.fill(m.trainable().grads().flat(), 0.0);
      m.forward(true, step);
      m.loss(mb.scored, true);
      m.backward(step);
      opt.step(be, oc.lr, opt.grad_norm(be));
    }
    const std::vector<double> trained = micro_logits(m, be, mb);
    const double moved = relative_diff(trained, micro_logits(original, be, mb));
    QVERIFY2(moved > 1e-3, qPrintable(QString("training moved the logits by only %1").arg(moved)));

    AdapterState s = extract_adapter(m, ac, "micro", "");
    const double scaling = ac.scaling();
    ctl->finish_adapter_state(s);
    QCOMPARE(s.config.method, std::string("lora"));
    QCOMPARE(s.config.r, 6);
    QVERIFY(std::abs(s.config.scaling() - scaling) < 1e-15);
    const HostTensor& a = s.tensors.at(peft_key("model.layers.0.self_attn.q_proj", "lora_A.weight"));
    QCOMPARE(a.shape, (std::vector<std::int64_t>{6, 16}));

    Model merged(micro_config(), Model::Mode::Frozen, DType::F64);
    merged.materialize(be, ledger, mb.B, mb.T);
    merge_adapter_into_base(original, s, merged);
    const double d = relative_diff(micro_logits(merged, be, mb), trained);
    qInfo("converted rank-6 LoRA merged into the original base vs the trained PiSSA model: %.3e (moved %.3e)", d,
          moved);
    // The adapter state holds float32 values (as PEFT files do): ~3e-8 measured.
    QVERIFY2(d < 1e-6, qPrintable(QString::number(d)));
  }

  void descriptor_declares_its_form_checks_and_arm() {
    // Both settings are form fields of PiSSA only, read from their text.
    int fields = 0;
    for (const AdapterField& f : adapter_fields())
      if (f.key == "adapter.pissa.randomized" || f.key == "adapter.pissa.niter") {
        AdapterConfig c = pissa_config(2);
        QVERIFY(f.applies(c));
        QCOMPARE(f.get(c), std::string(f.key == "adapter.pissa.niter" ? "4" : "false"));
        f.set(c, f.key == "adapter.pissa.niter" ? "7" : "true");
        QCOMPARE(c.option(f.key.substr(8)), f.key == "adapter.pissa.niter" ? 7.0 : 1.0);
        c.method = "lora";
        QVERIFY(!f.applies(c));
        ++fields;
      }
    QCOMPARE(fields, 2);
    AdapterConfig c = pissa_config(2);
    c.set_option("pissa.niter", -1);
    QVERIFY_THROWS_EXCEPTION(ConfigError, c.validate(micro_config()));
    c = pissa_config(17);  // above min(in, out) = 16
    QVERIFY_THROWS_EXCEPTION(ConfigError, c.validate(micro_config()));
    QVERIFY_THROWS_EXCEPTION(ConfigError, pissa_config(2).check_bf16_frozen());
    const VariantDescriptor& v = pissa_config(2).variant();
    QVERIFY(!v.caps.resumable && !v.caps.composable);
    QCOMPARE(v.compare_arms.size(), std::size_t(1));
    QCOMPARE(v.compare_arms[0].settings.front().second, std::string("pissa"));
  }
};

QTEST_APPLESS_MAIN(TestPissa)
#include "test_pissa.moc"

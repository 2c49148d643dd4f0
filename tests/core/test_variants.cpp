// DoRA, AdaLoRA and ReLoRA: finite-difference checks in double, PEFT's
// identities, the AdaLoRA budget and scores against hand calculations, and
// ReLoRA's growing update rank, smooth resets and moment pruning.
#include <QtTest>

#include <cmath>

#include "core/adapters/adalora.h"
#include "core/adapters/adalora_allocator.h"
#include "core/adapters/attach.h"
#include "core/adapters/dora.h"
#include "core/adapters/relora.h"
#include "core/common/errors.h"
#include "core/cpu/cpu_backend.h"
#include "core/optim/schedule.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::test;

namespace {

AdapterConfig all_targets(const std::string& method, int r = 3) {
  AdapterConfig ac;
  ac.method = method;
  ac.r = r;
  ac.alpha = 6;
  ac.targets.assign(kAllTargets.begin(), kAllTargets.end());
  return ac;
}


}  // namespace

class TestVariants : public QObject {
  Q_OBJECT
  CpuBackend be;

 private slots:
  // ---- DoRA ------------------------------------------------------------------
  void dora_gradcheck_data() {
    QTest::addColumn<bool>("norm_grad");
    QTest::addColumn<double>("dropout");
    QTest::newRow("detached") << false << 0.0;
    QTest::newRow("detached-dropout") << false << 0.3;
    QTest::newRow("norm-grad") << true << 0.0;
    QTest::newRow("norm-grad-dropout") << true << 0.3;
  }
  void dora_gradcheck() {
    QFETCH(bool, norm_grad);
    QFETCH(double, dropout);
    MemoryLedger ledger;
    AdapterConfig ac = all_targets("dora");
    ac.set_option("dora.norm_grad", norm_grad);
    ac.dropout = dropout;
    Model m(micro_config(), Model::Mode::Frozen, DType::F64);
    attach_adapters(m, ac);
    m.materialize(be, ledger, 2, 6);
    randomise(m, be, 11);
    // Magnitudes near the row norms keep g = m / n away from zero.
    for (int l = 0; l < 2; ++l)
      for (Target t : kAllTargets) {
        auto& d = dynamic_cast<DoraLinear&>(m.linear(l, t));
        std::vector<double> mv = uniform_values(d.out(), 0.1, 50 + l * 7 + int(t));
        for (double& v : mv) v += 0.5;
        upload_values(be, d.magnitude, mv);
      }
    if (!norm_grad) {
      // Detached, the backward treats n as a constant: compare against
      // differences taken with n frozen at its current value.
      const MicroBatch mb;
      m.set_batch(mb.inputs.data(), mb.targets.data(), mb.B, mb.T);
      m.forward(true, 7);
      for (int l = 0; l < 2; ++l)
        for (Target t : kAllTargets) dynamic_cast<DoraLinear&>(m.linear(l, t)).freeze_norm_for_checks(true);
    }
    const double err = model_gradcheck(m, be, MicroBatch{}, std::string("dora ") + QTest::currentDataTag());
    qInfo("whole model, DoRA %s: worst relative error %.3e", QTest::currentDataTag(), err);
    QVERIFY2(err < kModelTol, qPrintable(QString::number(err)));
  }

  void dora_init_equals_base_and_merge_equals_unmerged() {
    const MicroBatch mb;
    MemoryLedger ledger;
    const auto base_logits = base_micro_logits(be, ledger, mb, 5);

    AdapterConfig ac = all_targets("dora", 4);
    Model dora(micro_config(), Model::Mode::Frozen, DType::F32);
    attach_adapters(dora, ac);
    dora.materialize(be, ledger, 2, 6);
    dora.init_base_weights(5);
    dora.init_adapters(9);
    // m = ||W|| and B = 0 make g = 1 up to rounding of the norm.
    const double at_init = relative_diff(micro_logits(dora, be, mb), base_logits);
    qInfo("DoRA at init vs base logits: relative difference %.3e", at_init);
    QVERIFY(at_init < 1e-6);

    for (int l = 0; l < 2; ++l)
      for (Target t : kAllTargets) {
        auto& d = dynamic_cast<DoraLinear&>(dora.linear(l, t));
        upload_values(be, d.lora_B, normal_values(d.lora_B.numel(), 0.05, 40 + l * 7 + int(t)));
        std::vector<double> mv = download_values(be, d.magnitude);
        for (std::size_t i = 0; i < mv.size(); ++i) mv[i] *= 1.0 + 0.2 * std::sin(double(i));
        upload_values(be, d.magnitude, mv);
      }
    const auto adapted = micro_logits(dora, be, mb);
    QVERIFY(relative_diff(adapted, base_logits) > 1e-3);
    // Snapshot one weight to check unmerge restores it.
    const Tensor& w0 = dora.linear(0, Target::Q).weight;
    const auto w_before = download_values(be, w0);
    merge_adapters(dora, 1.0);
    // With the merged weight the plain linear must reproduce the adapted output:
    // set B = 0 and m = ||W_merged|| so the adapter path becomes the identity.
    std::vector<std::vector<double>> saved_b, saved_m;
    for (int l = 0; l < 2; ++l)
      for (Target t : kAllTargets) {
        auto& d = dynamic_cast<DoraLinear&>(dora.linear(l, t));
        saved_b.push_back(download_values(be, d.lora_B));
        saved_m.push_back(download_values(be, d.magnitude));
        be.fill(d.lora_B, 0.0);
        be.row_norms(d.magnitude, d.weight, d.out(), d.in());
      }
    const double merged = relative_diff(micro_logits(dora, be, mb), adapted);
    qInfo("DoRA merged vs unmerged logits: relative difference %.3e", merged);
    QVERIFY(merged < 1e-5);
    std::size_t k = 0;
    for (int l = 0; l < 2; ++l)
      for (Target t : kAllTargets) {
        auto& d = dynamic_cast<DoraLinear&>(dora.linear(l, t));
        upload_values(be, d.lora_B, saved_b[k]);
        upload_values(be, d.magnitude, saved_m[k++]);
      }
    merge_adapters(dora, -1.0);
    QVERIFY(relative_diff(download_values(be, w0), w_before) < 1e-5);
  }

  void dora_memory_is_in_the_right_category() {
    // The magnitude trains; letting the gradient through the norm keeps
    // W + sBA of every module as an activation, which detaching avoids.
    std::size_t activations[2] = {0, 0};
    std::int64_t weight_elems = 0;
    for (bool norm_grad : {false, true}) {
      MemoryLedger ledger;
      AdapterConfig ac = all_targets("dora");
      ac.set_option("dora.norm_grad", norm_grad);
      Model m(micro_config(), Model::Mode::Frozen, DType::F32);
      attach_adapters(m, ac);
      m.materialize(be, ledger, 2, 6);
      std::size_t magnitude_bytes = 0;
      for (const auto& e : ledger.entries())
        if (e.module.find("lora_magnitude_vector") != std::string::npos && e.category == MemCategory::TrainableWeights)
          magnitude_bytes += e.bytes;
      QVERIFY(magnitude_bytes > 0);
      activations[norm_grad] = ledger.current(MemCategory::Activations);
      weight_elems = 0;
      for (int l = 0; l < 2; ++l)
        for (Target t : kAllTargets) weight_elems += m.linear(l, t).weight.numel();
    }
    const std::size_t extra = activations[1] - activations[0];
    qInfo("DoRA activations: detached %zu bytes, through the norm %zu bytes", activations[0], activations[1]);
    QVERIFY(extra >= static_cast<std::size_t>(weight_elems) * 4);
  }

  // ---- AdaLoRA -----------------------------------------------------------------
  void adalora_gradcheck_with_orthogonal_regulariser() {
    MemoryLedger ledger;
    AdapterConfig ac = all_targets("adalora", 3);
    ac.set_option("adalora.target_r", 2);
    ac.set_option("adalora.orth_reg_weight", 0.7);
    Model m(micro_config(), Model::Mode::Frozen, DType::F64);
    attach_adapters(m, ac);
    m.materialize(be, ledger, 2, 6);
    randomise(m, be, 21);
    AdamW opt(m.trainable(), AdamWConfig{});
    opt.materialize(be, ledger);
    AdaLoraController ctl(ac, 100);
    ctl.attach(m, opt, ledger);
    const double reg = ctl.regularize();
    QVERIFY(reg > 0);
    const double err = model_gradcheck(m, be, MicroBatch{}, "adalora", [&] { return ctl.regularize(); });
    qInfo("whole model, AdaLoRA + orthogonal regulariser (%.4f): worst relative error %.3e", reg, err);
    QVERIFY2(err < kModelTol, qPrintable(QString::number(err)));
    // The scaling is lora_alpha / (ranknum + 1e-5), not alpha / r.
    QCOMPARE(dynamic_cast<AdaLoraLinear&>(m.linear(0, Target::Q)).scaling(), 6.0 / (3 + 1e-5));
  }

  void adalora_budget_follows_the_cubic_schedule() {
    // Hand case: init 12 x 4 modules = 48, target 8 x 4 = 32, T = 20,
    // tinit 2, tfinal 3, deltaT 2. budget(t) = int(16 (1 - (t - 2)/15)^3 + 32).
    AdaLoraOptions o;
    o.tinit = 2;
    o.tfinal = 3;
    o.delta_t = 2;
    const std::int64_t expected[20] = {48, 48, 48, 45, 42, 40, 38, 36, 35, 34, 33, 33, 32, 32, 32, 32, 32, 32, 32, 32};
    for (std::int64_t t = 0; t < 20; ++t) {
      const AdaLoraBudget b = adalora_budget(o, 48, 32, t, 20);
      QCOMPARE(b.budget, expected[t]);
      const bool mask = t <= 2 ? false : (t > 17 ? true : t % 2 == 0);
      QCOMPARE(b.mask, mask);
    }
  }

  void adalora_importance_matches_hand_calculation() {
    MemoryLedger ledger;
    AdapterConfig ac = all_targets("adalora", 2);
    ac.targets = {Target::Q};
    ac.set_option("adalora.target_r", 1);
    ac.set_option("adalora.beta1", 0.85);
    ac.set_option("adalora.beta2", 0.85);
    ModelConfig mc = micro_config();
    mc.layers = 1;
    Model m(mc, Model::Mode::Frozen, DType::F64);
    attach_adapters(m, ac);
    m.materialize(be, ledger, 1, 4);
    randomise(m, be, 31);
    AdamW opt(m.trainable(), AdamWConfig{});
    opt.materialize(be, ledger);
    AdaLoraController ctl(ac, 10);
    ctl.attach(m, opt, ledger);
    auto& mod = dynamic_cast<AdaLoraLinear&>(m.linear(0, Target::Q));
    // Two importance updates with known gradients.
    std::vector<double> ipt_a(mod.lora_A.numel(), 0), unc_a(ipt_a), ipt_b(mod.lora_B.numel(), 0), unc_b(ipt_b),
        ipt_e(2, 0), unc_e(ipt_e);
    auto hand = [&](const Tensor& p, const Tensor& g, std::vector<double>& ipt, std::vector<double>& unc) {
      const auto pv = download_values(be, p), gv = download_values(be, g);
      for (std::size_t i = 0; i < pv.size(); ++i) {
        const double I = std::abs(pv[i] * gv[i]);
        ipt[i] = 0.85 * ipt[i] + 0.15 * I;
        unc[i] = 0.85 * unc[i] + 0.15 * std::abs(I - ipt[i]);
      }
    };
    std::vector<VariantEvent> events;
    for (int step = 0; step < 2; ++step) {
      for (std::size_t i = 0; i < m.trainable().grads().entries().size(); ++i) {
        const Tensor g = m.trainable().grads().slot_tensor(i);
        upload_values(be, g, normal_values(g.numel(), 1.0, 70 + step * 10 + i));
      }
      hand(mod.lora_A, mod.lora_A_grad, ipt_a, unc_a);
      hand(mod.lora_B, mod.lora_B_grad, ipt_b, unc_b);
      hand(mod.lora_E, mod.lora_E_grad, ipt_e, unc_e);
      ctl.after_step(step, 1.0, events);  // tinit = 0: step 0 updates, no mask
    }
    const auto scores = ctl.triplet_scores();
    QCOMPARE(scores.size(), std::size_t(1));
    for (int i = 0; i < 2; ++i) {
      double a = 0, b = 0;
      for (int c = 0; c < mod.in(); ++c) a += ipt_a[i * mod.in() + c] * unc_a[i * mod.in() + c];
      for (int o = 0; o < mod.out(); ++o) b += ipt_b[o * 2 + i] * unc_b[o * 2 + i];
      const double expected = ipt_e[i] * unc_e[i] + a / mod.in() + b / mod.out();
      QVERIFY2(std::abs(scores[0][i] - expected) <= 1e-12 * std::abs(expected),
               qPrintable(QString("%1 vs %2").arg(scores[0][i]).arg(expected)));
    }
  }

  // ---- ReLoRA ------------------------------------------------------------------
  void relora_lora_path_gradcheck_after_a_reset() {
    MemoryLedger ledger;
    AdapterConfig ac = all_targets("relora", 3);
    ac.set_option("relora.reset_every", 1);
    ac.set_option("relora.restart_warmup", 0);
    Model m(micro_config(), Model::Mode::Frozen, DType::F64);
    attach_adapters(m, ac);
    m.materialize(be, ledger, 2, 6);
    randomise(m, be, 41);
    AdamW opt(m.trainable(), AdamWConfig{});
    opt.materialize(be, ledger);
    ReLoraController ctl(ac, ScheduleConfig{}, 1e-3, 10, 1);
    ctl.attach(m, opt, ledger);
    // The merge keeps the function: logits before == after the reset.
    const MicroBatch mb;
    m.set_batch(mb.inputs.data(), mb.targets.data(), mb.B, mb.T);
    m.forward(false, 0);
    const auto before = download_values(be, m.logits());
    std::vector<VariantEvent> events;
    ctl.before_step(1, events);
    QCOMPARE(events.size(), std::size_t(1));
    m.forward(false, 0);
    QVERIFY(relative_diff(download_values(be, m.logits()), before) < 1e-12);
    randomise(m, be, 42);  // B != 0 again for a meaningful check
    const double err = model_gradcheck(m, be, mb, "relora");
    QVERIFY2(err < kModelTol, qPrintable(QString::number(err)));
  }

  void relora_quantile_and_schedule() {
    QCOMPARE(quantile_linear({4, 1, 3, 2}, 0.5), 2.5);  // torch.quantile(linear)
    QCOMPARE(quantile_linear({10, 0, 5}, 0.9), 9.0);
    // Warm-up, reset to 0, re-warm to the cosine's value.
    QCOMPARE(jagged_cosine_lr(1.0, 0, 100, 10, 25, 5, 0.1), 0.0);
    QCOMPARE(jagged_cosine_lr(1.0, 5, 100, 10, 25, 5, 0.1), 0.5);
    QCOMPARE(jagged_cosine_lr(1.0, 25, 100, 10, 25, 5, 0.1), 0.0);
    const double at30 = 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 20.0 / 90.0));
    QVERIFY(std::abs(jagged_cosine_lr(1.0, 30, 100, 10, 25, 5, 0.1) - at30) < 1e-12);
    QVERIFY(std::abs(jagged_cosine_lr(1.0, 27, 100, 10, 25, 5, 0.1) - 0.4 * at30) < 1e-12);
  }

  void bad_variant_settings_are_named() {
    auto field_of = [](const AdapterConfig& ac, std::int64_t steps, std::int64_t warmup) {
      try {
        ac.validate(micro_config(), steps, warmup);
      } catch (const ConfigError& e) {
        return QString::fromStdString(e.field());
      }
      return QString();
    };
    AdapterConfig a = all_targets("adalora", 4);
    a.set_option("adalora.target_r", 6);
    QCOMPARE(field_of(a, 100, 0), QString("adapter.adalora.target_r"));
    a.set_option("adalora.target_r", 2);
    a.set_option("adalora.tinit", 60);
    a.set_option("adalora.tfinal", 40);
    QCOMPARE(field_of(a, 100, 0), QString("adapter.adalora.tinit"));
    AdapterConfig r = all_targets("relora", 4);
    r.set_option("relora.reset_every", 10);
    r.set_option("relora.restart_warmup", 10);
    QCOMPARE(field_of(r, 100, 0), QString("adapter.relora.reset_every"));
    r.set_option("relora.restart_warmup", 2);
    QCOMPARE(field_of(r, 100, 20), QString("schedule.warmup_steps"));
    QCOMPARE(field_of(r, 100, 5), QString());
  }
};

QTEST_APPLESS_MAIN(TestVariants)
#include "test_variants.moc"

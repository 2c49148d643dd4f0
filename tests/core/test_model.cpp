// The whole model: finite-difference checks in double through every layer,
// LoRA's PEFT identities (init == base, merged == unmerged), parameter counts
// and the memory ledger against what was really allocated.
#include <QtTest>

#include <cmath>

#include "core/adapters/attach.h"
#include "core/adapters/lora.h"
#include "core/common/errors.h"
#include "core/cpu/cpu_backend.h"
#include "core/model/model.h"
#include "core/model/weights_init.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::test;


class TestModel : public QObject {
  Q_OBJECT
  CpuBackend be;

 private slots:
  void gradcheck_full_finetuning() {
    MemoryLedger ledger;
    Model m(micro_config(), Model::Mode::Full, DType::F64);
    m.materialize(be, ledger, 2, 6);
    randomise(m, be, 1);
    const double err = model_gradcheck(m, be, MicroBatch{}, "model full");
    qInfo("whole model, full fine-tuning: worst relative error %.3e", err);
    QVERIFY2(err < kModelTol, qPrintable(QString::number(err)));
  }

  void gradcheck_tied_embeddings() {
    MemoryLedger ledger;
    ModelConfig c = micro_config();
    c.tie_embeddings = true;
    Model m(c, Model::Mode::Full, DType::F64);
    m.materialize(be, ledger, 2, 6);
    randomise(m, be, 2);
    const double err = model_gradcheck(m, be, MicroBatch{}, "model tied");
    QVERIFY2(err < kModelTol, qPrintable(QString::number(err)));
  }

  void gradcheck_lora_all_targets_data() {
    QTest::addColumn<double>("dropout");
    QTest::addColumn<bool>("rslora");
    QTest::newRow("lora") << 0.0 << false;
    QTest::newRow("lora-dropout") << 0.25 << false;
    QTest::newRow("rslora") << 0.0 << true;
  }
  void gradcheck_lora_all_targets() {
    QFETCH(double, dropout);
    QFETCH(bool, rslora);
    MemoryLedger ledger;
    AdapterConfig ac;
    ac.r = 3;
    ac.alpha = 6;
    ac.dropout = dropout;
    ac.use_rslora = rslora;
    ac.targets.assign(kAllTargets.begin(), kAllTargets.end());
    Model m(micro_config(), Model::Mode::Frozen, DType::F64);
    attach_adapters(m, ac);
    m.materialize(be, ledger, 2, 6);
    randomise(m, be, 3);
    QCOMPARE(m.trainable().params().entries().size(), std::size_t(2 * 7 * 2));
    const double err = model_gradcheck(m, be, MicroBatch{}, "model lora");
    qInfo("whole model, LoRA on all targets (%s): worst relative error %.3e",
          QTest::currentDataTag(), err);
    QVERIFY2(err < kModelTol, qPrintable(QString::number(err)));
  }

  void lora_at_init_equals_base_and_merge_equals_unmerged() {
    const MicroBatch mb;
    MemoryLedger ledger;
    const auto base_logits = base_micro_logits(be, ledger, mb, 5);

    AdapterConfig ac;
    ac.targets.assign(kAllTargets.begin(), kAllTargets.end());
    ac.r = 4;
    Model lora(micro_config(), Model::Mode::Frozen, DType::F32);
    attach_adapters(lora, ac);
    lora.materialize(be, ledger, 2, 6);
    lora.init_base_weights(5);
    lora.init_adapters(9);
    // B = 0 at init: the adapter adds exact zeros, so logits are bit-identical.
    QVERIFY(micro_logits(lora, be, mb) == base_logits);

    // Give B values, compare adapter path vs merged weights.
    for (int l = 0; l < 2; ++l)
      for (Target t : kAllTargets) {
        auto& mod = dynamic_cast<LoraLinear&>(lora.linear(l, t));
        upload_values(be, mod.lora_B, normal_values(mod.lora_B.numel(), 0.05, 40 + l * 7 + int(t)));
      }
    const auto adapted = micro_logits(lora, be, mb);
    QVERIFY(adapted != base_logits);
    merge_adapters(lora, 1.0);
    for (int l = 0; l < 2; ++l)
      for (Target t : kAllTargets) be.fill(dynamic_cast<LoraLinear&>(lora.linear(l, t)).lora_B, 0.0);
    const double merged = relative_diff(micro_logits(lora, be, mb), adapted);
    qInfo("merged vs unmerged logits: relative difference %.3e", merged);
    QVERIFY(merged < 1e-5);
  }

  void trainable_parameter_counts() {
    // LLaMA-2-7B: r = 8 on one 4096 x 11008 matrix adds 8 * (4096 + 11008).
    ModelConfig llama;
    llama.hidden = 4096;
    llama.intermediate = 11008;
    llama.layers = 32;
    llama.heads = 32;
    llama.kv_heads = 32;
    llama.vocab = 32000;
    QCOMPARE(llama.param_count(), std::int64_t(6738415616));
    AdapterConfig one;
    one.r = 8;
    one.targets = {Target::Up};
    QCOMPARE(one.trainable_params(llama) / llama.layers, std::int64_t(120832));

    // The engine's own count equals sum r (in + out) over targets and layers.
    MemoryLedger ledger;
    AdapterConfig ac;
    ac.r = 5;
    ac.targets = {Target::Q, Target::V, Target::Down};
    Model m(micro_config(), Model::Mode::Frozen, DType::F32);
    attach_adapters(m, ac);
    m.materialize(be, ledger, 1, 4);
    const std::int64_t expected = 2 * 5 * ((16 + 16) + (16 + 8) + (24 + 16));
    QCOMPARE(m.trainable_count(), expected);
    QCOMPARE(ac.trainable_params(micro_config()), expected);

    Model full(micro_config(), Model::Mode::Full, DType::F32);
    full.materialize(be, ledger, 1, 4);
    QCOMPARE(full.trainable_count(), micro_config().param_count());
  }

  void ledger_matches_allocations_and_lora_has_no_frozen_gradients() {
    CpuBackend fresh;
    MemoryLedger ledger;
    {
      AdapterConfig ac;
      ac.targets.assign(kAllTargets.begin(), kAllTargets.end());
      Model m(micro_config(), Model::Mode::Frozen, DType::F32);
      attach_adapters(m, ac);
      m.materialize(fresh, ledger, 2, 8);
      QCOMPARE(ledger.total(), fresh.allocated_bytes());
      // Gradients exist only for adapter tensors, and total exactly their size.
      for (const LedgerEntry& e : ledger.entries())
        if (e.category == MemCategory::Gradients)
          QVERIFY2(e.module.find(".lora_") != std::string::npos, e.module.c_str());
      QCOMPARE(ledger.current(MemCategory::Gradients), ledger.current(MemCategory::TrainableWeights));
      const std::size_t base_bytes = micro_config().param_count() * 4;
      QVERIFY(ledger.current(MemCategory::FrozenWeights) >= base_bytes);
      QVERIFY(ledger.current(MemCategory::Activations) > 0);
    }
    // Everything released with the model.
    QCOMPARE(ledger.total(), std::size_t(0));
    QCOMPARE(fresh.allocated_bytes(), std::size_t(0));
    QVERIFY(ledger.peak_total() > 0);
  }

  void bad_inputs_are_named() {
    AdapterConfig ac;
    ac.r = 17;  // > min(16, 8) for k_proj
    ac.targets = {Target::K};
    try {
      ac.validate(micro_config());
      QFAIL("rank above min(in, out) accepted");
    } catch (const ConfigError& e) {
      QCOMPARE(QString::fromStdString(e.field()), QString("adapter.r"));
      QVERIFY(QString(e.what()).contains("k_proj"));
    }
    ac.r = 0;
    QVERIFY_THROWS_EXCEPTION(ConfigError, ac.validate(micro_config()));
    QVERIFY_THROWS_EXCEPTION(ConfigError, parse_target("qq", "adapter.targets"));
    QVERIFY_THROWS_EXCEPTION(ConfigError, model_preset("huge"));
    MemoryLedger ledger;
    Model m(micro_config(), Model::Mode::Full, DType::F32);
    QVERIFY_THROWS_EXCEPTION(ConfigError, m.materialize(be, ledger, 1, 9));
  }
};

QTEST_APPLESS_MAIN(TestModel)
#include "test_model.moc"

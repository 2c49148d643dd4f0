// bf16 frozen weights (model.frozen_dtype = bf16): on the CPU an adapted model
// whose frozen projections are bf16 computes what the fp32 model computes
// after its frozen projections were rounded to bf16 (the CPU gemm widens the
// weight exactly); the ledger holds those weights at 2 bytes a parameter; the
// trainer runs with it; and what cannot work over a bf16 base is refused.
#include <QtTest>

#include <cmath>

#include "core/adapters/adapter_state.h"
#include "core/adapters/attach.h"
#include "core/adapters/relora.h"
#include "core/common/errors.h"
#include "core/cpu/cpu_backend.h"
#include "core/model/checkpoint.h"
#include "core/model/model.h"
#include "core/model/weights_init.h"
#include "core/optim/adamw.h"
#include "core/common/half.h"
#include "core/train/trainer.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::test;

namespace {

AdapterConfig adapter(const std::string& method, double dropout) {
  AdapterConfig ac;
  ac.method = method;
  ac.r = 4;
  ac.set_option("adalora.target_r", 2);
  ac.alpha = 8;
  ac.dropout = dropout;
  ac.targets.assign(kAllTargets.begin(), kAllTargets.end());
  return ac;
}

// Logits, loss and every adapter gradient of one training pass.
struct Pass {
  std::vector<double> logits, grads;
  double loss = 0;
};

Pass one_pass(Model& m, Backend& be, const MicroBatch& mb) {
  m.set_batch(mb.inputs.data(), mb.targets.data(), mb.B, mb.T);
  be.fill(m.trainable().grads().flat(), 0.0);
  m.forward(true, 7);
  Pass p;
  p.logits = download_values(be, m.logits());
  p.loss = m.loss(mb.scored, true);
  m.backward(7);
  p.grads = download_values(be, m.trainable().grads().flat());
  return p;
}

// Frozen bytes of the seven projections and of everything else frozen.
struct FrozenBytes {
  std::size_t projections = 0, other = 0;
};

FrozenBytes frozen_bytes(const MemoryLedger& ledger) {
  FrozenBytes f;
  for (const LedgerEntry& e : ledger.entries()) {
    if (e.category != MemCategory::FrozenWeights) continue;
    bool projection = false;
    for (Target t : kAllTargets) projection |= e.module == target_module_name(t);
    (projection ? f.projections : f.other) += e.bytes;
  }
  return f;
}

struct Recorder : TrainerSink {
  std::vector<double> losses;
  RunResult result;
  void on_step(const StepEvent& e) override { losses.push_back(e.loss); }
  void on_finish(const RunResult& r) override { result = r; }
};

ExperimentConfig tiny_run(const std::string& method, const std::string& frozen_dtype) {
  ExperimentConfig c = experiment_preset("tiny-lora");
  c.set("adapter.method", method);
  c.set("model.frozen_dtype", frozen_dtype);
  c.model.base = "random";
  c.data.n_train = 200;
  c.data.n_heldout = 16;
  c.train.steps = 20;
  c.train.batch = 8;
  c.train.eval_every = 0;
  c.train.eval_examples = 16;
  c.schedule.warmup_steps = 2;
  return c;
}

}  // namespace

class TestBf16Frozen : public QObject {
  Q_OBJECT
  CpuBackend be;

 private slots:
  // The bf16 model against the fp32 model with its projections rounded to
  // bf16 first: same logits, loss and adapter gradients to 1e-6 (on the CPU
  // both multiply the same fp32 values; only the route differs).
  void same_as_rounded_fp32_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<double>("dropout");
    QTest::newRow("lora") << QString("lora") << 0.0;
    QTest::newRow("lora-dropout") << QString("lora") << 0.2;
    QTest::newRow("dora") << QString("dora") << 0.0;
    QTest::newRow("dora-dropout") << QString("dora") << 0.2;
    QTest::newRow("adalora") << QString("adalora") << 0.0;
  }
  void same_as_rounded_fp32() {
    QFETCH(QString, method);
    QFETCH(double, dropout);
    const AdapterConfig ac = adapter(method.toStdString(), dropout);
    const MicroBatch mb;
    MemoryLedger ledger;
    Model ref(micro_config(), Model::Mode::Frozen, DType::F32);
    Model bf(micro_config(), Model::Mode::Frozen, DType::F32, DType::BF16);
    for (Model* m : {&ref, &bf}) {
      attach_adapters(*m, ac);
      m->materialize(be, ledger, mb.B, mb.T);
      randomise(*m, be, 11);
    }
    for (int l = 0; l < micro_config().layers; ++l)
      for (Target t : kAllTargets) {
        const Tensor w = ref.linear(l, t).weight;
        std::vector<double> v = download_values(be, w);
        for (double& x : v) x = round_to_bf16(static_cast<float>(x));
        upload_values(be, w, v);
        QCOMPARE(bf.linear(l, t).weight.dtype, DType::BF16);
      }
    const Pass a = one_pass(ref, be, mb), b = one_pass(bf, be, mb);
    const double d_logits = relative_diff(b.logits, a.logits), d_grads = relative_diff(b.grads, a.grads);
    const double d_loss = std::abs(b.loss - a.loss) / std::abs(a.loss);
    qInfo("bf16 frozen vs fp32 rounded: logits %.3e, loss %.3e, adapter gradients %.3e", d_logits, d_loss, d_grads);
    QVERIFY2(d_logits < 1e-6, qPrintable(QString::number(d_logits)));
    QVERIFY2(d_loss < 1e-6, qPrintable(QString::number(d_loss)));
    QVERIFY2(d_grads < 1e-6, qPrintable(QString::number(d_grads)));
    // And the rounding is real: the unrounded fp32 model differs.
    Model exact(micro_config(), Model::Mode::Frozen, DType::F32);
    attach_adapters(exact, ac);
    exact.materialize(be, ledger, mb.B, mb.T);
    randomise(exact, be, 11);
    QVERIFY(relative_diff(one_pass(exact, be, mb).logits, a.logits) > 1e-5);
  }

  // The tiny preset with LoRA on every projection: the projections take half
  // the bytes, the rest of the frozen base (embeddings, norms) is unchanged,
  // and the CPU's widening scratch is on the ledger as workspace.
  void ledger_halves_projections() {
    const ModelConfig mc = model_preset("tiny");
    const AdapterConfig ac = adapter("lora", 0.0);
    MemoryLedger l32, l16;
    Model m32(mc, Model::Mode::Frozen, DType::F32);
    Model m16(mc, Model::Mode::Frozen, DType::F32, DType::BF16);
    attach_adapters(m32, ac);
    attach_adapters(m16, ac);
    m32.materialize(be, l32, 4, 32);
    m16.materialize(be, l16, 4, 32);
    const FrozenBytes f32 = frozen_bytes(l32), f16 = frozen_bytes(l16);
    qInfo("tiny, frozen projections: fp32 %zu B, bf16 %zu B; other frozen %zu B / %zu B; all frozen %zu B -> %zu B",
          f32.projections, f16.projections, f32.other, f16.other, l32.current(MemCategory::FrozenWeights),
          l16.current(MemCategory::FrozenWeights));
    std::int64_t projection_params = 0;
    for (Target t : kAllTargets) {
      const LinearShape s = linear_shape(mc, t);
      projection_params += std::int64_t{s.in} * s.out;
    }
    projection_params *= mc.layers;
    QCOMPARE(f16.projections, static_cast<std::size_t>(2 * projection_params));  // every slot a multiple of 256 B
    QCOMPARE(f32.projections, 2 * f16.projections);
    QCOMPARE(f16.other, f32.other);
    std::size_t widen = 0;
    for (const LedgerEntry& e : l16.entries())
      if (e.module == "bf16_gemm_conversion") widen = e.bytes;
    const LinearShape up = linear_shape(mc, Target::Up);
    QCOMPARE(widen, static_cast<std::size_t>(up.in) * up.out * 4);  // the largest projection, in fp32
    QCOMPARE(l16.current(MemCategory::Workspace), l32.current(MemCategory::Workspace) + widen);
    QCOMPARE(m16.trainable_count(), m32.trainable_count());
  }

  // 20 steps of LoRA and DoRA on the tiny preset: the bf16 run trains, its
  // losses follow the fp32 run's (the rounding of the base moves them a
  // little), and it carries the fp32 base's fingerprint.
  void trains_twenty_steps_data() {
    QTest::addColumn<QString>("method");
    QTest::newRow("lora") << "lora";
    QTest::newRow("dora") << "dora";
  }
  void trains_twenty_steps() {
    QFETCH(QString, method);
    Recorder r32, r16;
    Trainer t32(tiny_run(method.toStdString(), "fp32")), t16(tiny_run(method.toStdString(), "bf16"));
    t32.run(r32);
    t16.run(r16);
    QCOMPARE(r16.result.status, RunStatus::Finished);
    QCOMPARE(r16.losses.size(), std::size_t{20});
    double worst = 0;
    for (std::size_t i = 0; i < r16.losses.size(); ++i)
      worst = std::max(worst, std::abs(r16.losses[i] / r32.losses[i] - 1));
    qInfo("%s, 20 steps: loss %.4f -> %.4f (bf16 frozen), %.4f -> %.4f (fp32); worst step difference %.2e",
          qPrintable(method), r16.losses.front(), r16.losses.back(), r32.losses.front(), r32.losses.back(), worst);
    QVERIFY(r16.losses.back() < r16.losses.front() - 0.3);
    QVERIFY2(worst < 1e-3, qPrintable(QString::number(worst)));
    QCOMPARE(t16.base_fingerprint(), t32.base_fingerprint());
    QCOMPARE(t16.model().linear(0, Target::Q).weight.dtype, DType::BF16);
    QVERIFY(t16.ledger().current(MemCategory::FrozenWeights) < t32.ledger().current(MemCategory::FrozenWeights));
  }

  // Merged export widens: merging the adapter of a bf16 model into an fp32
  // model gives the merge over the rounded fp32 base.
  void merged_export_widens() {
    const AdapterConfig ac = adapter("dora", 0.0);
    const MicroBatch mb;
    MemoryLedger ledger;
    Model bf(micro_config(), Model::Mode::Frozen, DType::F32, DType::BF16);
    attach_adapters(bf, ac);
    bf.materialize(be, ledger, mb.B, mb.T);
    randomise(bf, be, 3);
    const AdapterState state = extract_adapter(bf, ac, "lora-workbench/micro", "");
    const std::vector<double> adapted = micro_logits(bf, be, mb);
    Model merged(micro_config(), Model::Mode::Frozen, DType::F32);
    merged.materialize(be, ledger, mb.B, mb.T);
    merge_adapter_into_base(bf, state, merged);
    const double d = relative_diff(micro_logits(merged, be, mb), adapted);
    qInfo("DoRA over a bf16 base: merged (fp32) vs adapted logits %.3e", d);
    QVERIFY2(d < 1e-5, qPrintable(QString::number(d)));
    // Merging in place into the bf16 base is refused, naming the setting.
    try {
      merge_adapters(bf);
      QFAIL("merging into bf16 weights was accepted");
    } catch (const ConfigError& e) {
      QCOMPARE(e.field(), std::string("model.frozen_dtype"));
    }
  }

  void refusals() {
    // ReLoRA merges into the base every reset: refused by the config and by
    // the controller.
    ExperimentConfig c = tiny_run("relora", "bf16");
    c.adapter.set_option("relora.reset_every", 10);
    c.adapter.set_option("relora.restart_warmup", 2);
    bool named = false;
    for (const auto& [field, message] : c.problems()) named |= field == "model.frozen_dtype";
    QVERIFY(named);
    QVERIFY_THROWS_EXCEPTION(ConfigError, c.validate());
    MemoryLedger ledger;
    Model m(micro_config(), Model::Mode::Frozen, DType::F32, DType::BF16);
    attach_adapters(m, c.adapter);
    m.materialize(be, ledger, 1, 4);
    AdamW opt(m.trainable(), AdamWConfig{});
    opt.materialize(be, ledger);
    ReLoraController relora(c.adapter, c.schedule, 1e-3, 20, 1);
    QVERIFY_THROWS_EXCEPTION(ConfigError, relora.attach(m, opt, ledger));

    // Full fine-tuning has no frozen weights: the model refuses, the trainer
    // says so and keeps fp32.
    QVERIFY_THROWS_EXCEPTION(ConfigError, Model(micro_config(), Model::Mode::Full, DType::F32, DType::BF16));
    QVERIFY_THROWS_EXCEPTION(ConfigError, Model(micro_config(), Model::Mode::Frozen, DType::F64, DType::BF16));
    std::string notice;
    TrainerEnvironment env;
    env.notice = [&](const std::string& n) { notice += n; };
    Trainer full(tiny_run("full", "bf16"), env);
    full.prepare();
    QVERIFY(notice.find("model.frozen_dtype") != std::string::npos);
    QCOMPARE(full.model().linear(0, Target::Q).weight.dtype, DType::F32);

    QVERIFY_THROWS_EXCEPTION(ConfigError, c.set("model.frozen_dtype", "fp16"));
    QCOMPARE(ExperimentConfig::from_json(tiny_run("lora", "bf16").to_json(), "round trip").model.frozen_dtype,
             std::string("bf16"));
  }
};

QTEST_APPLESS_MAIN(TestBf16Frozen)
#include "test_bf16_frozen.moc"

// Each variant trained through the Trainer on the tiny base: loss goes down,
// AdaLoRA ends at its target budget with masked triplets at zero, ReLoRA's
// accumulated update outgrows r, resets are smooth and prune the moments.
#include <QtTest>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/adapters/adalora.h"
#include "core/adapters/adalora_allocator.h"
#include "core/adapters/relora.h"
#include "core/adapters/attach.h"
#include "core/model/checkpoint.h"
#include "core/model/weights_init.h"
#include "core/common/paths.h"
#include "core/source/base_cache.h"
#include "core/train/trainer.h"

using namespace lwb;

namespace {

struct Recorder : TrainerSink {
  std::vector<StepEvent> steps;
  RunResult result;
  std::function<void(const StepEvent&)> hook;
  void on_step(const StepEvent& e) override {
    steps.push_back(e);
    if (hook) hook(e);
  }
  void on_finish(const RunResult& r) override { result = r; }
};

ExperimentConfig variant_config(const std::string& m) {
  ExperimentConfig c = experiment_preset("tiny-lora");
  c.data.task = "reverse";
  c.train.steps = 200;
  c.train.eval_every = 0;
  c.adapter.method = m;
  return c;
}

}  // namespace

class TestVariantTraining : public QObject {
  Q_OBJECT
  TrainerEnvironment env;

 private slots:
  void initTestCase() {
    env.data_dir = user_data_dir();
    env.notice = [](const std::string& m) { qInfo("%s", m.c_str()); };
    ensure_base_model("tiny", env);
  }

  void every_variant_beats_the_base_data() {
    QTest::addColumn<QString>("method");
    for (const char* m : {"rslora", "dora", "adalora", "relora"}) QTest::newRow(m) << m;
  }
  void every_variant_beats_the_base() {
    QFETCH(QString, method);
    ExperimentConfig c = variant_config("lora");
    c.set("adapter.method", method.toStdString());
    if (method == "adalora") {
      c.adapter.r = 12;
      c.adapter.alpha = 24;
      c.adapter.set_option("adalora.target_r", 8);
      c.adapter.set_option("adalora.tinit", 20);
      c.adapter.set_option("adalora.tfinal", 40);
    }
    if (method == "relora") {
      c.adapter.set_option("relora.reset_every", 50);
      c.adapter.set_option("relora.restart_warmup", 5);
    }
    Trainer t(c, env);
    t.prepare();
    const double before = t.evaluate(c.train.eval_examples).loss;
    Recorder rec;
    const RunResult r = t.run(rec);
    QCOMPARE(r.status, RunStatus::Finished);
    qInfo("%s on reverse: held-out loss %.4f -> %.4f, exact match %.1f%%", qPrintable(method), before,
          r.final_eval.loss, 100 * r.final_eval.accuracy);
    QVERIFY(r.final_eval.loss < 0.6 * before);
  }

  void adalora_ends_at_target_budget_with_masked_triplets_zero() {
    ExperimentConfig c = variant_config("adalora");
    c.train.steps = 120;
    c.adapter.r = 6;
    c.adapter.alpha = 12;
    c.adapter.targets = {Target::Q, Target::V, Target::Up};
    c.adapter.set_option("adalora.target_r", 3);
    c.adapter.set_option("adalora.tinit", 10);
    c.adapter.set_option("adalora.tfinal", 30);
    c.adapter.set_option("adalora.delta_t", 5);
    Trainer t(c, env);
    Recorder rec;
    std::int64_t rank_events = 0;
    rec.hook = [&](const StepEvent& e) {
      for (const auto& v : e.variant_events)
        if (v.kind == "adalora.ranks") ++rank_events;
    };
    t.run(rec);
    auto* ctl = dynamic_cast<AdaLoraController*>(t.variant());
    QVERIFY(ctl);
    std::int64_t kept = 0;
    for (const auto& [name, rank] : ctl->kept_ranks()) kept += rank;
    const std::int64_t modules = 3 * t.model().config().layers;
    qInfo("AdaLoRA: %lld rank events, kept %lld of %lld (target %lld)", static_cast<long long>(rank_events),
          static_cast<long long>(kept), static_cast<long long>(6 * modules), static_cast<long long>(3 * modules));
    QCOMPARE(kept, 3 * modules);
    QVERIFY(rank_events > 5);
    // Every masked triplet's E is exactly zero at the end of training.
    for (int l = 0; l < t.model().config().layers; ++l)
      for (Target tg : c.adapter.targets) {
        auto& m = dynamic_cast<AdaLoraLinear&>(t.model().linear(l, tg));
        const auto e = download_values(t.backend(), m.lora_E);
        const auto& keep = ctl->rank_pattern().at(m.hf_name());
        for (std::size_t j = 0; j < e.size(); ++j)
          if (!keep[j]) QCOMPARE(e[j], 0.0);
      }
    // The final ranks are part of the run's result.
    QVERIFY(!rec.result.summary.empty() && rec.result.summary[0].kind == "adalora.final_ranks");
  }

  void relora_update_outgrows_r_and_resets_are_smooth() {
    ExperimentConfig c = variant_config("relora");
    c.adapter.r = 4;
    c.train.steps = 160;
    c.schedule.warmup_steps = 10;
    c.adapter.set_option("relora.reset_every", 40);
    c.adapter.set_option("relora.restart_warmup", 5);
    Trainer t(c, env);
    std::map<std::int64_t, double> eval_at;
    Recorder rec;
    rec.hook = [&](const StepEvent& e) {
      // Held-out loss just before the first reset (step index 40), right
      // after it (that step runs at learning rate 0) and after the re-warm-up;
      // and the same around the second reset.
      for (std::int64_t at : {40, 41, 50, 80, 81, 90})
        if (e.step == at) eval_at[e.step] = t.evaluate(64).loss;
    };
    const RunResult r = t.run(rec);
    QCOMPARE(r.status, RunStatus::Finished);
    auto* ctl = dynamic_cast<ReLoraController*>(t.variant());
    QCOMPARE(ctl->resets(), 3);
    for (std::int64_t at : {40, 80}) {
      qInfo("ReLoRA held-out loss around the reset at %lld: %.5f before, %.5f right after, %.5f after re-warm-up",
            static_cast<long long>(at), eval_at[at], eval_at[at + 1], eval_at[at + 10]);
      // The merge keeps the function; after the re-warm-up the loss is at
      // most 10% above where it was before the reset.
      QVERIFY(std::abs(eval_at[at + 1] - eval_at[at]) <= 1e-3 * eval_at[at]);
      QVERIFY(eval_at[at + 10] <= 1.10 * eval_at[at]);
    }
    qInfo("ReLoRA moments kept after pruning at p = 0.9: %.4f", ctl->last_kept_fraction());
    QVERIFY(std::abs(ctl->last_kept_fraction() - 0.1) < 0.02);
    const auto ranks = ctl->update_ranks(true);
    int above = 0;
    for (const auto& [name, rank] : ranks) {
      qInfo("  %s: numerical rank %d (r = 4, 3 resets + the live adapter)", name.c_str(), rank);
      above += rank > 4;
      QVERIFY(rank <= 16);
    }
    QVERIFY2(above >= static_cast<int>(ranks.size()) / 2, "most tracked modules should exceed rank r");

    // Exported, the whole update (three merged resets + the live adapter) is
    // one LoRA of rank 16 on the ORIGINAL base that reproduces the model.
    const AdapterState exported = t.adapter_state();
    QCOMPARE(exported.config.r, 16);
    AdapterConfig plain = exported.config;
    plain.method = "lora";
    Model original(t.model().config(), Model::Mode::Frozen);
    attach_adapters(original, plain);
    original.materialize(t.backend(), t.ledger(), 2, 16);
    load_base_checkpoint(original, cached_base_path(env.data_dir, "tiny"));
    load_adapter(original, exported, "relora export");
    std::vector<std::int32_t> ids(32), targets(32, -1);
    for (int i = 0; i < 32; ++i) ids[static_cast<std::size_t>(i)] = 97 + (i * 7) % 26;
    original.set_batch(ids.data(), targets.data(), 2, 16);
    original.forward(false, 0);
    const auto a = download_values(t.backend(), original.logits());
    t.model().set_batch(ids.data(), targets.data(), 2, 16);
    t.model().forward(false, 0);
    const auto b = download_values(t.backend(), t.model().logits());
    double d2 = 0, r2 = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      d2 += (a[i] - b[i]) * (a[i] - b[i]);
      r2 += b[i] * b[i];
    }
    qInfo("ReLoRA exported as one rank-16 LoRA on the original base: logits relative difference %.3e",
          std::sqrt(d2 / r2));
    QVERIFY(std::sqrt(d2 / r2) < 1e-4);
  }
};

QTEST_GUILESS_MAIN(TestVariantTraining)
#include "test_variant_training.moc"

// Training end to end on the tiny preset: loss goes down for full fine-tuning
// and LoRA, LoRA learns a task to high exact match, runs are reproducible,
// stop works, and the built-in base is pretrained on demand and cached.
#include <QTemporaryDir>
#include <QtTest>

#include <atomic>
#include <cmath>

#include "core/common/errors.h"
#include "core/common/paths.h"
#include "core/train/trainer.h"

using namespace lwb;

namespace {

struct Recorder : TrainerSink {
  RunInfo info;
  std::vector<StepEvent> steps;
  RunResult result;
  void on_start(const RunInfo& i) override { info = i; }
  void on_step(const StepEvent& e) override { steps.push_back(e); }
  void on_finish(const RunResult& r) override { result = r; }
  std::vector<double> losses() const {
    std::vector<double> l;
    for (const auto& s : steps) l.push_back(s.loss);
    return l;
  }
};

struct StopAfter : Recorder {
  std::atomic<bool>* flag;
  std::int64_t at;
  void on_step(const StepEvent& e) override {
    Recorder::on_step(e);
    if (e.step == at) *flag = true;
  }
};

}  // namespace

class TestTrain : public QObject {
  Q_OBJECT
  TrainerEnvironment env;

  // The base's held-out loss on a task, before any fine-tuning.
  double base_loss(ExperimentConfig c) {
    Trainer t(c, env);
    t.prepare();
    return t.evaluate(c.train.eval_examples).loss;
  }

 private slots:
  void initTestCase() {
    env.data_dir = user_data_dir();
    env.notice = [](const std::string& m) { qInfo("%s", m.c_str()); };
    const auto t0 = std::chrono::steady_clock::now();
    const auto path = ensure_base_model("tiny", env);
    qInfo("tiny base at %s (%.1f s to make or find)", path.c_str(),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    QVERIFY(std::filesystem::exists(path));
  }

  void config_values_print_as_typed_and_round_trip() {
    ExperimentConfig c = experiment_preset("demo");
    QCOMPARE(QString::fromStdString(c.get("optimizer.lr")), QString("0.003"));
    c.set("optimizer.beta1", "0.9");
    QCOMPARE(QString::fromStdString(c.get("optimizer.beta1")), QString("0.9"));
    c.set("optimizer.lr", std::to_string(0.1 + 0.2));  // not a short decimal: every digit is kept
    c.set("optimizer.lr", c.get("optimizer.lr"));
    QCOMPARE(c.optimizer.lr, std::stod(std::to_string(0.1 + 0.2)));
    c.optimizer.lr = 0.1 + 0.2;
    c.set("optimizer.lr", c.get("optimizer.lr"));
    QCOMPARE(c.optimizer.lr, 0.1 + 0.2);
    // Every field reads back what it prints.
    ExperimentConfig copy = c;
    for (const std::string& key : ExperimentConfig::keys()) copy.set(key, c.get(key));
    QCOMPARE(QString::fromStdString(copy.to_json()), QString::fromStdString(c.to_json()));
  }

  void full_and_lora_cut_heldout_loss_data() {
    QTest::addColumn<QString>("method");
    QTest::newRow("full") << "full";
    QTest::newRow("lora") << "lora";
  }
  void full_and_lora_cut_heldout_loss() {
    QFETCH(QString, method);
    ExperimentConfig c = experiment_preset(method == "full" ? "tiny-full" : "tiny-lora");
    c.data.task = "reverse";
    c.train.steps = 200;
    c.train.eval_every = 0;
    const double before = base_loss(c);
    Trainer t(c, env);
    Recorder rec;
    const RunResult r = t.run(rec);
    QCOMPARE(r.status, RunStatus::Finished);
    qInfo("%s on reverse: held-out loss %.4f -> %.4f, exact match %.1f%%, %.0f tokens/s",
          qPrintable(method), before, r.final_eval.loss, 100 * r.final_eval.accuracy, r.tokens_per_s);
    QVERIFY2(r.final_eval.loss < 0.5 * before, "held-out loss did not halve");
  }

  void lora_reaches_high_exact_match() {
    ExperimentConfig c = experiment_preset("demo");  // uppercase, LoRA r=8 on all targets
    Trainer t(c, env);
    Recorder rec;
    const RunResult r = t.run(rec);
    QCOMPARE(r.status, RunStatus::Finished);
    qInfo("demo (LoRA, uppercase, %lld steps): exact match %.1f%% on %lld held-out examples, loss %.4f",
          static_cast<long long>(r.steps_done), 100 * r.final_eval.accuracy,
          static_cast<long long>(r.final_eval.examples), r.final_eval.loss);
    QVERIFY(r.final_eval.accuracy >= 0.9);
    // Trainable share as PEFT would count it.
    QCOMPARE(rec.info.trainable_params, c.adapter.trainable_params(model_preset("tiny")));
  }

  void same_seed_same_losses_different_seed_differs() {
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.train.steps = 15;
    c.schedule.warmup_steps = 5;
    c.train.eval_every = 0;
    c.adapter.dropout = 0.1;  // the dropout masks must repeat too
    auto losses = [&](std::uint64_t seed) {
      ExperimentConfig cs = c;
      cs.train.seed = seed;
      Trainer t(cs, env);
      Recorder rec;
      t.run(rec);
      return rec.losses();
    };
    const auto a = losses(7), b = losses(7), d = losses(8);
    QCOMPARE(a.size(), std::size_t(15));
    QVERIFY(a == b);
    QVERIFY(a != d);
  }

  void stop_is_a_valid_result() {
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.train.steps = 100;
    std::atomic<bool> stop{false};
    StopAfter rec;
    rec.flag = &stop;
    rec.at = 5;
    Trainer t(c, env);
    const RunResult r = t.run(rec, RunControl{&stop, nullptr});
    QCOMPARE(r.status, RunStatus::Stopped);
    QCOMPARE(r.steps_done, std::int64_t(5));
    QVERIFY(std::isfinite(r.final_eval.loss));
  }

  void a_resumed_run_repeats_the_uninterrupted_one_data() {
    QTest::addColumn<QString>("method");
    QTest::newRow("lora") << "lora";
    QTest::newRow("dora") << "dora";
    QTest::newRow("full") << "full";
  }
  void a_resumed_run_repeats_the_uninterrupted_one() {
    QFETCH(QString, method);
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.set("adapter.method", method.toStdString());
    c.train.steps = 20;
    c.schedule.warmup_steps = 4;
    c.train.eval_every = 0;
    c.adapter.dropout = method == "full" ? 0.0 : 0.1;
    Recorder straight;
    Trainer(c, env).run(straight);

    std::atomic<bool> stop{false};
    StopAfter first;
    first.flag = &stop;
    first.at = 8;
    QTemporaryDir dir;
    const std::filesystem::path state = dir.filePath("state.safetensors").toStdString();
    {
      Trainer t(c, env);
      QCOMPARE(t.run(first, RunControl{&stop, nullptr}).status, RunStatus::Stopped);
      t.save_state(state);
    }
    Trainer resumed(c, env);
    resumed.resume(state);
    Recorder second;
    QCOMPARE(resumed.run(second).status, RunStatus::Finished);
    QCOMPARE(second.steps.size(), std::size_t(12));
    QCOMPARE(second.steps.front().step, std::int64_t(9));
    for (std::size_t i = 0; i < second.steps.size(); ++i)
      QCOMPARE(second.steps[i].loss, straight.steps[8 + i].loss);  // bit for bit
  }

  void resume_is_refused_where_state_is_incomplete() {
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.adapter.method = Method::AdaLora;
    c.adapter.adalora.target_r = 4;
    Trainer t(c, env);
    QVERIFY_THROWS_EXCEPTION(ConfigError, t.save_state("/tmp/never.safetensors"));
  }

  void events_carry_memory_and_progress() {
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.train.steps = 4;
    c.schedule.warmup_steps = 0;
    c.train.eval_every = 2;
    Trainer t(c, env);
    Recorder rec;
    t.run(rec);
    QCOMPARE(rec.steps.size(), std::size_t(4));
    QVERIFY(rec.steps[0].memory.has_value());  // first event carries the ledger
    QVERIFY(!rec.steps[1].memory.has_value());  // unchanged since
    QVERIFY(rec.steps[1].eval.has_value() && rec.steps[3].eval.has_value());
    QVERIFY(!rec.steps[2].eval.has_value());
    QVERIFY(rec.steps[3].tokens_per_s > 0);
    QCOMPARE(rec.info.memory.total, t.backend().allocated_bytes());
  }

  void bad_data_is_reported() {
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.data.kind = "jsonl";
    c.data.path = "/nonexistent/file.jsonl";
    Trainer t(c, env);
    QVERIFY_THROWS_EXCEPTION(lwb::Error, t.prepare());
    c.data.kind = "task";
    c.data.task = "juggle";
    Trainer t2(c, env);
    try {
      t2.prepare();
      QFAIL("unknown task accepted");
    } catch (const ConfigError& e) {
      QCOMPARE(QString::fromStdString(e.field()), QString("data.task"));
    }
  }
};

QTEST_GUILESS_MAIN(TestTrain)
#include "test_train.moc"

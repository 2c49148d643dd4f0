// Training end to end on the tiny preset: loss goes down for full fine-tuning
// and LoRA, LoRA learns a task to high exact match, runs are reproducible,
// stop works, and the built-in base is pretrained on demand and cached.
#include <QTemporaryDir>
#include <QtTest>

#include <omp.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <stdexcept>

#include "core/common/errors.h"
#include "core/common/paths.h"
#include "core/cpu/cpu_share.h"
#include "core/model/checkpoint.h"
#include "core/train/run_environment.h"
#include "core/train/divergence.h"
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

  // Integers are read into their real type: what does not fit is refused
  // with the field and the range, never wrapped (2^32 + 8 read as 8).
  void config_integers_are_range_checked() {
    ExperimentConfig c = experiment_preset("demo");
    auto refused = [&](const std::string& key, const std::string& value) {
      try {
        c.set(key, value);
      } catch (const ConfigError& e) {
        return std::string(e.what());
      }
      return std::string();
    };
    QCOMPARE(refused("adapter.r", "4294967304"),
             std::string("adapter.r: expected an integer from 0 to 2147483647, got \"4294967304\""));
    QCOMPARE(c.adapter.r, 8);
    QCOMPARE(refused("train.steps", "-3"),
             std::string("train.steps: expected an integer from 0 to 9223372036854775807, got \"-3\""));
    QVERIFY(refused("train.batch", "16 ").find("expected an integer") != std::string::npos);
    QVERIFY(refused("train.batch", "0x10").find("expected an integer") != std::string::npos);
    c.set("train.seed", "18446744073709551615");  // a seed may use all 64 bits
    QCOMPARE(c.train.seed, std::uint64_t(18446744073709551615ull));
    QCOMPARE(ExperimentConfig::from_json(c.to_json(), "round trip").train.seed, c.train.seed);
    try {
      ExperimentConfig::from_json(R"({"adapter": {"r": 4294967304}})", "cfg.json");
      QFAIL("r = 2^32 + 8 accepted from JSON");
    } catch (const ConfigError& e) {
      QCOMPARE(std::string(e.what()), std::string("adapter.r: expected an integer from 0 to 2147483647, got \"4294967304\""));
    }
    QVERIFY_THROWS_EXCEPTION(FormatError, ExperimentConfig::from_json(R"({"version": 4294967297})", "cfg.json"));
    // A number beyond double's range is nlohmann's out_of_range, not parse_error: still the file's FormatError.
    QVERIFY_THROWS_EXCEPTION(FormatError, ExperimentConfig::from_json(R"({"optimizer": {"lr": 1e400}})", "cfg.json"));
    QVERIFY_THROWS_EXCEPTION(FormatError, environment_from_json(R"({"threads": 1e400})", "run"));
    QVERIFY_THROWS_EXCEPTION(FormatError, model_config_from_json(R"({"dim": 1e400})", "model.safetensors"));
    // fuzz_experiment_config: 100,000 levels of objects (or of arrays in a
    // value) parsed, then overflowed the stack in flatten() and the copies of
    // the value; now refused before parsing.
    const std::size_t deep = 100000;
    std::string objects, arrays = R"({"name": )" + std::string(deep, '[') + std::string(deep, ']') + "}";
    for (std::size_t i = 0; i < deep; ++i) objects += R"({"a": )";
    objects += "1" + std::string(deep, '}');
    for (const std::string& text : {objects, arrays}) {
      try {
        ExperimentConfig::from_json(text, "cfg.json");
        QFAIL("100,000 nested levels accepted");
      } catch (const FormatError& e) {
        QCOMPARE(std::string(e.what()), std::string("cfg.json: JSON nested deeper than 64 levels"));
      }
      // The model config a checkpoint carries comes from outside files too.
      try {
        model_config_from_json(text, "model.safetensors");
        QFAIL("100,000 nested levels accepted in a model config");
      } catch (const FormatError& e) {
        QCOMPARE(std::string(e.what()), std::string("model.safetensors: JSON nested deeper than 64 levels"));
      }
    }
    // A name with control characters would reach terminals and folder names.
    c.name = "demo\x1b[2J";
    QCOMPARE(c.problems().at(0).first, std::string("name"));
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

  // The demo's outcome depends on the pretrained base, which differs by CPU
  // (its OpenBLAS kernels round differently): 99.5% exact match where the
  // base was pretrained on a Zen 4, 49.5% / 50.5% / 27.5% for training
  // seeds 1-3 on the Xeon that CI runs on today. What holds on every base
  // is that LoRA learns a task the base cannot do at all.
  void lora_learns_the_demo_task() {
    ExperimentConfig c = experiment_preset("demo");  // uppercase, LoRA r=8 on all targets
    Trainer base(c, env);
    base.prepare();
    const EvalResult before = base.evaluate(c.train.eval_examples);
    Trainer t(c, env);
    Recorder rec;
    const RunResult r = t.run(rec);
    QCOMPARE(r.status, RunStatus::Finished);
    qInfo("demo (LoRA, uppercase, %lld steps): exact match %.1f%% -> %.1f%% on %lld held-out examples, loss %.4f -> %.4f",
          static_cast<long long>(r.steps_done), 100 * before.accuracy, 100 * r.final_eval.accuracy,
          static_cast<long long>(r.final_eval.examples), before.loss, r.final_eval.loss);
    QVERIFY2(before.accuracy < 0.05, "the base already does the task, so the demo shows nothing");
    QVERIFY2(r.final_eval.loss < 0.25 * before.loss, "held-out loss did not fall to a quarter of the base's");
    QVERIFY2(r.final_eval.accuracy >= 0.2, "exact match stayed below 20%");
    // Trainable share as PEFT would count it.
    QCOMPARE(rec.info.trainable_params, c.adapter.trainable_params(model_preset("tiny")));
  }

  void same_seed_same_losses_different_seed_differs() {
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.train.steps = 15;
    c.schedule.warmup_steps = 5;
    c.train.eval_every = 0;
    c.adapter.dropout = 0.1;  // the dropout masks must repeat too
    c.train.threads = omp_get_max_threads();  // the losses depend on it; other tests may train beside this one
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
    c.train.threads = omp_get_max_threads();
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

  // A run killed or crashed (no Stop, so no state saved at its end) resumes
  // from its last periodic save and then repeats the uninterrupted run.
  void a_crashed_run_resumes_from_its_last_periodic_save() {
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.train.steps = 30;
    c.schedule.warmup_steps = 4;
    c.train.eval_every = 0;
    c.train.state_every_steps = 10;
    c.train.threads = omp_get_max_threads();
    Recorder straight;
    Trainer(c, env).run(straight);

    struct CrashAt : Recorder {
      void on_step(const StepEvent& e) override {
        Recorder::on_step(e);
        if (e.step == 23) throw std::runtime_error("power cut");
      }
    } crashing;
    QTemporaryDir dir;
    const std::filesystem::path state = dir.filePath("run.state.safetensors").toStdString();
    {
      Trainer t(c, env);
      t.set_state_file(state);
      QCOMPARE(t.run(crashing).status, RunStatus::Failed);
    }
    QVERIFY(std::filesystem::exists(state));
    Trainer resumed(c, env);
    resumed.resume(state);
    QCOMPARE(resumed.steps_done(), std::int64_t(20));
    Recorder rest;
    QCOMPARE(resumed.run(rest).status, RunStatus::Finished);
    QCOMPARE(rest.steps.front().step, std::int64_t(21));
    for (std::size_t i = 0; i < rest.steps.size(); ++i) QCOMPARE(rest.steps[i].loss, straight.steps[20 + i].loss);
  }

  // lr = 1000 collapses the model (the loss sits at ln(vocab), the gradient
  // norm at 0): the run ends "diverged" with the step and the reason, not
  // "finished".
  void a_collapsing_run_ends_as_diverged() {
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.optimizer.lr = 1000;
    c.train.steps = 100;
    c.train.eval_every = 0;
    c.train.eval_examples = 16;
    Trainer t(c, env);
    Recorder rec;
    const RunResult r = t.run(rec);
    qInfo("lr = 1000: %s after %lld steps: %s", run_status_name(r.status), static_cast<long long>(r.steps_done),
          r.error.c_str());
    QCOMPARE(r.status, RunStatus::Diverged);
    QVERIFY(r.steps_done < 100);
    QVERIFY2(r.error.starts_with("diverged at step " + std::to_string(r.steps_done) + ": "), r.error.c_str());
    QCOMPARE(rec.result.status, RunStatus::Diverged);  // the sinks are told the same
  }

  void divergence_guard_reasons() {
    QCOMPARE(DivergenceGuard::non_finite("the loss", NAN), std::string("the loss is nan"));
    QCOMPARE(DivergenceGuard::non_finite("the gradient norm", INFINITY), std::string("the gradient norm is inf"));
    QVERIFY(DivergenceGuard::non_finite("the loss", 2.5).empty());
    DivergenceGuard climbing(4, 0);
    std::string why;
    int step = 0;
    for (; step < 100 && why.empty(); ++step) why = climbing.after_step(step < 10 ? 1.0 : 1.0 + step, 1.0);
    QCOMPARE(step, 13);  // after step 12: the mean of steps 3..12 (4.3) is the first above 4 x 1
    QVERIFY2(why.find("above 4 times that of the first 10 (1)") != std::string::npos, why.c_str());
    DivergenceGuard flat(4, 5);
    for (int i = 0; i < 4; ++i) QVERIFY(flat.after_step(2.0, 0.0).empty());
    QVERIFY(flat.after_step(2.0, 0.5).empty());  // the count starts again
    for (int i = 0; i < 4; ++i) QVERIFY(flat.after_step(2.0, 0.0).empty());
    QVERIFY(flat.after_step(2.0, 0.0).find("0 for 5 steps in a row") != std::string::npos);
    DivergenceGuard off(0, 0);
    for (int i = 0; i < 100; ++i) QVERIFY(off.after_step(1.0 + 100 * i, 0.0).empty());
  }

  // Runs on one CPU share its cores: a run that starts beside another takes
  // half the threads, and the registration of a process that died does not
  // count.
  void runs_on_one_cpu_share_its_cores() {
    QTemporaryDir dir;
    const std::filesystem::path runs = dir.path().toStdString();
    const int budget = omp_get_max_threads();
    {
      CpuShare first(runs);
      QCOMPARE(first.runs(), 1);
      QCOMPARE(first.fair_share(), budget);
      {
        CpuShare second(runs);
        QCOMPARE(first.runs(), 2);
        QCOMPARE(second.use(second.fair_share()), std::max(1, budget / 2));
        QCOMPARE(omp_get_max_threads(), std::max(1, budget / 2));
        QCOMPARE(second.use(budget + 5), budget);  // never above the budget
      }
      std::ofstream(runs / "run-999999-0") << "";  // left by a killed run: nobody holds its lock
      QCOMPARE(first.runs(), 1);
      QVERIFY(!std::filesystem::exists(runs / "run-999999-0"));
    }
    QCOMPARE(omp_get_max_threads(), budget);  // given back

    // A run that starts while another trains on this machine takes its share,
    // unless train.threads names a count.
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.train.steps = 1;
    c.schedule.warmup_steps = 0;
    c.train.eval_examples = 4;
    CpuShare other;  // the default place, as another run's
    Recorder shared;
    Trainer(c, env).run(shared);
    QVERIFY2(shared.info.backend.starts_with("cpu (" + std::to_string(std::max(1, budget / 2)) + " threads"),
             shared.info.backend.c_str());
    c.train.threads = budget;
    Recorder fixed;
    Trainer(c, env).run(fixed);
    QVERIFY2(fixed.info.backend.starts_with("cpu (" + std::to_string(budget) + " threads"), fixed.info.backend.c_str());
  }

  void resume_is_refused_where_state_is_incomplete() {
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.adapter.method = "adalora";
    c.adapter.set_option("adalora.target_r", 4);
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

// Samples during training (train.samples): the sample prompts answered at
// the configured steps by the weights as they are then, the training itself
// unchanged bit for bit, the answers repeatable, stored with the run and
// deleted with it, and the settings validated.
#include <QTemporaryDir>
#include <QtTest>

#include <omp.h>

#include "core/adapters/adapter_state.h"
#include "core/common/errors.h"
#include "core/infer/adapter_set.h"
#include "core/infer/decoder.h"
#include "core/infer/generator.h"
#include "core/store/store.h"
#include "core/train/trainer.h"
#include "expect_throw.h"

using namespace lwb;

namespace {

struct Recorder : TrainerSink {
  RunInfo info;
  std::vector<StepEvent> steps;
  void on_start(const RunInfo& i) override { info = i; }
  void on_step(const StepEvent& e) override { steps.push_back(e); }
};

ExperimentConfig small_run(const std::string& method) {
  ExperimentConfig c = experiment_preset("tiny-lora");
  c.set("adapter.method", method);
  c.train.steps = 12;
  c.schedule.warmup_steps = 2;
  c.train.eval_every = 0;
  c.adapter.dropout = method == "full" ? 0.0 : 0.1;  // the dropout streams must not move either
  c.train.threads = omp_get_max_threads();  // the losses depend on it
  return c;
}

ExperimentConfig with_samples(ExperimentConfig c) {
  c.train.samples = 3;
  c.train.sample_every = 5;
  c.train.sample_max_new = 12;
  return c;
}

}  // namespace

class TestTrainingSamples : public QObject {
  Q_OBJECT
  TrainerEnvironment env;

 private slots:
  void samples_leave_training_unchanged_data() {
    QTest::addColumn<QString>("method");
    QTest::newRow("lora") << "lora";
    QTest::newRow("dora") << "dora";
    QTest::newRow("full") << "full";
  }
  void samples_leave_training_unchanged() {
    QFETCH(QString, method);
    const ExperimentConfig plain = small_run(method.toStdString());
    Recorder without, with;
    Trainer(plain, env).run(without);
    Trainer trainer(with_samples(plain), env);
    QCOMPARE(trainer.run(with).status, RunStatus::Finished);
    QCOMPARE(with.steps.size(), without.steps.size());
    for (std::size_t i = 0; i < with.steps.size(); ++i) {
      QCOMPARE(with.steps[i].loss, without.steps[i].loss);  // bit for bit
      QCOMPARE(with.steps[i].grad_norm, without.steps[i].grad_norm);
      // Sampled at every 5th step and the last, each prompt once.
      const std::int64_t step = with.steps[i].step;
      const bool due = step % 5 == 0 || step == 12;
      QCOMPARE(with.steps[i].samples.size(), due ? std::size_t(3) : std::size_t(0));
      QVERIFY(without.steps[i].samples.empty());
      // The sampler's buffers are allocated when the run is prepared: the
      // ledger does not change while it samples.
      if (step > 1) QVERIFY2(!with.steps[i].memory, "the ledger changed during the run");
    }

    // The prompts: the first held-out examples up to their completions.
    const data::DecodeOptions text{.skip_special = true};
    const auto& heldout = trainer.dataset().heldout;
    std::vector<std::vector<std::int32_t>> prompts;
    for (int i = 0; i < 3; ++i) {
      const TrainingSample& s = with.steps.back().samples[i];
      QCOMPARE(s.prompt, i);
      prompts.emplace_back(heldout[i].tokens.begin(), heldout[i].tokens.begin() + heldout[i].prompt_length());
      QCOMPARE(s.prompt_text, trainer.tokenizer().decode(prompts.back(), text));
    }

    // The last answers are those of the trained model: the finished
    // adapter (or weights) on a decoder of their own give the same text.
    MemoryLedger ledger;
    infer::Decoder decoder(trainer.model(), infer::DecoderLimits{3, 0, 0}, ledger);
    std::optional<infer::AdapterSet> adapter;
    if (trainer.config().adapter.is_adapter()) adapter.emplace(decoder, trainer.adapter_state(), "finished");
    infer::Generator generator(decoder, trainer.tokenizer());
    infer::GenerateOptions options;
    options.max_new_tokens = 12;
    options.adapter = adapter ? &*adapter : nullptr;
    const std::vector<infer::Completion> answers = generator.generate(prompts, options);
    for (int i = 0; i < 3; ++i) QCOMPARE(with.steps.back().samples[i].answer, answers[i].text);
  }

  void samples_repeat_and_are_stored_with_the_run() {
    const ExperimentConfig c = with_samples(small_run("lora"));
    Recorder a, b;
    Trainer(c, env).run(a);
    Trainer(c, env).run(b);
    std::vector<RunSampleRow> expected;
    for (std::size_t i = 0; i < a.steps.size(); ++i)
      for (std::size_t k = 0; k < a.steps[i].samples.size(); ++k) {
        QCOMPARE(a.steps[i].samples[k].answer, b.steps[i].samples[k].answer);
        expected.push_back({a.steps[i].step, a.steps[i].samples[k]});
      }
    QCOMPARE(expected.size(), std::size_t(9));

    QTemporaryDir dir;
    Store store(dir.filePath("samples.sqlite3").toStdString());
    const std::int64_t e = store.create_experiment(c.name, c);
    const std::int64_t run = store.create_run(e, "cpu", a.info);
    store.append_steps(run, a.steps);
    const std::vector<RunSampleRow> rows = store.run_samples(run);
    QCOMPARE(rows.size(), expected.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      QCOMPARE(rows[i].step, expected[i].step);
      QCOMPARE(rows[i].sample.prompt, expected[i].sample.prompt);
      QCOMPARE(rows[i].sample.prompt_text, expected[i].sample.prompt_text);
      QCOMPARE(rows[i].sample.answer, expected[i].sample.answer);
    }
    RunResult r;
    r.status = RunStatus::Finished;
    store.finish_run(run, r);
    store.delete_run(run);
    QVERIFY(store.run_samples(run).empty());
  }

  void the_settings_are_checked() {
    ExperimentConfig c = small_run("lora");
    c.train.samples = kMaxTrainingSamples + 1;
    EXPECT_THROW_WITH(ConfigError, c.validate(), "train.samples");
    c.train.samples = 2;
    c.train.sample_every = 0;
    EXPECT_THROW_WITH(ConfigError, c.validate(), "train.sample_every");
    c.train.sample_every = 3;
    c.train.sample_max_new = 0;
    EXPECT_THROW_WITH(ConfigError, c.validate(), "train.sample_max_new");
    EXPECT_THROW_WITH(ConfigError, c.set("train.sample_greedy", "maybe"), "train.sample_greedy");
    c.set("train.sample_max_new", "20");
    c.set("train.sample_greedy", "false");
    // Saved with the experiment.
    const ExperimentConfig back = ExperimentConfig::from_json(c.to_json(), "test");
    QCOMPARE(back.train.samples, 2);
    QCOMPARE(back.train.sample_every, 3);
    QCOMPARE(back.train.sample_max_new, 20);
    QCOMPARE(back.train.sample_greedy, false);
    // More prompts than held-out examples, named when the run is prepared.
    c.data.n_heldout = 1;
    EXPECT_THROW_WITH(ConfigError, Trainer(c, env).prepare(), "held-out examples");
  }
};

QTEST_GUILESS_MAIN(TestTrainingSamples)
#include "test_training_samples.moc"

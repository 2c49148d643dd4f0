// The real-model demo: the person-json chat task's generator (deterministic,
// disjoint splits, answers that the sentences hold) and the smollm2-lora
// preset (a clear message without the GGUF; with it, well-formed data and a
// training step).
#include <QTemporaryDir>
#include <QtTest>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/common/errors.h"
#include "core/common/paths.h"
#include "core/data/chat_tasks.h"
#include "core/data/tokenizer.h"
#include "core/train/data_setup.h"
#include "core/train/trainer.h"
#include "expect_throw.h"

using namespace lwb;
using namespace lwb::data;
namespace fs = std::filesystem;

namespace {

fs::path smollm2_path() {
  const char* env = std::getenv("LWB_SMOLLM2_GGUF");
  return env && *env ? fs::path(env) : user_data_dir() / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

std::set<std::string> prompts(const std::vector<TaskPair>& pairs) {
  std::set<std::string> s;
  for (const TaskPair& p : pairs) s.insert(p.prompt);
  return s;
}

bool same(const std::vector<TaskPair>& a, const std::vector<TaskPair>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].prompt != b[i].prompt || a[i].answer != b[i].answer) return false;
  return true;
}

struct Count : TrainerSink {
  std::vector<double> losses;
  void on_step(const StepEvent& e) override { losses.push_back(e.loss); }
};

}  // namespace

class TestDemoTask : public QObject {
  Q_OBJECT

 private slots:
  void person_json_is_deterministic_and_disjoint() {
    const TaskSplits s = chat_task_splits("person-json", 1000, 200, 1234, 100);
    QCOMPARE(s.train.size(), std::size_t{1000});
    QCOMPARE(s.heldout.size(), std::size_t{200});
    QCOMPARE(s.validation.size(), std::size_t{100});
    const auto train = prompts(s.train), held = prompts(s.heldout), val = prompts(s.validation);
    QCOMPARE(train.size() + held.size() + val.size(), std::size_t{1300});  // no repeat inside a split
    std::set<std::string> all = train;
    all.insert(held.begin(), held.end());
    all.insert(val.begin(), val.end());
    QCOMPARE(all.size(), std::size_t{1300});  // and none across splits

    const TaskSplits again = chat_task_splits("person-json", 1000, 200, 1234, 100);
    QVERIFY(same(s.train, again.train) && same(s.heldout, again.heldout) && same(s.validation, again.validation));
    const TaskSplits other = chat_task_splits("person-json", 1000, 200, 1235, 100);
    QVERIFY(!same(s.heldout, other.heldout));
    // The test split does not depend on the training size, so runs of
    // different sizes are scored on the same rows (and `data task` writes them).
    QVERIFY(same(s.heldout, chat_task_splits("person-json", 50, 200, 1234, 100).heldout));
    EXPECT_THROW_WITH(ConfigError, chat_task_splits("nosuch", 10, 10, 1), "person-json");
    QVERIFY(is_chat_task("person-json") && !is_chat_task("reverse"));
  }

  // Each answer is {"name": ..., "year": ...} in that exact shape, and both
  // values are in the sentence, with a second, later year beside them.
  void person_json_answers_are_in_the_sentence() {
    const TaskSplits s = chat_task_splits("person-json", 300, 0, 9);
    for (const TaskPair& p : s.train) {
      const nlohmann::json j = nlohmann::json::parse(p.answer);
      QVERIFY2(j.is_object() && j.size() == 2 && j["name"].is_string() && j["year"].is_number_integer(),
               p.answer.c_str());
      const std::string name = j["name"], year = std::to_string(j["year"].get<int>());
      QCOMPARE(p.answer, "{\"name\": \"" + name + "\", \"year\": " + year + "}");
      QVERIFY2(p.prompt.starts_with("Give the person's name and birth year as JSON.\n"), p.prompt.c_str());
      QVERIFY2(p.prompt.find(name) != std::string::npos && p.prompt.find(year) != std::string::npos, p.prompt.c_str());
      int years = 0;
      for (std::size_t i = 0; i + 4 <= p.prompt.size(); ++i)
        if ((p.prompt[i] == '1' || p.prompt[i] == '2') && std::isdigit(static_cast<unsigned char>(p.prompt[i + 1])) &&
            std::isdigit(static_cast<unsigned char>(p.prompt[i + 2])) &&
            std::isdigit(static_cast<unsigned char>(p.prompt[i + 3])))
          ++years;
      QVERIFY2(years == 2, p.prompt.c_str());
    }
    const nlohmann::json row = {{"prompt", s.train[0].prompt}, {"completion", s.train[0].answer}};
    QCOMPARE(task_pairs_jsonl({s.train[0]}), row.dump() + "\n");
  }

  // Without a chat template the pairs are [bos] prompt answer [eos] with the
  // answer scored; a sequence too short to hold one is refused by name.
  void person_json_renders_without_a_template() {
    ByteTokenizer tok;
    const Dataset d = make_chat_task_dataset("person-json", tok, JsonlOptions{}, 400, 20, 5, 3);
    QCOMPARE(d.train.size(), std::size_t{20});
    QCOMPARE(d.name, std::string("task:person-json"));
    QVERIFY(d.has_completions);
    const TaskSplits s = chat_task_splits("person-json", 20, 5, 3);
    const Example& e = d.train[0];
    std::vector<std::int32_t> answer;
    for (std::size_t t = 0; t < e.tokens.size(); ++t)
      if (e.is_scored(t) && e.tokens[t] != tok.eos()) answer.push_back(e.tokens[t]);
    QCOMPARE(tok.decode(answer), s.train[0].answer);
    EXPECT_THROW_WITH(DataError, make_chat_task_dataset("person-json", tok, JsonlOptions{}, 40, 20, 5, 3),
                      "raise train.seq_len");
  }

  void preset_without_the_gguf_says_how_to_fetch() {
    QTemporaryDir dir;
    const ExperimentConfig c = experiment_preset("smollm2-lora");
    c.validate();
    QCOMPARE(c.model.preset, std::string("smollm2-135m"));
    QCOMPARE(c.adapter.method, std::string("lora"));
    QCOMPARE(c.adapter.r, 8);
    QCOMPARE(c.adapter.targets.size(), std::size_t{7});
    EXPECT_THROW_WITH(ConfigError, make_data_setup(c, dir.path().toStdString()), "./run.sh fetch smollm2");
    TrainerEnvironment env;
    env.data_dir = dir.path().toStdString();
    Trainer t(c, env);
    EXPECT_THROW_WITH(ConfigError, t.prepare(), "./run.sh fetch smollm2");
  }

  // With SmolLM2: the chat template renders every example, the loss covers
  // exactly the answer and the turn's end, all fit train.seq_len + 1, the base
  // cannot already do the task, and one training step runs.
  void preset_loads_and_trains_a_step() {
    const fs::path gguf = smollm2_path();
    if (!fs::exists(gguf))
      QSKIP(qPrintable(QString("%1 not found (set LWB_SMOLLM2_GGUF or put it in %2; ./run.sh fetch smollm2)")
                           .arg(QString::fromStdString(gguf.string()),
                                QString::fromStdString((user_data_dir() / "models").string()))));
    QTemporaryDir dir;
    const fs::path models = fs::path(dir.path().toStdString()) / "models";
    fs::create_directories(models);
    fs::create_symlink(fs::absolute(gguf), models / "SmolLM2-135M-Instruct.Q4_1.gguf");
    ExperimentConfig c = experiment_preset("smollm2-lora");
    const DataSetup setup = make_data_setup(c, dir.path().toStdString());
    QVERIFY(setup.chat.has_value());
    const Dataset d = load_experiment_data(c, setup);
    QCOMPARE(d.train.size(), static_cast<std::size_t>(c.data.n_train));
    QCOMPARE(d.heldout.size(), static_cast<std::size_t>(c.data.n_heldout));
    const TaskSplits s = chat_task_splits(c.data.task, c.data.n_train, c.data.n_heldout, c.data.seed);
    for (std::size_t i = 0; i < d.heldout.size(); ++i) {
      const Example& e = d.heldout[i];
      QVERIFY(static_cast<int>(e.tokens.size()) <= c.train.seq_len + 1);
      const std::size_t p = e.prompt_length();
      const std::string prompt = setup.tokenizer->decode(std::span(e.tokens).first(p), {.skip_special = false});
      const std::string scored = setup.tokenizer->decode(std::span(e.tokens).subspan(p), {.skip_special = false});
      QVERIFY2(prompt.ends_with(s.heldout[i].prompt + "<|im_end|>\n<|im_start|>assistant\n"), prompt.c_str());
      QVERIFY2(scored.starts_with(s.heldout[i].answer + "<|im_end|>"), scored.c_str());
    }

    c.train.steps = 1;
    c.train.eval_every = 0;
    c.train.eval_examples = 4;
    c.schedule.warmup_steps = 0;
    c.train.batch = 2;
    TrainerEnvironment env;
    env.data_dir = dir.path().toStdString();
    Trainer t(c, env);
    Count sink;
    const RunResult r = t.run(sink);
    QCOMPARE(r.status, RunStatus::Finished);
    QCOMPARE(sink.losses.size(), std::size_t{1});
    QVERIFY(std::isfinite(sink.losses[0]) && sink.losses[0] > 0);
    QCOMPARE(r.final_eval.examples, std::int64_t{4});
    qInfo("one step: loss %.4f; held-out loss %.4f, exact match %.0f%% on 4 examples", sink.losses[0],
          r.final_eval.loss, 100 * r.final_eval.accuracy);
  }
};

QTEST_GUILESS_MAIN(TestDemoTask)
#include "test_demo_task.moc"

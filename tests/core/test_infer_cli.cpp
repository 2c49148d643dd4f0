// `lora-workbench generate` and `predict` as a user meets them: answers
// streamed to stdout for a built-in model, a Hugging Face folder and its PEFT
// adapters (from a folder or the library), one labelled answer per adapter;
// predictions of a run's adapter, a folder's and the base over a JSONL file,
// written as CSV and kept in the store against the run; and every bad input
// refused with a message that names it: no model, an unknown adapter, an
// adapter for another base, an empty prompt, max-new <= 0, a prompt longer
// than the context, bad sampling values, a broken messages or data file; and
// a generation beside a training run takes its share of the cores.
#include <QDir>
#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <filesystem>
#include <optional>

#include "cli_fixture.h"
#include "core/adapters/adapter_state.h"
#include "core/adapters/attach.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/cpu_share.h"
#include "core/io/peft.h"
#include "core/store/store.h"

namespace {

using cli_fixture::Result;

Result run(const QStringList& args, const QString& data_dir, const QString& command = "generate") {
  return cli_fixture::run(QStringList{command} + args, data_dir);
}

const QString kGolden = QString(LWB_TEST_DATA_DIR) + "/generate";
const QString kTiny = kGolden + "/tiny_llama";

}  // namespace

class TestInferCli : public QObject {
  Q_OBJECT
  QTemporaryDir dir;

  void expect_refused(const QStringList& args, const QString& needle, int code, const QString& command = "generate") {
    const Result r = run(args, dir.path(), command);
    qInfo("%s %s -> %d: %s", qPrintable(command), qPrintable(args.join(' ')), r.code, qPrintable(r.err.trimmed()));
    QCOMPARE(r.code, code);
    QVERIFY2(r.err.contains(needle), qPrintable(r.err));
    QVERIFY2(r.out.isEmpty(), qPrintable(r.out));
  }

  QString write_file(const QString& name, const QByteArray& text) {
    QFile f(dir.filePath(name));
    if (!f.open(QIODevice::WriteOnly)) qFatal("cannot write %s", qPrintable(f.fileName()));
    f.write(text);
    return f.fileName();
  }

  // The predictions `predict` says it stored ("stored as predictions N in FILE").
  lwb::PredictionSet stored(const Result& r) {
    const QRegularExpressionMatch m = QRegularExpression("stored as predictions (\\d+) in (.+)\n").match(r.out);
    if (!m.hasMatch()) qFatal("no stored predictions in: %s", qPrintable(r.out));
    lwb::Store store(m.captured(2).toStdString());
    return store.load_predictions(m.captured(1).toLongLong());
  }

 private slots:
  void initTestCase() { cli_fixture::copy_tiny_base(dir.path()); }

  void builtInModelChats() {
    const Result r = run({"--model", "tiny", "--chat", "Say hi", "--system", "Be brief.", "--max-new", "6"}, dir.path());
    QCOMPARE(r.code, 0);
    QVERIFY2(r.err.contains("6 new tokens, ended by length") || r.err.contains("ended by stop"), qPrintable(r.err));
    QVERIFY(r.out.endsWith('\n'));
  }

  // A generation beside a run training on the same CPU takes its share of
  // the threads (the tests run with OMP_NUM_THREADS=2), as a run would.
  void generationSharesTheCores() {
    const lwb::CpuShare training;  // registered as a training run in another process is
    const Result r = run({"--model", "tiny", "--prompt", "ab", "--max-new", "2"}, dir.path());
    QCOMPARE(r.code, 0);
    QVERIFY2(r.err.contains("on cpu (1 threads"), qPrintable(r.err));
  }

  // The same answer, greedy, twice; a seeded sample repeats; sampling options change it.
  void folderModelWithAdapters() {
    const QStringList base = {"--model", kTiny, "--prompt", "The quick brown fox", "--max-new", "12"};
    const Result a = run(base, dir.path()), b = run(base, dir.path());
    QCOMPARE(a.code, 0);
    QCOMPARE(a.out, b.out);
    QVERIFY2(a.err.contains("[base: 20 prompt + 12 new tokens, ended by length"), qPrintable(a.err));
    const Result s1 = run(base + QStringList{"--temperature", "1.3", "--top-p", "0.9", "--seed", "7"}, dir.path());
    const Result s2 = run(base + QStringList{"--temperature", "1.3", "--top-p", "0.9", "--seed", "7"}, dir.path());
    QCOMPARE(s1.code, 0);
    QCOMPARE(s1.out, s2.out);

    // Two adapters: one labelled answer each, different from the base's.
    const Result two = run(base + QStringList{"--adapter", kGolden + "/lora", "--adapter", kGolden + "/dora"}, dir.path());
    QCOMPARE(two.code, 0);
    QVERIFY2(two.out.startsWith("== " + kGolden + "/lora ==\n"), qPrintable(two.out));
    QVERIFY2(two.out.contains("\n== " + kGolden + "/dora ==\n"), qPrintable(two.out));
    QVERIFY(!two.out.contains(a.out.trimmed()) || a.out.trimmed().isEmpty());
    // Merged, the LoRA answers the same as unmerged.
    const Result unmerged = run(base + QStringList{"--adapter", kGolden + "/lora"}, dir.path());
    const Result merged = run(base + QStringList{"--adapter", kGolden + "/lora", "--merged"}, dir.path());
    QCOMPARE(merged.code, 0);
    QCOMPARE(merged.out, unmerged.out);

    // From the library by name, after importing the folder.
    QProcess import;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("LWB_DATA_DIR", dir.path());
    import.setProcessEnvironment(env);
    import.start(LWB_APP_BINARY, {"import", "adapter", kGolden + "/lora", "--name", "golden-lora", "--base", kTiny});
    QVERIFY(import.waitForFinished(300000));
    QCOMPARE(import.exitCode(), 0);
    const Result named = run(base + QStringList{"--adapter", "golden-lora"}, dir.path());
    QCOMPARE(named.code, 0);
    QCOMPARE(named.out, unmerged.out);
  }

  void messagesFile() {
    const QString file = dir.filePath("messages.json");
    QFile f(file);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(R"([{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "again"}])");
    f.close();
    const Result r = run({"--model", kTiny, "--messages", file, "--max-new", "3"}, dir.path());
    QCOMPARE(r.code, 0);
    QVERIFY2(r.err.contains("3 new tokens"), qPrintable(r.err));
    // A chat-format JSONL row, as `template --messages` reads it too.
    const QString row = write_file("row.json", R"({"messages": [{"role": "user", "content": "hello"}]})");
    const Result from_row = run({"--model", kTiny, "--messages", row, "--max-new", "3"}, dir.path());
    QCOMPARE(from_row.code, 0);
    QVERIFY2(from_row.err.contains("3 new tokens"), qPrintable(from_row.err));
  }

  void badInputsNameTheProblem() {
    const QStringList tiny = {"--model", kTiny};
    expect_refused({"--prompt", "hi"}, "generate needs --model", 2);
    expect_refused(tiny, "give exactly one of --prompt TEXT, --chat TEXT or --messages FILE.json", 2);
    expect_refused(tiny + QStringList{"--prompt", "a", "--chat", "b"}, "exactly one of", 2);
    expect_refused(tiny + QStringList{"--prompt", ""}, "option --prompt needs a value", 2);
    expect_refused(tiny + QStringList{"--chat", ""}, "option --chat needs a value", 2);
    expect_refused(tiny + QStringList{"--prompt", "hi", "--max-new", "0"}, "--max-new expects an integer from 1", 2);
    expect_refused(tiny + QStringList{"--prompt", "hi", "--max-new", "-3"}, "--max-new", 2);
    expect_refused(tiny + QStringList{"--prompt", QString(200, 'a')}, "the prompt has 201 tokens, more than the context of 128 tokens", 1);
    expect_refused(tiny + QStringList{"--prompt", QString(50, 'a'), "--context", "20"}, "more than the context of 20 tokens", 1);
    expect_refused(tiny + QStringList{"--prompt", "hi", "--context", "500"}, "--context", 2);
    expect_refused(tiny + QStringList{"--prompt", "hi", "--adapter", "nosuch"},
                   "--adapter \"nosuch\" is neither a PEFT folder nor an adapter or composition", 2);
    expect_refused(tiny + QStringList{"--prompt", "hi", "--top-p", "1.5"}, "sampling.top_p", 2);
    expect_refused(tiny + QStringList{"--prompt", "hi", "--temperature", "hot"}, "--temperature expects a number", 2);
    expect_refused(tiny + QStringList{"--prompt", "hi", "--greedy", "--temperature", "0.7"}, "--greedy", 2);
    expect_refused(tiny + QStringList{"--prompt", "hi", "--system", "x"}, "--system goes with --chat or --messages", 2);
    expect_refused(tiny + QStringList{"--prompt", "hi", "--merged"}, "--merged", 2);
    expect_refused(tiny + QStringList{"--prompt", "hi", "--stop", ""}, "option --stop needs a value", 2);
    expect_refused({"--model", "nosuch-model", "--prompt", "hi"}, "nosuch-model", 2);
    expect_refused({"--model", dir.filePath("missing.gguf"), "--prompt", "hi"}, "missing.gguf\" does not exist", 2);
    const QString bad = dir.filePath("bad.json");
    QFile f(bad);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(R"([{"role": "user"}])");
    f.close();
    expect_refused(tiny + QStringList{"--messages", bad}, "message 1: expected {\"role\": string, \"content\": string}", 1);
    expect_refused(tiny + QStringList{"--messages", write_file("empty.json", "[]")}, "empty.json: holds no messages", 1);
    expect_refused(tiny + QStringList{"--messages", write_file("broken.json", "[{\"role\": ")}, "broken.json: not valid JSON", 1);
    expect_refused(tiny + QStringList{"--messages", dir.filePath("missing.json")}, "missing.json: cannot be read", 1);
  }

  // A folder's adapter, the base, and a run's adapter over a JSONL file: a
  // CSV row per example, the means on stdout, the same rows in the store.
  void predictions() {
    const QString data = write_file("heldout.jsonl",
                                    "{\"prompt\": \"The quick brown fox\", \"completion\": \" jumps\"}\n"
                                    "{\"prompt\": \"hello\", \"completion\": \"world, \\\"quoted\\\"\"}\n"
                                    "\n"
                                    "{\"prompt\": \"abc\", \"completion\": \"def\"}\n");
    const QString csv = dir.filePath("lora.csv");
    const Result r = run({"--adapter", kGolden + "/lora", "--model", kTiny, "--data", data, "--out", csv, "--batch", "2"},
                         dir.path(), "predict");
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY2(r.out.startsWith(kGolden + "/lora on 3 example(s): loss "), qPrintable(r.out));
    const lwb::PredictionSet set = stored(r);
    QCOMPARE(set.rows.size(), std::size_t{3});
    QCOMPARE(set.summary.examples, std::int64_t{3});
    QVERIFY(!set.run_id && !set.adapter_id);
    QCOMPARE(set.rows[1].reference, std::string("world, \"quoted\""));
    QVERIFY(std::isfinite(set.summary.loss) && set.summary.loss > 0);
    QFile f(csv);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QStringList lines = QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), 4);
    QCOMPARE(lines[0], QString("index,prompt,reference,prediction,loss,exact_match,rouge_l"));
    QVERIFY2(lines[2].startsWith("2,\"hello\",\"world, \"\"quoted\"\"\",\""), qPrintable(lines[2]));
    // The base alone scores differently; --n keeps the first rows.
    const Result b = run({"--model", kTiny, "--data", data, "--out", dir.filePath("base.csv"), "--n", "2"}, dir.path(),
                         "predict");
    QVERIFY2(b.code == 0, qPrintable(b.err));
    const lwb::PredictionSet base = stored(b);
    QCOMPARE(base.adapter, std::string("base"));
    QCOMPARE(base.rows.size(), std::size_t{2});
    QVERIFY(base.rows[0].loss != set.rows[0].loss);

    // A run's adapter: the base it names, the store row against the run.
    QProcess train;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("LWB_DATA_DIR", dir.path());
    train.setProcessEnvironment(env);
    train.start(LWB_APP_BINARY, {"train", "--preset", "tiny-lora", "--set", "train.steps=2", "--set",
                                 "schedule.warmup_steps=0", "--set", "train.eval_examples=4", "--set", "train.eval_every=0"});
    QVERIFY(train.waitForFinished(600000));
    QVERIFY2(train.exitCode() == 0, train.readAllStandardError().constData());
    const Result byrun = run({"--run", "1", "--data", data, "--out", dir.filePath("run.csv")}, dir.path(), "predict");
    QVERIFY2(byrun.code == 0, qPrintable(byrun.err));
    QVERIFY2(byrun.out.startsWith("run 1 on 3 example(s)"), qPrintable(byrun.out));
    const lwb::PredictionSet of_run = stored(byrun);
    QCOMPARE(of_run.run_id, std::optional<std::int64_t>(1));
    QVERIFY(of_run.adapter_id.has_value());
    lwb::Store store(dir.filePath("workbench.sqlite3").toStdString());
    QCOMPARE(store.list_predictions(1).size(), std::size_t{1});

    // Bad inputs, each named.
    const QStringList out = {"--out", dir.filePath("x.csv")};
    expect_refused(out + QStringList{"--data", data}, "predict needs --run ID, --adapter NAME|DIR, or --model M", 2, "predict");
    expect_refused({"--model", kTiny, "--out", dir.filePath("x.csv")}, "predict needs --data FILE.jsonl", 2, "predict");
    expect_refused({"--model", kTiny, "--data", data}, "predict needs --out FILE.csv", 2, "predict");
    expect_refused(out + QStringList{"--run", "1", "--adapter", "x", "--data", data}, "not both", 2, "predict");
    expect_refused(out + QStringList{"--run", "99", "--data", data}, "there is no run with id 99", 1, "predict");
    expect_refused(out + QStringList{"--adapter", "nosuch", "--data", data}, "--adapter \"nosuch\" is neither", 2, "predict");
    expect_refused(out + QStringList{"--model", kTiny, "--data", data, "--n", "0"}, "--n expects an integer from 1", 2,
                   "predict");
    expect_refused(out + QStringList{"--model", kTiny, "--data", data, "--batch", "0"}, "--batch", 2, "predict");
    expect_refused(out + QStringList{"--model", kTiny, "--data", dir.filePath("missing.jsonl")}, "missing.jsonl", 1, "predict");
    const QString empty = write_file("empty.jsonl", "\n");
    expect_refused(out + QStringList{"--model", kTiny, "--data", empty}, "no usable rows", 1, "predict");
    const QString broken = write_file("broken.jsonl", "{\"prompt\": \"a\"}\n");
    expect_refused(out + QStringList{"--model", kTiny, "--data", broken}, "broken.jsonl:1: missing string field \"completion\"",
                   1, "predict");
    const QString other = dir.filePath("other-base");
    lwb::CpuBackend be;
    lwb::MemoryLedger ledger;
    lwb::AdapterConfig ac;
    lwb::Model m(lwb::model_preset("tiny"), lwb::model_mode_for(ac));
    lwb::attach_adapters(m, ac);
    m.materialize(be, ledger, 1, 1);
    m.init_adapters(1);
    lwb::io::write_peft_folder(other.toStdString(), lwb::extract_adapter(m, ac, "lora-workbench/tiny", "0123456789abcdef"));
    expect_refused(out + QStringList{"--adapter", other, "--data", data}, "trained on another base model", 1, "predict");
    QVERIFY(!QFileInfo::exists(dir.filePath("x.csv")));
  }

  // A PEFT adapter of a model with another shape, and one that records another base's fingerprint.
  void adapterForAnotherBase() {
    lwb::CpuBackend be;
    lwb::MemoryLedger ledger;
    lwb::ModelConfig c = lwb::model_preset("tiny");
    lwb::AdapterConfig ac;
    lwb::Model m(c, lwb::model_mode_for(ac));
    lwb::attach_adapters(m, ac);
    m.materialize(be, ledger, 1, 1);
    m.init_adapters(1);
    const QString other = dir.filePath("other-shape");
    lwb::io::write_peft_folder(other.toStdString(), lwb::extract_adapter(m, ac, "lora-workbench/tiny", "0123456789abcdef"));
    expect_refused({"--model", kTiny, "--prompt", "hi", "--adapter", other}, "adapter \"" + other + "\"", 1);
    expect_refused({"--model", "tiny", "--prompt", "hi", "--adapter", other}, "trained on another base model", 1);
  }
};

QTEST_GUILESS_MAIN(TestInferCli)
#include "test_infer_cli.moc"

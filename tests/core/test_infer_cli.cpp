// `lora-workbench generate` as a user meets it: answers streamed to stdout
// for a built-in model, a Hugging Face folder and its PEFT adapters (from a
// folder or the library), one labelled answer per adapter; and every bad
// input refused with a message that names it: no model, an unknown adapter,
// an adapter for another base, an empty prompt, max-new <= 0, a prompt
// longer than the context, bad sampling values, a broken messages file.
#include <QDir>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>

#include "core/adapters/adapter_state.h"
#include "core/adapters/attach.h"
#include "core/cpu/cpu_backend.h"
#include "core/io/peft.h"

namespace {

struct Result {
  int code;
  QString out, err;
};

Result run(const QStringList& args, const QString& data_dir) {
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert("LWB_DATA_DIR", data_dir);
  p.setProcessEnvironment(env);
  p.start(LWB_APP_BINARY, QStringList{"generate"} + args);
  if (!p.waitForFinished(300000)) return {-1, {}, "timeout"};
  return {p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()), QString::fromUtf8(p.readAllStandardError())};
}

const QString kGolden = QString(LWB_TEST_DATA_DIR) + "/generate";
const QString kTiny = kGolden + "/tiny_llama";

}  // namespace

class TestInferCli : public QObject {
  Q_OBJECT
  QTemporaryDir dir;

  void expect_refused(const QStringList& args, const QString& needle, int code) {
    const Result r = run(args, dir.path());
    qInfo("generate %s -> %d: %s", qPrintable(args.join(' ')), r.code, qPrintable(r.err.trimmed()));
    QCOMPARE(r.code, code);
    QVERIFY2(r.err.contains(needle), qPrintable(r.err));
    QVERIFY2(r.out.isEmpty(), qPrintable(r.out));
  }

 private slots:
  void initTestCase() {
    // The tiny base the CTest fixture built, copied in so that nothing here pretrains.
    const QString shared = qEnvironmentVariable("XDG_DATA_HOME") + "/lora-workbench/models/tiny-base.safetensors";
    QVERIFY2(QFileInfo::exists(shared), qPrintable(shared));
    QVERIFY(QDir().mkpath(dir.filePath("models")));
    QVERIFY(QFile::copy(shared, dir.filePath("models/tiny-base.safetensors")));
  }

  void builtInModelChats() {
    const Result r = run({"--model", "tiny", "--chat", "Say hi", "--system", "Be brief.", "--max-new", "6"}, dir.path());
    QCOMPARE(r.code, 0);
    QVERIFY2(r.err.contains("6 new tokens, ended by length") || r.err.contains("ended by stop"), qPrintable(r.err));
    QVERIFY(r.out.endsWith('\n'));
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

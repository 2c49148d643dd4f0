// The headless command line as a user meets it: bad input gets a message that
// names the field or file, a non-zero exit, and nothing is written or
// overwritten; a good run leaves config, metrics and a PEFT adapter behind.
#include <QDir>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

namespace {

struct Result {
  int code;
  QString out, err;
};

Result run(const QStringList& args, const QString& data_dir, bool with_display = true) {
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert("LWB_DATA_DIR", data_dir);
  if (!with_display) {
    env.remove("DISPLAY");
    env.remove("WAYLAND_DISPLAY");
    env.remove("QT_QPA_PLATFORM");
  }
  p.setProcessEnvironment(env);
  p.start(LWB_APP_BINARY, args);
  if (!p.waitForFinished(300000)) return {-1, {}, "timeout"};
  return {p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()), QString::fromUtf8(p.readAllStandardError())};
}

void write_file(const QString& path, const QByteArray& text) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write(text);
}

}  // namespace

class TestCli : public QObject {
  Q_OBJECT
  QTemporaryDir dir;

  void expect_refused(const QStringList& args, const QString& needle, int code = 2) {
    const QString out_dir = dir.filePath("never-created");
    const Result r = run(QStringList(args) << "--out" << out_dir, dir.path());
    qInfo("%s -> %d: %s", qPrintable(args.join(' ')), r.code, qPrintable(r.err.trimmed()));
    QCOMPARE(r.code, code);
    QVERIFY2(r.err.contains(needle), qPrintable(r.err));
    QVERIFY2(!QFileInfo::exists(out_dir), "an output folder was created for a refused run");
  }

 private slots:
  void initTestCase() {
    // The tiny base the CTest fixture built, copied in so that no command here
    // pretrains one of its own.
    const QString shared = qEnvironmentVariable("XDG_DATA_HOME") + "/lora-workbench/models/tiny-base.safetensors";
    QVERIFY2(QFileInfo::exists(shared), qPrintable(shared));
    QVERIFY(QDir().mkpath(dir.filePath("models")));
    QVERIFY(QFile::copy(shared, dir.filePath("models/tiny-base.safetensors")));
  }

  void bad_settings_name_the_field() {
    expect_refused({"train", "--preset", "nosuch"}, "unknown preset \"nosuch\"");
    expect_refused({"train", "--preset", "tiny-lora", "--set", "adapter.r=0"}, "adapter.r");
    expect_refused({"train", "--preset", "tiny-lora", "--set", "adapter.r=500"}, "exceeds min(in, out)");
    expect_refused({"train", "--preset", "tiny-lora", "--set", "adapter.targets=q,zz"}, "adapter.targets");
    expect_refused({"train", "--preset", "tiny-lora", "--set", "train.seq_len=4096"}, "train.seq_len");
    expect_refused({"train", "--preset", "tiny-lora", "--set", "nosuch.key=1"}, "nosuch.key");
    expect_refused({"train", "--preset", "tiny-lora", "--set", "train.steps=ten"}, "expected an integer");
    expect_refused({"train"}, "--preset");
    expect_refused({"train", "--preset", "demo", "--bogus", "1"}, "--bogus");
  }

  void bad_files_name_the_file() {
    const QString cfg = dir.filePath("broken.json");
    write_file(cfg, "{\"train\": {\"steps\": 10,}");
    expect_refused({"train", "--config", cfg}, "broken.json", 1);

    const QString bad = dir.filePath("bad.jsonl");
    write_file(bad, "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"c\", \"completion\": \"d\"}\n{not json\n");
    expect_refused({"train", "--preset", "tiny-lora", "--set", "data.kind=jsonl", "--set", "data.path=" + bad},
                   "bad.jsonl:3", 1);

    const QString empty = dir.filePath("empty.jsonl");
    write_file(empty, "\n\n");
    expect_refused({"train", "--preset", "tiny-lora", "--set", "data.kind=jsonl", "--set", "data.path=" + empty},
                   "empty.jsonl", 1);
  }

  void existing_output_is_never_overwritten() {
    const QString out = dir.filePath("taken");
    QVERIFY(QDir().mkpath(out));
    write_file(out + "/notes.txt", "mine");
    const Result r = run({"train", "--preset", "tiny-lora", "--set", "model.base=random", "--out", out}, dir.path());
    QCOMPARE(r.code, 2);
    QVERIFY(r.err.contains("exists"));
    QFile f(out + "/notes.txt");
    QVERIFY(f.open(QIODevice::ReadOnly));
    QCOMPARE(f.readAll(), QByteArray("mine"));
    QCOMPARE(QDir(out).entryList(QDir::NoDotAndDotDot | QDir::AllEntries).size(), 1);
  }

  void a_short_run_writes_its_outputs() {
    const QString out = dir.filePath("run1");
    const Result r = run({"train", "--preset", "tiny-lora", "--set", "model.base=random", "--set",
                          "train.steps=3", "--set", "schedule.warmup_steps=0", "--set", "train.eval_examples=8", "--out", out},
                         dir.path());
    QVERIFY2(r.code == 0, qPrintable(r.err));
    for (const char* f : {"config.json", "metrics.jsonl", "result.json", "adapter/adapter_config.json",
                          "adapter/adapter_model.safetensors"})
      QVERIFY2(QFileInfo::exists(out + "/" + f), f);
    QFile m(out + "/metrics.jsonl");
    QVERIFY(m.open(QIODevice::ReadOnly));
    QCOMPARE(m.readAll().count('\n'), 3);
    // Plain progress lines when stdout is not a terminal.
    QVERIFY2(r.out.contains("step 3/3"), qPrintable(r.out));
  }

  void adapters_and_bases_move_through_peft_and_hf_folders() {
    // The adapter stored by the short run above goes out as a PEFT folder,
    // comes back under a new name, and the base goes out as an HF checkpoint
    // that the trainer accepts as model.base.
    const Result list = run({"compose", "--list"}, dir.path());
    QVERIFY2(list.code == 0 && list.out.contains("tiny-lora-run1"), qPrintable(list.out + list.err));
    const QString peft = dir.filePath("peft");
    Result r = run({"export", "adapter", "tiny-lora-run1", "--out", peft}, dir.path());
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(QFileInfo::exists(peft + "/adapter_config.json") && QFileInfo::exists(peft + "/adapter_model.safetensors"));
    // The run used a random base: importing against the built-in base is refused.
    r = run({"import", "adapter", peft, "--name", "again", "--base", "tiny"}, dir.path());
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("another base"), qPrintable(r.err));
    const QString hf = dir.filePath("hf");
    r = run({"export", "base", "tiny", "--out", hf}, dir.path());
    QVERIFY2(r.code == 0, qPrintable(r.err));
    r = run({"import", "base", hf}, dir.path());
    QVERIFY2(r.code == 0 && r.out.contains("952448 parameters"), qPrintable(r.out + r.err));
    r = run({"train", "--preset", "tiny-lora", "--set", "model.base=" + hf, "--set", "train.steps=2", "--set",
             "schedule.warmup_steps=0", "--set", "train.eval_examples=4", "--no-store", "--out", dir.filePath("run-hf")},
            dir.path());
    QVERIFY2(r.code == 0, qPrintable(r.err));
    r = run({"import", "adapter", dir.filePath("nothing"), "--name", "x", "--base", "tiny"}, dir.path());
    QVERIFY(r.code != 0);
    QVERIFY2(r.err.contains("nothing"), qPrintable(r.err));
  }

  void without_a_display_the_window_says_how_to_run_headless() {
    const Result r = run({}, dir.path(), false);
    QCOMPARE(r.code, 2);
    QVERIFY(r.err.contains("train --preset demo"));
  }
};

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"

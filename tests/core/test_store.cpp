// The SQLite store: round trips of every table, names that look like SQL, the
// migration from schema version 1, refusal of newer, locked and foreign files,
// interrupted runs and leases, a store locked or full under a running sink,
// and a writer killed mid-run, mid-evaluation and mid-way through recording
// its end (this executable, started with --store-kill-child or
// --lease-child, is that writer).
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "core/common/errors.h"
#include "core/io/peft.h"
#include "core/store/store.h"
#include "core/store/store_sink.h"
#include "core/train/jsonl_sink.h"
#include "fillable_disk.h"

using namespace lwb;
namespace fs = std::filesystem;

namespace {

const char* const kInterrupted = "interrupted (the process ended without finishing the run)";

// Schema version 1 exactly as the first release created it, to migrate from.
const char* const kSchemaV1 = R"sql(
CREATE TABLE experiments (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  config_json TEXT NOT NULL,
  created TEXT NOT NULL
);
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'stopped', 'failed')),
  device TEXT NOT NULL,
  started TEXT,
  ended TEXT,
  steps_done INTEGER NOT NULL DEFAULT 0,
  final_train_loss REAL,
  final_eval_loss REAL,
  final_accuracy REAL,
  tokens_per_s REAL,
  peak_bytes INTEGER,
  error TEXT,
  summary_json TEXT,
  run_info_json TEXT
);
CREATE TABLE metrics (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  loss REAL,
  eval_loss REAL,
  accuracy REAL,
  lr REAL,
  grad_norm REAL,
  tokens_per_s REAL,
  elapsed_s REAL,
  PRIMARY KEY (run_id, step)
) WITHOUT ROWID;
CREATE TABLE memory_snapshots (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  snapshot_json TEXT NOT NULL,
  PRIMARY KEY (run_id, step)
);
CREATE TABLE variant_events (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  kind TEXT NOT NULL,
  payload_json TEXT NOT NULL
);
CREATE TABLE adapters (
  id INTEGER PRIMARY KEY,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  name TEXT NOT NULL UNIQUE,
  variant TEXT NOT NULL,
  rank INTEGER NOT NULL,
  targets TEXT NOT NULL,
  base_model TEXT NOT NULL,
  base_fingerprint TEXT NOT NULL,
  peft_config_json TEXT NOT NULL,
  safetensors BLOB NOT NULL,
  created TEXT NOT NULL,
  task TEXT NOT NULL,
  eval_loss REAL,
  eval_accuracy REAL
);
CREATE TABLE compositions (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  mode TEXT NOT NULL,
  optimizer TEXT NOT NULL,
  base_fingerprint TEXT NOT NULL,
  target_task TEXT NOT NULL,
  created TEXT NOT NULL,
  scores_json TEXT NOT NULL,
  canvas_json TEXT NOT NULL
);
CREATE TABLE composition_members (
  composition_id INTEGER NOT NULL REFERENCES compositions(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  adapter_id INTEGER NOT NULL REFERENCES adapters(id) ON DELETE RESTRICT,
  weight REAL NOT NULL,
  x REAL NOT NULL,
  y REAL NOT NULL,
  PRIMARY KEY (composition_id, position)
);
CREATE TABLE composition_trials (
  composition_id INTEGER NOT NULL REFERENCES compositions(id) ON DELETE CASCADE,
  iteration INTEGER NOT NULL,
  weights_json TEXT NOT NULL,
  objective REAL,
  PRIMARY KEY (composition_id, iteration)
);
PRAGMA user_version = 1;
)sql";

// A second connection that bypasses the Store, as another process would.
class RawDb {
 public:
  explicit RawDb(const fs::path& file) {
    if (sqlite3_open(file.c_str(), &db_) != SQLITE_OK) qFatal("cannot open %s", file.c_str());
  }
  ~RawDb() { sqlite3_close(db_); }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string m = err ? err : "?";
      sqlite3_free(err);
      qFatal("%s: %s", sql.c_str(), m.c_str());
    }
  }
  // The first column of the first row, as text ("" for none or NULL).
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) qFatal("%s: %s", sql.c_str(), sqlite3_errmsg(db_));
    std::string out;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return out;
  }
  std::int64_t integer(const std::string& sql) { return std::stoll(text(sql)); }
  void keep_wal_on_close() { sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr); }
  void insert_blob(const std::string& sql, const std::vector<std::uint8_t>& blob) {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr);
    sqlite3_bind_blob64(s, 1, blob.data(), blob.size(), SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_DONE) qFatal("%s: %s", sql.c_str(), sqlite3_errmsg(db_));
    sqlite3_finalize(s);
  }

 private:
  sqlite3* db_ = nullptr;
};

std::vector<char> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

LedgerSnapshot sample_snapshot(std::size_t scale) {
  LedgerSnapshot s;
  for (int layer = kModelLevel; layer < 3; ++layer) {
    LedgerSnapshot::Row row;
    row.layer = layer;
    for (int c = 0; c < kMemCategoryCount; ++c) row.bytes[c] = scale * (100 + 10 * layer + c);
    s.rows.push_back(row);
  }
  for (int c = 0; c < kMemCategoryCount; ++c) {
    s.current[c] = scale * (1000 + c);
    s.peak[c] = scale * (2000 + c);
  }
  s.total = scale * 6015;
  s.peak_total = scale * 12015;
  return s;
}

bool same_snapshot(const LedgerSnapshot& a, const LedgerSnapshot& b) {
  if (a.rows.size() != b.rows.size() || a.current != b.current || a.peak != b.peak || a.total != b.total ||
      a.peak_total != b.peak_total)
    return false;
  for (std::size_t i = 0; i < a.rows.size(); ++i)
    if (a.rows[i].layer != b.rows[i].layer || a.rows[i].bytes != b.rows[i].bytes) return false;
  return true;
}

ExperimentConfig sample_config(const std::string& name) {
  ExperimentConfig c;
  c.name = name;
  c.adapter.method = "dora";
  c.adapter.r = 4;
  c.data.task = "reverse";
  c.train.steps = 120;
  return c;
}

RunInfo sample_info(const ExperimentConfig& config) {
  RunInfo i;
  i.config = config;
  i.backend = "cpu";
  i.dataset = "reverse";
  i.train_examples = 2000;
  i.heldout_examples = 200;
  i.trainable_params = 12345;
  i.model_params = 1000000;
  i.base_fingerprint = "0123456789abcdef";
  i.memory = sample_snapshot(1);
  i.environment = current_environment("cpu", 2);
  return i;
}

// Step s of a made-up run: evaluation every 25 steps, a ledger change at
// steps 1 and 30, a variant event at step 10.
StepEvent sample_step(std::int64_t s) {
  StepEvent e;
  e.step = s;
  e.total_steps = 120;
  e.loss = 3.0 / static_cast<double>(s) + 0.125;
  e.lr = 1e-3 * static_cast<double>(s % 7);
  e.grad_norm = s == 3 ? NAN : 0.5 + 1.0 / static_cast<double>(s);
  e.tokens_per_s = 1000.0 + static_cast<double>(s);
  e.elapsed_s = 0.01 * static_cast<double>(s);
  if (s % 25 == 0) e.eval = EvalResult{2.0 / static_cast<double>(s), s == 50 ? NAN : 0.02 * static_cast<double>(s), 200};
  if (s == 1 || s == 30) e.memory = sample_snapshot(static_cast<std::size_t>(s));
  if (s == 10) e.variant_events.push_back({"relora.reset", R"({"step":10,"merged":7})"});
  if (s % 10 == 1) e.layer_grad_norms = {0.5 / static_cast<double>(s), 0.25, s == 11 ? NAN : 2.0};
  return e;
}

// Values chosen to catch any conversion: -0, a denormal, NaN with a payload, infinities.
HostTensor sample_tensor(std::vector<std::int64_t> shape, unsigned seed) {
  HostTensor t;
  t.shape = std::move(shape);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  t.values.resize(static_cast<std::size_t>(t.numel()));
  for (float& v : t.values) v = normal(rng);
  t.values[0] = -0.0f;
  t.values[1] = 1e-40f;
  t.values[2] = std::bit_cast<float>(0x7fc00123u);
  t.values[3] = -INFINITY;
  return t;
}

AdapterState sample_adapter(const std::string& method, unsigned seed) {
  AdapterState s;
  s.config.method = method;
  s.config.r = 4;
  s.config.alpha = 8;
  s.config.dropout = 0.05;
  s.config.use_rslora = method == "lora";
  s.config.init = LoraInit::Gaussian;
  s.config.targets = {Target::Q, Target::V, Target::Down};
  s.base_model = "lora-workbench/tiny";
  s.base_fingerprint = "fedcba9876543210";
  s.model = model_preset("tiny");
  const ModelConfig& m = s.model;
  for (int layer = 0; layer < m.layers; ++layer)
    for (Target t : s.config.targets) {
      const LinearShape sh = linear_shape(m, t);
      const std::string module = "model.layers." + std::to_string(layer) + "." + target_hf_path(t);
      s.tensors[peft_key(module, "lora_A.weight")] = sample_tensor({4, sh.in}, seed++);
      s.tensors[peft_key(module, "lora_B.weight")] = sample_tensor({sh.out, 4}, seed++);
      if (method == "dora") s.tensors[peft_key(module, "lora_magnitude_vector")] = sample_tensor({sh.out}, seed++);
    }
  return s;
}

void compare_adapters(const AdapterState& got, const AdapterState& want) {
  QCOMPARE(got.config.method, want.config.method);
  QCOMPARE(got.config.r, want.config.r);
  QCOMPARE(got.config.alpha, want.config.alpha);
  QCOMPARE(got.config.dropout, want.config.dropout);
  QCOMPARE(got.config.use_rslora, want.config.use_rslora);
  QCOMPARE(int(got.config.init), int(want.config.init));
  QVERIFY(got.config.targets == want.config.targets);
  QCOMPARE(got.base_model, want.base_model);
  QCOMPARE(got.base_fingerprint, want.base_fingerprint);
  QVERIFY(got.model == want.model);
  QCOMPARE(got.tensors.size(), want.tensors.size());
  for (const auto& [key, t] : want.tensors) {
    const auto it = got.tensors.find(key);
    QVERIFY2(it != got.tensors.end(), key.c_str());
    QVERIFY(it->second.shape == t.shape);
    QCOMPARE(it->second.values.size(), t.values.size());
    QVERIFY2(std::memcmp(it->second.values.data(), t.values.data(), t.values.size() * sizeof(float)) == 0,
             key.c_str());
  }
}

template <class F>
QString store_error_of(F&& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return QString::fromStdString(e.what());
  }
  return {};
}

// The writer of the kill tests: records a run through StoreSink, one step
// every 5 ms, and prints each step number once the sink has taken it. Then,
// by `mode`: "steps" goes on; "evaluation" prints "evaluating" and takes no
// step for a long while, as a long evaluation does; "end" records the run's
// end with its adapter (the parent arms LWB_KILL_POINT inside that
// transaction).
int kill_child(const std::string& mode, const char* file) {
  Store store(file);
  StoreSink::Options options;
  options.adapter = [](std::int64_t id, const RunResult&) {
    return std::optional<KeptAdapter>(KeptAdapter{"killed-run" + std::to_string(id), sample_adapter("lora", 9),
                                                  "reverse"});
  };
  StoreSink sink(store, options);
  sink.on_start(sample_info(sample_config("killed")));
  const std::int64_t steps = mode == "steps" ? 200000 : 300;
  for (std::int64_t s = 1; s <= steps; ++s) {
    sink.on_step(sample_step(s));
    std::printf("%lld\n", static_cast<long long>(s));
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::printf("%s\n", mode.c_str());
  std::fflush(stdout);
  if (mode == "evaluation") std::this_thread::sleep_for(std::chrono::seconds(60));
  RunResult r;
  r.status = RunStatus::Finished;
  r.steps_done = steps;
  sink.on_finish(r);
  return 0;
}

// Queues a run and keeps its lease for as long as it lives, as a run waiting
// for its base to be pretrained does; prints the run id.
int lease_child(const char* file) {
  Store store(file);
  const std::int64_t run = store.queue_run(store.create_experiment("leased", sample_config("leased")), "cpu");
  StoreSink sink(store, run);
  std::printf("%lld\n", static_cast<long long>(run));
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::minutes(10));
  return 0;
}

// What a sink warned about (from its writer thread too).
class Warnings {
 public:
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& w) {
      std::lock_guard lock(mutex_);
      lines_.push_back(w);
    };
  }
  bool said(const std::string& part) {
    std::lock_guard lock(mutex_);
    return std::any_of(lines_.begin(), lines_.end(),
                       [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

template <class F>
double seconds_of(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

class TestStore : public QObject {
  Q_OBJECT

  QTemporaryDir dir_;
  fs::path db(const char* name) const { return fs::path(dir_.path().toStdString()) / name; }

 private slots:
  void defaultPathFollowsEnvironment() {
    const QByteArray saved_db = qgetenv("LWB_DB"), saved_data = qgetenv("LWB_DATA_DIR");
    qputenv("LWB_DB", "/somewhere/else.sqlite3");
    QCOMPARE(Store::default_path(), fs::path("/somewhere/else.sqlite3"));
    qunsetenv("LWB_DB");
    qputenv("LWB_DATA_DIR", "/data/lwb");
    QCOMPARE(Store::default_path(), fs::path("/data/lwb/workbench.sqlite3"));
    qputenv("LWB_DB", saved_db);
    qputenv("LWB_DATA_DIR", saved_data);
  }

  void createsFolderAndCurrentSchema() {
    const fs::path file = db("nested/deeper/w.sqlite3");
    { Store store(file); }
    RawDb raw(file);
    QCOMPARE(raw.integer("PRAGMA user_version"), std::int64_t(Store::kSchemaVersion));
    QCOMPARE(raw.text("PRAGMA journal_mode"), std::string("wal"));
  }

  void runRoundTrip() {
    Store store(db("runs.sqlite3"));
    const ExperimentConfig config = sample_config("exp one");
    const std::int64_t exp = store.create_experiment("exp one", config);
    const std::int64_t run = store.queue_run(exp, "cuda:0");
    QCOMPARE(store.list_runs().at(0).status, std::string("queued"));

    RunResult result;
    {
      StoreSink sink(store, run);
      sink.on_start(sample_info(config));
      for (std::int64_t s = 1; s <= 60; ++s) sink.on_step(sample_step(s));
      result.status = RunStatus::Stopped;
      result.steps_done = 60;
      result.final_train_loss = sample_step(60).loss;
      result.final_eval = EvalResult{0.75, 0.5, 200};
      result.tokens_per_s = 1234.5;
      result.memory = sample_snapshot(3);
      result.summary.push_back({"adalora.ranks", R"({"layer0.q":3})"});
      sink.on_finish(result);
    }

    const std::vector<RunRow> runs = store.list_runs();
    QCOMPARE(runs.size(), std::size_t(1));
    const RunRow& r = runs[0];
    QCOMPARE(r.id, run);
    QCOMPARE(r.experiment_id, exp);
    QCOMPARE(r.experiment, std::string("exp one"));
    QCOMPARE(r.method, std::string("dora"));
    QCOMPARE(r.task, std::string("reverse"));
    QCOMPARE(r.status, std::string("stopped"));
    QCOMPARE(r.device, std::string("cuda:0"));
    QVERIFY(!r.started.empty() && !r.ended.empty());
    QCOMPARE(r.steps_done, std::int64_t(60));
    QCOMPARE(r.total_steps, std::int64_t(120));
    QCOMPARE(r.final_train_loss, result.final_train_loss);
    QCOMPARE(r.final_eval_loss, 0.75);
    QCOMPARE(r.final_accuracy, 0.5);
    QCOMPARE(r.tokens_per_s, 1234.5);
    QCOMPARE(r.peak_bytes, std::int64_t(result.memory.peak_total));
    QVERIFY(r.error.empty());

    const RunDetail detail = store.get_run(run);
    QCOMPARE(ExperimentConfig::from_json(detail.config_json, "test").to_json(), config.to_json());
    QVERIFY(detail.run_info_json.find("\"trainable_params\":12345") != std::string::npos);
    QVERIFY(detail.summary_json.find("adalora.ranks") != std::string::npos);

    const std::vector<MetricRow> metrics = store.run_metrics(run);
    QCOMPARE(metrics.size(), std::size_t(60));
    for (const MetricRow& m : metrics) {
      StepEvent e = sample_step(m.step);
      // The evaluation the stopped run ended with joins its last step.
      if (m.step == 60) e.eval = EvalResult{0.75, 0.5, 200};
      QVERIFY(same(m.loss, e.loss) && same(m.lr, e.lr) && same(m.grad_norm, e.grad_norm));
      QVERIFY(same(m.tokens_per_s, e.tokens_per_s) && same(m.elapsed_s, e.elapsed_s));
      QVERIFY(same(m.eval_loss, e.eval ? e.eval->loss : NAN));
      QVERIFY(same(m.accuracy, e.eval ? e.eval->accuracy : NAN));
    }
    QVERIFY(std::isnan(metrics[2].grad_norm));
    for (const MetricRow& m : metrics) {
      const StepEvent e = sample_step(m.step);
      QCOMPARE(m.layer_grad_norms.size(), e.layer_grad_norms.size());
      for (std::size_t l = 0; l < e.layer_grad_norms.size(); ++l)
        QVERIFY(same(m.layer_grad_norms[l], e.layer_grad_norms[l]));
    }

    const std::vector<MemorySnapshotRow> snaps = store.run_memory_snapshots(run);
    QCOMPARE(snaps.size(), std::size_t(3));
    QCOMPARE(snaps[0].step, std::int64_t(0));  // the ledger at the start
    QVERIFY(same_snapshot(snaps[0].snapshot, sample_snapshot(1)));
    QCOMPARE(snaps[2].step, std::int64_t(30));
    QVERIFY(same_snapshot(snaps[2].snapshot, sample_snapshot(30)));

    const std::vector<VariantEventRow> events = store.run_variant_events(run);
    QCOMPARE(events.size(), std::size_t(1));
    QCOMPARE(events[0].step, std::int64_t(10));
    QCOMPARE(events[0].event.kind, std::string("relora.reset"));
    QCOMPARE(events[0].event.payload_json, std::string(R"({"step":10,"merged":7})"));

    QVERIFY(store_error_of([&] { store.get_run(999); }).contains("there is no run with id 999"));
    QVERIFY(store_error_of([&] { store.start_run(run, sample_info(config)); }).contains("not queued"));
  }

  // Steps are committed on a timer (at most about half a second after they
  // were taken), whether or not more steps come: a long evaluation must not
  // hold the steps before it in memory.
  void sinkCommitsOnATimer() {
    const fs::path file = db("batch.sqlite3");
    Store store(file);
    RawDb reader(file);
    StoreSink sink(store);
    sink.on_start(sample_info(sample_config("batched")));
    for (std::int64_t s = 1; s <= 10; ++s) sink.on_step(sample_step(s));
    QCOMPARE(reader.integer("SELECT count(*) FROM metrics"), std::int64_t(0));
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // no step comes meanwhile
    QCOMPARE(reader.integer("SELECT count(*) FROM metrics"), std::int64_t(10));
    QCOMPARE(reader.integer("SELECT steps_done FROM runs"), std::int64_t(10));
    sink.on_step(sample_step(11));
    RunResult r;
    r.status = RunStatus::Finished;
    r.steps_done = 11;
    sink.on_finish(r);
    QCOMPARE(reader.integer("SELECT count(*) FROM metrics"), std::int64_t(11));
    QCOMPARE(reader.text("SELECT status FROM runs"), std::string("finished"));
  }

  // A sink dropped without on_finish leaves no run "running" in a process
  // that lives on.
  void abandonedSinkMarksRunFailed() {
    Store store(db("abandoned.sqlite3"));
    std::int64_t run = 0;
    {
      StoreSink sink(store);
      sink.on_start(sample_info(sample_config("abandoned")));
      sink.on_step(sample_step(1));
      sink.on_step(sample_step(2));
      run = sink.run_id();
    }
    const RunRow r = store.get_run(run).row;
    QCOMPARE(r.status, std::string("failed"));
    QCOMPARE(r.steps_done, std::int64_t(2));
    QVERIFY(!r.error.empty());
    QCOMPARE(store.run_metrics(run).size(), std::size_t(2));
  }

  void adapterRoundTrip() {
    Store store(db("adapters.sqlite3"));
    for (const char* m : {"lora", "dora", "relora"}) {
      const AdapterState a = sample_adapter(m, 7);
      const std::string name = std::string("adapter-") + m;
      const std::int64_t id = store.save_adapter(name, std::nullopt, a, "uppercase", 0.25, NAN);
      compare_adapters(store.load_adapter(id), a);
      QCOMPARE(store.find_adapter(name), std::optional<std::int64_t>(id));
    }
    const std::vector<AdapterRow> rows = store.list_adapters();
    QCOMPARE(rows.size(), std::size_t(3));
    const AdapterRow& lora = rows[2];  // newest first
    QCOMPARE(lora.name, std::string("adapter-lora"));
    QCOMPARE(lora.variant, std::string("rslora"));
    QCOMPARE(lora.rank, 4);
    QCOMPARE(lora.targets, std::string("q,v,down"));
    QCOMPARE(lora.base_model, std::string("lora-workbench/tiny"));
    QCOMPARE(lora.base_fingerprint, std::string("fedcba9876543210"));
    QCOMPARE(lora.task, std::string("uppercase"));
    QCOMPARE(lora.eval_loss, 0.25);
    QVERIFY(std::isnan(lora.eval_accuracy));
    QVERIFY(!lora.run_id);
    QCOMPARE(lora.bytes, std::int64_t(io::peft_safetensors_bytes(sample_adapter("lora", 7)).size()));
    QVERIFY(!store.find_adapter("nope"));

    const QString dup = store_error_of(
        [&] { store.save_adapter("adapter-lora", std::nullopt, sample_adapter("lora", 1), "", NAN, NAN); });
    QVERIFY2(dup.contains("an adapter named \"adapter-lora\" already exists"), qPrintable(dup));
    QCOMPARE(store.list_adapters().size(), std::size_t(3));
  }

  void compositionRoundTripAndRestrict() {
    Store store(db("compose.sqlite3"));
    const std::int64_t a = store.save_adapter("a", std::nullopt, sample_adapter("lora", 1), "t1", NAN, NAN);
    const std::int64_t b = store.save_adapter("b", std::nullopt, sample_adapter("lora", 2), "t2", NAN, NAN);
    Composition c;
    c.name = "hub";
    c.mode = "lorahub";
    c.optimizer = "cobyla";
    c.base_fingerprint = "fedcba9876543210";
    c.target_task = "t3";
    c.scores_json = R"({"before":1.5,"after":0.75})";
    c.canvas_json = R"({"zoom":1.25})";
    c.members = {{a, 0.5, 10, 20}, {b, -0.25, 30.5, 40}};
    c.trials = {{0, {0, 0}, 2.0}, {1, {0.5, NAN}, NAN}, {2, {0.5, -0.25}, 0.75}};
    const std::int64_t id = store.save_composition(c);

    Composition got = store.load_composition(id);
    QCOMPARE(got.id, id);
    QCOMPARE(got.name, c.name);
    QCOMPARE(got.mode, c.mode);
    QCOMPARE(got.optimizer, c.optimizer);
    QCOMPARE(got.base_fingerprint, c.base_fingerprint);
    QCOMPARE(got.target_task, c.target_task);
    QCOMPARE(got.scores_json, c.scores_json);
    QCOMPARE(got.canvas_json, c.canvas_json);
    QVERIFY(!got.created.empty());
    QCOMPARE(got.members.size(), std::size_t(2));
    for (std::size_t i = 0; i < 2; ++i) {
      QCOMPARE(got.members[i].adapter_id, c.members[i].adapter_id);
      QCOMPARE(got.members[i].weight, c.members[i].weight);
      QCOMPARE(got.members[i].x, c.members[i].x);
      QCOMPARE(got.members[i].y, c.members[i].y);
    }
    QCOMPARE(got.trials.size(), std::size_t(3));
    for (std::size_t i = 0; i < 3; ++i) {
      QCOMPARE(got.trials[i].iteration, c.trials[i].iteration);
      QCOMPARE(got.trials[i].weights.size(), std::size_t(2));
      for (std::size_t k = 0; k < 2; ++k) QVERIFY(same(got.trials[i].weights[k], c.trials[i].weights[k]));
      QVERIFY(same(got.trials[i].objective, c.trials[i].objective));
    }
    const std::vector<CompositionRow> list = store.list_compositions();
    QCOMPARE(list.size(), std::size_t(1));
    QCOMPARE(list[0].members, std::int64_t(2));
    QCOMPARE(list[0].trials, std::int64_t(3));
    QCOMPARE(list[0].best_objective, 0.75);

    // Saving again with the id replaces members and trials.
    got.members = {{b, 1.0, 0, 0}};
    got.trials.clear();
    QCOMPARE(store.save_composition(got), id);
    QCOMPARE(store.load_composition(id).members.size(), std::size_t(1));
    QCOMPARE(store.list_compositions()[0].trials, std::int64_t(0));

    // b is used: refused, nothing changes. a is free again: deleted.
    const QString refused = store_error_of([&] { store.delete_adapter(b); });
    QVERIFY2(refused.contains("adapter \"b\" is used by composition(s) \"hub\""), qPrintable(refused));
    QCOMPARE(store.list_adapters().size(), std::size_t(2));
    QCOMPARE(store.load_composition(id).members.at(0).adapter_id, b);
    store.delete_adapter(a);
    QCOMPARE(store.list_adapters().size(), std::size_t(1));

    Composition other = c;
    other.id = 0;
    other.members = {{a, 1, 0, 0}};
    QVERIFY(store_error_of([&] { store.save_composition(other); }).contains("already exists"));
    other.name = "other";
    QVERIFY(store_error_of([&] { store.save_composition(other); }).contains("not in the library"));

    store.delete_composition(id);
    QVERIFY(store.list_compositions().empty());
    store.delete_adapter(b);
    QVERIFY(store.list_adapters().empty());
  }

  void deletingRunKeepsItsAdapters() {
    const fs::path file = db("delete-run.sqlite3");
    Store store(file);
    const ExperimentConfig config = sample_config("del");
    const std::int64_t run = store.create_run(store.create_experiment("del", config), "cpu", sample_info(config));
    std::vector<StepEvent> steps;
    for (std::int64_t s = 1; s <= 30; ++s) steps.push_back(sample_step(s));
    store.append_steps(run, steps);
    const std::int64_t adapter =
        store.save_adapter("kept", run, sample_adapter("lora", 3), "reverse", 0.5, 0.25);
    QCOMPARE(store.list_adapters().at(0).run_id, std::optional<std::int64_t>(run));

    QVERIFY(store_error_of([&] { store.delete_run(run); }).contains("is still running"));
    RunResult r;
    r.status = RunStatus::Finished;
    store.finish_run(run, r);
    store.delete_run(run);

    QVERIFY(store.list_runs().empty());
    RawDb raw(file);
    for (const char* table : {"metrics", "memory_snapshots", "variant_events"})
      QCOMPARE(raw.integer(std::string("SELECT count(*) FROM ") + table), std::int64_t(0));
    const std::vector<AdapterRow> adapters = store.list_adapters();
    QCOMPARE(adapters.size(), std::size_t(1));
    QVERIFY(!adapters[0].run_id);
    compare_adapters(store.load_adapter(adapter), sample_adapter("lora", 3));
    QVERIFY(store_error_of([&] { store.delete_run(run); }).contains("there is no run"));
  }

  // Predictions keep every row, belong to their run (deleted with it) and
  // outlive their adapter (its id cleared).
  void predictionsRoundTrip() {
    const fs::path file = db("predictions.sqlite3");
    Store store(file);
    const ExperimentConfig config = sample_config("pred");
    const std::int64_t run = store.create_run(store.create_experiment("pred", config), "cpu", sample_info(config));
    const std::int64_t adapter = store.save_adapter("scored", run, sample_adapter("lora", 4), "reverse", NAN, NAN);
    PredictionSet p;
    p.run_id = run;
    p.adapter_id = adapter;
    p.adapter = "scored";
    p.data = "/data/held \"out\".jsonl";
    p.rows = {{"a prompt", "ref", "ref", 0.5, true, 1.0}, {"b", "x y", "x z", NAN, false, 0.5}};
    const std::int64_t id = store.save_predictions(p);
    const PredictionSet back = store.load_predictions(id);
    QCOMPARE(back.run_id, std::optional<std::int64_t>(run));
    QCOMPARE(back.adapter_id, std::optional<std::int64_t>(adapter));
    QCOMPARE(back.data, p.data);
    QVERIFY(!back.created.empty());
    QCOMPARE(back.rows.size(), std::size_t(2));
    QCOMPARE(back.rows[0].prompt, std::string("a prompt"));
    QCOMPARE(back.rows[1].prediction, std::string("x z"));
    QVERIFY(back.rows[0].exact && !back.rows[1].exact);
    QVERIFY(std::isnan(back.rows[1].loss));
    QCOMPARE(back.summary.examples, std::int64_t(2));
    QCOMPARE(back.summary.exact_match, 0.5);
    QCOMPARE(back.summary.rouge_l, 0.75);
    QVERIFY(std::isnan(back.summary.loss));  // one row has no loss
    QCOMPARE(store.list_predictions(run).size(), std::size_t(1));
    QVERIFY(store.list_predictions(run + 1).empty());
    QVERIFY(store.list_predictions().at(0).rows.empty());

    PredictionSet stray = p;
    stray.run_id = 999;
    QVERIFY(store_error_of([&] { store.save_predictions(stray); }).contains("there is no run with id 999"));
    QCOMPARE(store.list_predictions().size(), std::size_t(1));
    QVERIFY(store_error_of([&] { store.load_predictions(id + 7); }).contains("there is no prediction set"));

    store.delete_adapter(adapter);
    QVERIFY(!store.load_predictions(id).adapter_id);
    RunResult r;
    r.status = RunStatus::Finished;
    store.finish_run(run, r);
    store.delete_run(run);
    QVERIFY(store.list_predictions().empty());
    RawDb raw(file);
    QCOMPARE(raw.integer("SELECT count(*) FROM prediction_rows"), std::int64_t(0));
  }

  void namesAreData() {
    const fs::path file = db("hostile.sqlite3");
    const std::vector<std::string> names = {"'); DROP TABLE runs;--", "a\"b;c", "Robert'); DELETE FROM adapters;--",
                                            "x' OR '1'='1", "semi;colon -- comment /* c */"};
    Store store(file);
    for (const std::string& n : names) {
      ExperimentConfig config = sample_config(n);
      config.data.task = n;
      const std::int64_t run = store.create_run(store.create_experiment(n, config), n, sample_info(config));
      const std::int64_t adapter = store.save_adapter(n, run, sample_adapter("lora", 5), n, NAN, NAN);
      Composition c;
      c.name = n;
      c.mode = n;
      c.target_task = n;
      c.members = {{adapter, 1, 0, 0}};
      store.save_composition(c);
      QCOMPARE(store.find_adapter(n), std::optional<std::int64_t>(adapter));
    }
    const std::vector<RunRow> runs = store.list_runs();
    const std::vector<AdapterRow> adapters = store.list_adapters();
    const std::vector<CompositionRow> comps = store.list_compositions();
    QCOMPARE(runs.size(), names.size());
    QCOMPARE(adapters.size(), names.size());
    QCOMPARE(comps.size(), names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::string& n = names[names.size() - 1 - i];  // newest first
      QCOMPARE(runs[i].experiment, n);
      QCOMPARE(runs[i].device, n);
      QCOMPARE(runs[i].task, n);
      QCOMPARE(adapters[i].name, n);
      QCOMPARE(adapters[i].task, n);
      QCOMPARE(comps[i].name, n);
      QCOMPARE(comps[i].target_task, n);
    }
    RawDb raw(file);
    // Schema 3's nine tables, the comparisons' three, the library jobs' two, the predictions' two and the
    // samples during training.
    QCOMPARE(raw.integer("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"), std::int64_t(17));
  }

  // A resumed run names its parent, so its curve continues the parent's; the
  // evaluation a stopped run ends with joins its last step's metrics.
  void resumedRunsContinueTheirParents() {
    Store store(db("resume.sqlite3"));
    const ExperimentConfig config = sample_config("resumed");
    const std::int64_t e = store.create_experiment(config.name, config);
    const std::int64_t first = store.create_run(e, "cpu", sample_info(config));
    std::vector<StepEvent> steps;
    for (int s = 1; s <= 7; ++s) steps.push_back(sample_step(s));
    store.append_steps(first, steps);
    RunResult stopped;
    stopped.status = RunStatus::Stopped;
    stopped.steps_done = 7;
    stopped.final_eval = EvalResult{0.75, 0.5, 20};
    store.finish_run(first, stopped);
    const std::vector<MetricRow> m = store.run_metrics(first);
    QCOMPARE(m.back().step, std::int64_t(7));
    QCOMPARE(m.back().eval_loss, 0.75);
    QCOMPARE(m.back().accuracy, 0.5);
    QVERIFY(std::isnan(m.front().eval_loss));

    const std::int64_t second = store.queue_run(e, "cpu", first);
    store.start_run(second, sample_info(config));
    store.finish_run(second, stopped);
    const std::int64_t third = store.queue_run(e, "cpu", second);
    store.start_run(third, sample_info(config));
    QCOMPARE(store.get_run(third).row.parent_run_id, std::optional<std::int64_t>(second));
    QCOMPARE(store.run_ancestry(third), (std::vector<std::int64_t>{third, second, first}));
    QVERIFY(store_error_of([&] { store.queue_run(e, "cpu", 999); }).contains("there is no run with id 999"));
    // Deleting the middle run breaks the chain there; nothing else goes.
    store.delete_run(second);
    QCOMPARE(store.get_run(third).row.parent_run_id, std::optional<std::int64_t>());
    QCOMPARE(store.run_ancestry(third), std::vector<std::int64_t>{third});
    QCOMPARE(store.run_metrics(first).size(), std::size_t(7));
  }

  // A comparison's rows hold its measurements: deleting a run from the
  // history keeps them (without the run's id); deleting the comparison
  // keeps the runs.
  void comparisonRowsOutliveTheirRuns() {
    const fs::path file = db("comparisons.sqlite3");
    Store store(file);
    const ExperimentConfig config = sample_config("compared");
    const std::int64_t run = store.create_run(store.create_experiment("compared", config), "cpu", sample_info(config));
    RunResult result;
    result.status = RunStatus::Finished;
    store.finish_run(run, result);
    QVERIFY(environment_from_json(store.get_run(run).environment_json, "run").blas_core ==
            current_environment("cpu", 2).blas_core);

    const std::int64_t id = store.create_comparison("tiny-methods", "compare", R"({"name": "x"})");
    ComparisonSample s;
    s.run_id = run;
    s.arm = "lora";
    s.phase = "lr-pick";
    s.seed = 18446744073709551615ull;  // every seed fits
    s.lr = 3e-3;
    s.status = "finished";
    s.accuracy = 0.5;
    s.eval_loss = 0.25;
    s.measures["peak.activations"] = 1024;
    s.measures["rank.step100.mean"] = NAN;
    s.environment = current_environment("cpu", 2);
    const std::int64_t row = store.add_comparison_run(id, s);
    s.phase = "seed";
    s.run_id = 999;  // not in the history: recorded without a run
    store.add_comparison_run(id, s);
    s.phase = "final";
    QVERIFY(store_error_of([&] { store.add_comparison_run(id, s); }).contains("lr-pick or seed"));
    s.phase = "seed";
    QVERIFY(store_error_of([&] { store.add_comparison_run(id + 1, s); }).contains("no comparison"));

    const ComparisonFile png{"quality.png", {0x89, 'P', 'N', 'G', 0, 1}};
    store.finish_comparison(id, "finished", "# report\n", std::span(&png, 1));
    QVERIFY(store_error_of([&] { store.finish_comparison(id, "done", "", {}); }).contains("finished, stopped or failed"));

    store.delete_run(run);
    const std::vector<ComparisonSample> rows = store.comparison_runs(id);
    QCOMPARE(rows.size(), std::size_t(2));
    QCOMPARE(rows[0].id, row);
    QVERIFY(!rows[0].run_id.has_value());
    QVERIFY(!rows[1].run_id.has_value());
    QCOMPARE(rows[0].phase, std::string("lr-pick"));
    QCOMPARE(rows[0].seed, s.seed);
    QCOMPARE(rows[0].accuracy, 0.5);
    QCOMPARE(rows[0].measures.at("peak.activations"), 1024.0);
    QVERIFY(std::isnan(rows[0].measures.at("rank.step100.mean")));
    QCOMPARE(rows[0].environment.blas_core, s.environment.blas_core);
    const ComparisonRecord c = store.get_comparison(id);
    QCOMPARE(c.status, std::string("finished"));
    QCOMPARE(c.report_markdown, std::string("# report\n"));
    QCOMPARE(c.runs, std::int64_t(2));
    QCOMPARE(store.list_comparisons().size(), std::size_t(1));
    QCOMPARE(store.comparison_files(id).at(0).bytes, png.bytes);

    const std::int64_t kept = store.create_run(store.create_experiment("kept", config), "cpu", sample_info(config));
    s.phase = "seed";
    s.run_id = kept;
    store.add_comparison_run(id, s);
    store.delete_comparison(id);
    QVERIFY(store.list_comparisons().empty());
    QCOMPARE(store.get_run(kept).row.id, kept);
    RawDb raw(file);
    QCOMPARE(raw.integer("SELECT count(*) FROM comparison_runs"), std::int64_t(0));
    QCOMPARE(raw.integer("SELECT count(*) FROM comparison_files"), std::int64_t(0));
  }

  void migratesFromVersion1() {
    const fs::path file = db("v1.sqlite3");
    {
      RawDb raw(file);
      raw.exec(kSchemaV1);
      const std::string config = sample_config("old").to_json();
      std::string quoted = config;
      for (std::size_t p = 0; (p = quoted.find('\'', p)) != std::string::npos; p += 2) quoted.insert(p, "'");
      raw.exec("INSERT INTO experiments VALUES (1, 'old', '" + quoted + "', '2024-01-01T00:00:00Z')");
      raw.exec(
          "INSERT INTO runs (id, experiment_id, status, device, started, ended, steps_done, final_train_loss, "
          "final_eval_loss, final_accuracy, tokens_per_s, peak_bytes) VALUES "
          "(1, 1, 'finished', 'cpu', '2024-01-01T00:00:00Z', '2024-01-01T00:10:00Z', 2, 0.5, 0.75, 0.25, 900, 4096)");
      raw.exec("INSERT INTO runs (id, experiment_id, status, device, started, steps_done) VALUES "
               "(2, 1, 'running', 'cpu', '2024-01-02T00:00:00Z', 1)");
      raw.exec("INSERT INTO metrics (run_id, step, loss, lr) VALUES (1, 1, 2.5, 0.001), (1, 2, 2.25, 0.001), "
               "(2, 1, 3.5, 0.002)");
      raw.exec("INSERT INTO variant_events (run_id, step, kind, payload_json) VALUES (1, 2, 'k', '{}')");
      const AdapterState a = sample_adapter("lora", 11);
      raw.insert_blob(
          "INSERT INTO adapters (id, run_id, name, variant, rank, targets, base_model, base_fingerprint, "
          "peft_config_json, safetensors, created, task) VALUES (1, 1, 'old-adapter', 'rslora', 4, 'q,v,down', "
          "'lora-workbench/tiny', 'fedcba9876543210', '" + io::peft_config_json(a) + "', ?, "
          "'2024-01-01T00:10:00Z', 'reverse')",
          io::peft_safetensors_bytes(a));
      raw.exec("INSERT INTO compositions VALUES (1, 'old-hub', 'lorahub', 'cobyla', 'f', 't', "
               "'2024-01-03T00:00:00Z', '{}', '{}')");
      raw.exec("INSERT INTO composition_members VALUES (1, 0, 1, 0.5, 1, 2)");
      raw.exec("INSERT INTO composition_trials VALUES (1, 0, '[0.5]', 1.25)");
    }

    Store store(file);
    QCOMPARE(store.interrupted_runs(), 1);  // run 2 has no owner that could finish it
    {
      RawDb raw(file);
      QCOMPARE(raw.integer("PRAGMA user_version"), std::int64_t(Store::kSchemaVersion));
      QCOMPARE(raw.integer("SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'pid'"), std::int64_t(1));
      QCOMPARE(raw.integer("SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'heartbeat'"),
               std::int64_t(1));
      QCOMPARE(raw.integer("SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'environment_json'"),
               std::int64_t(1));
      QCOMPARE(raw.integer("SELECT count(*) FROM sqlite_schema WHERE name IN ('comparisons', 'comparison_runs', "
                           "'comparison_files')"),
               std::int64_t(3));
      QCOMPARE(raw.text("PRAGMA integrity_check"), std::string("ok"));
      QCOMPARE(raw.text("PRAGMA foreign_key_check"), std::string());  // the rebuilt runs table kept every reference
      QVERIFY(raw.text("SELECT sql FROM sqlite_schema WHERE name = 'metrics'").find("REFERENCES runs(id)") !=
              std::string::npos);
    }
    const std::vector<RunRow> runs = store.list_runs();
    QCOMPARE(runs.size(), std::size_t(2));
    QCOMPARE(runs[1].status, std::string("finished"));
    QCOMPARE(runs[1].final_eval_loss, 0.75);
    QCOMPARE(runs[1].peak_bytes, std::int64_t(4096));
    QCOMPARE(store.get_run(1).environment_json, std::string());  // recorded before runs had one
    QCOMPARE(runs[0].status, std::string("failed"));
    QCOMPARE(runs[0].error, std::string(kInterrupted));
    QCOMPARE(store.run_metrics(1).size(), std::size_t(2));
    QCOMPARE(store.run_metrics(2).size(), std::size_t(1));
    QCOMPARE(store.run_variant_events(1).size(), std::size_t(1));
    compare_adapters(store.load_adapter(1), sample_adapter("lora", 11));
    const Composition c = store.load_composition(1);
    QCOMPARE(c.members.size(), std::size_t(1));
    QCOMPARE(c.trials.at(0).objective, 1.25);
    QVERIFY(store_error_of([&] { store.delete_adapter(1); }).contains("old-hub"));
  }

  void refusesNewerSchemaUntouched_data() {
    QTest::addColumn<bool>("wal");
    QTest::newRow("rollback journal") << false;
    // The newer program left commits in its write-ahead log: they must stay
    // there, not be checkpointed into the file by this one.
    QTest::newRow("WAL with pending frames") << true;
  }

  void refusesNewerSchemaUntouched() {
    QFETCH(bool, wal);
    const fs::path file = db(wal ? "newer-wal.sqlite3" : "newer.sqlite3");
    const fs::path wal_file = file.string() + "-wal";
    {
      RawDb raw(file);
      if (wal) raw.exec("PRAGMA journal_mode = WAL");
      raw.exec("CREATE TABLE future (x TEXT); INSERT INTO future VALUES ('kept');");
      raw.exec("PRAGMA user_version = " + std::to_string(Store::kSchemaVersion + 1));
      if (wal) raw.keep_wal_on_close();
    }
    QCOMPARE(fs::exists(wal_file), wal);
    const std::vector<char> before = file_bytes(file), wal_before = file_bytes(wal_file);
    const QString msg = store_error_of([&] { Store store(file); });
    const QString want = QString::fromStdString(file.string()) +
                         QString(": database schema version %1 is newer than this program (%2); use a newer lora-workbench")
                             .arg(Store::kSchemaVersion + 1)
                             .arg(Store::kSchemaVersion);
    QCOMPARE(msg, want);
    QVERIFY(file_bytes(file) == before);
    QCOMPARE(fs::exists(wal_file), wal);
    QVERIFY(file_bytes(wal_file) == wal_before);
  }

  void refusesFileThatIsNotADatabase() {
    const fs::path file = db("notes.sqlite3");
    {
      std::ofstream out(file, std::ios::binary);
      for (int i = 0; i < 200; ++i) out << "these are my notes, not a database\n";
    }
    const std::vector<char> before = file_bytes(file);
    const QString msg = store_error_of([&] { Store store(file); });
    QVERIFY2(msg.startsWith(QString::fromStdString(file.string()) + ": not a lora-workbench database"), qPrintable(msg));
    QVERIFY(file_bytes(file) == before);

    // Another program's SQLite file is not taken over either.
    const fs::path foreign = db("browser-history.sqlite");
    { RawDb(foreign).exec("CREATE TABLE visits (url TEXT); INSERT INTO visits VALUES ('https://example.org');"); }
    const std::vector<char> foreign_before = file_bytes(foreign);
    const QString foreign_msg = store_error_of([&] { Store store(foreign); });
    QVERIFY2(foreign_msg.contains("a SQLite database of another program"), qPrintable(foreign_msg));
    QVERIFY(file_bytes(foreign) == foreign_before);
  }

  void lockedDatabaseIsReported() {
    const fs::path file = db("locked.sqlite3");
    { Store store(file); }
    RawDb other(file);
    other.exec("BEGIN EXCLUSIVE");
    other.exec("INSERT INTO experiments (name, config_json, created) VALUES ('other', '{}', 'now')");
    Store store(file, std::chrono::milliseconds(200));  // reading works beside a writer (WAL)
    const QString msg = store_error_of([&] { store.create_experiment("mine", sample_config("mine")); });
    QVERIFY2(msg.contains("the database is locked by another process"), qPrintable(msg));
    QVERIFY(msg.startsWith(QString::fromStdString(file.string())));
    other.exec("ROLLBACK");
    store.create_experiment("mine", sample_config("mine"));
    QCOMPARE(other.integer("SELECT count(*) FROM experiments"), std::int64_t(1));
  }

  void marksInterruptedRunsOnOpen() {
    const fs::path file = db("interrupted.sqlite3");
    std::int64_t orphan = 0, dead_owner = 0, live = 0, queued = 0;
    Store first(file);
    const ExperimentConfig config = sample_config("i");
    const std::int64_t exp = first.create_experiment("i", config);
    orphan = first.create_run(exp, "cpu", sample_info(config));
    dead_owner = first.create_run(exp, "cpu", sample_info(config));
    live = first.create_run(exp, "cpu", sample_info(config));
    queued = first.queue_run(exp, "cpu");
    first.append_steps(orphan, std::vector<StepEvent>{sample_step(1), sample_step(2)});
    {
      RawDb raw(file);
      raw.exec("UPDATE runs SET pid = NULL, owner = NULL WHERE id = " + std::to_string(orphan));
      // Owned by a process of this machine and PID namespace that has ended:
      // seen at once, without waiting for the lease to lapse.
      raw.exec("UPDATE runs SET owner = substr(owner, 1, length(owner) - length(pid)) || '2147483000', "
               "pid = 2147483000 WHERE id IN (" + std::to_string(dead_owner) + ", " + std::to_string(queued) + ")");
    }
    // This process owns `live`: a second Store here (another thread, the GUI
    // beside a CLI run) must leave it alone.
    Store second(file);
    QCOMPARE(second.interrupted_runs(), 3);
    for (std::int64_t id : {orphan, dead_owner, queued}) {
      const RunRow r = second.get_run(id).row;
      QCOMPARE(r.status, std::string("failed"));
      QCOMPARE(r.error, std::string(kInterrupted));
      QVERIFY(!r.ended.empty());
    }
    QCOMPARE(second.get_run(live).row.status, std::string("running"));
    QCOMPARE(second.run_metrics(orphan).size(), std::size_t(2));
    QCOMPARE(Store(file).interrupted_runs(), 0);
  }

  // Killed while steps come, during a long evaluation (no step for seconds)
  // and inside the transaction that records the run's end with its adapter.
  // The bound: steps of the last second may be lost, older ones never.
  void killedWriterLosesAtMostASecond_data() {
    QTest::addColumn<QString>("mode");
    QTest::newRow("between steps") << "steps";
    QTest::newRow("during an evaluation") << "evaluation";
    QTest::newRow("while recording the end and the adapter") << "end";
  }

  void killedWriterLosesAtMostASecond() {
    QFETCH(QString, mode);
    const fs::path file = db(("killed-" + mode.toStdString() + ".sqlite3").c_str());
    QProcess child;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    if (mode == "end") env.insert("LWB_KILL_POINT", "store-finish-before-commit");
    child.setProcessEnvironment(env);
    child.start(QCoreApplication::applicationFilePath(),
                {"--store-kill-child", mode, QString::fromStdString(file.string())});
    QVERIFY(child.waitForStarted());
    QByteArray out;
    QElapsedTimer timer;
    timer.start();
    qint64 marker_at = -1;  // when the child said it reached its mode's kill point
    while (child.state() == QProcess::Running && timer.elapsed() < 30000) {
      child.waitForReadyRead(50);
      out += child.readAllStandardOutput();
      if (marker_at < 0 && out.contains(mode.toUtf8() + "\n")) marker_at = timer.elapsed();
      const bool due = mode == "steps" ? timer.elapsed() > 2500 : marker_at >= 0 && timer.elapsed() > marker_at + 2500;
      if (due && mode != "end") break;
    }
    if (child.state() == QProcess::Running) child.kill();  // SIGKILL: no destructors, no on_finish
    QVERIFY(child.state() == QProcess::NotRunning || child.waitForFinished(5000));
    out += child.readAllStandardOutput();
    QVERIFY2(child.exitStatus() == QProcess::CrashExit, child.readAllStandardError().constData());
    std::int64_t reported = 0;
    for (const QByteArray& line : out.split('\n')) reported = std::max<std::int64_t>(reported, line.toLongLong());

    std::int64_t stored = 0;
    {
      RawDb raw(file);
      QCOMPARE(raw.text("PRAGMA integrity_check"), std::string("ok"));
      stored = raw.integer("SELECT coalesce(max(step), 0) FROM metrics");
      QCOMPARE(raw.integer("SELECT count(*) FROM metrics"), stored);  // no gaps
      // Never "finished" without its adapter: the end and the adapter are one transaction.
      QCOMPARE(raw.integer("SELECT count(*) FROM adapters"), std::int64_t(0));
    }
    const std::int64_t lost = reported - stored, last_second = 1000 / 5;
    qInfo("killed %s: the child had taken %lld steps, the file holds steps 1..%lld: %lld lost (allowed: %lld, %s)",
          qPrintable(mode), static_cast<long long>(reported), static_cast<long long>(stored),
          static_cast<long long>(lost), static_cast<long long>(mode == "steps" ? last_second : 0),
          mode == "steps"        ? "the steps of the last second, 5 ms each"
          : mode == "evaluation" ? "no step was taken in its last second"
                                 : "every step is committed before the end's transaction");
    QVERIFY(stored > 0);
    QVERIFY(lost >= 0 && lost <= last_second);
    if (mode != "steps") QCOMPARE(lost, std::int64_t(0));

    Store store(file);
    QCOMPARE(store.interrupted_runs(), 1);
    const RunRow r = store.list_runs().at(0);
    QCOMPARE(r.status, std::string("failed"));
    QCOMPARE(r.error, std::string(kInterrupted));
    QCOMPARE(r.steps_done, stored);
    QCOMPARE(store.run_metrics(r.id).size(), std::size_t(stored));
  }

  // Another program holds the write lock for 8 s (longer than the busy
  // timeout) in the middle of a run: steps keep coming without waiting, wait
  // in memory, and everything, the adapter included, is stored once the
  // lock is gone.
  void aLockHeldForEightSecondsDelaysTheMetricsButLosesNothing() {
    const fs::path file = db("locked-run.sqlite3");
    Store store(file);
    Warnings warnings;
    StoreSink::Options options;
    options.warning = warnings.sink();
    options.adapter = [](std::int64_t, const RunResult&) {
      return std::optional<KeptAdapter>(KeptAdapter{"after-the-lock", sample_adapter("lora", 4), "reverse"});
    };
    StoreSink sink(store, options);
    sink.on_start(sample_info(sample_config("locked")));
    std::atomic<bool> locked{false};
    std::thread other([&] {
      RawDb raw(file);
      raw.exec("BEGIN IMMEDIATE");
      locked = true;
      std::this_thread::sleep_for(std::chrono::seconds(8));
      raw.exec("COMMIT");
      locked = false;
    });
    while (!locked) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    double slowest = 0;
    std::int64_t s = 0;
    const auto t0 = std::chrono::steady_clock::now();
    while (locked || std::chrono::steady_clock::now() - t0 < std::chrono::seconds(9)) {
      ++s;
      slowest = std::max(slowest, seconds_of([&] { sink.on_step(sample_step(s)); }));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    other.join();
    RunResult r;
    r.status = RunStatus::Finished;
    r.steps_done = s;
    sink.on_finish(r);
    qInfo("%lld steps under an 8 s lock; the slowest on_step took %.1f ms", static_cast<long long>(s), 1000 * slowest);
    QVERIFY2(sink.finish_error().empty(), sink.finish_error().c_str());
    QVERIFY(slowest < 0.1);
    QCOMPARE(store.run_metrics(sink.run_id()).size(), std::size_t(s));
    QCOMPARE(store.get_run(sink.run_id()).row.status, std::string("finished"));
    QCOMPARE(sink.adapter_name(), std::string("after-the-lock"));
    QVERIFY(store.find_adapter("after-the-lock"));
    QVERIFY(warnings.said("locked by another process"));
  }

  // The store's disk fills up during a run and frees again: the sink says
  // "disk is full", keeps the steps and stores them later; if it is still
  // full at the end, that is what the end reports.
  void aFullDiskIsReportedAsSuchAndLosesNothingOnceFreed() {
    test::install_fillable_disk();
    const fs::path file = db("full-disk.sqlite3");
    Store store(file);
    Warnings warnings;
    StoreSink::Options options;
    options.warning = warnings.sink();
    options.finish_patience = std::chrono::seconds(2);
    options.adapter = [](std::int64_t, const RunResult&) {
      return std::optional<KeptAdapter>(KeptAdapter{"after-the-full-disk", sample_adapter("lora", 6), "reverse"});
    };
    std::int64_t run = 0;
    {
      StoreSink sink(store, options);
      sink.on_start(sample_info(sample_config("full")));
      run = sink.run_id();
      test::g_disk_full = true;
      for (std::int64_t s = 1; s <= 200; ++s) {
        sink.on_step(sample_step(s));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(700));
      test::g_disk_full = false;
      RunResult r;
      r.status = RunStatus::Finished;
      r.steps_done = 200;
      sink.on_finish(r);
      QVERIFY2(sink.finish_error().empty(), sink.finish_error().c_str());
    }
    QCOMPARE(store.run_metrics(run).size(), std::size_t(200));
    QVERIFY(store.find_adapter("after-the-full-disk"));
    QVERIFY(warnings.said("the disk is full"));

    options.adapter = [](std::int64_t, const RunResult&) {
      return std::optional<KeptAdapter>(KeptAdapter{"never-stored", sample_adapter("lora", 7), "reverse"});
    };
    StoreSink still_full(store, options);
    still_full.on_start(sample_info(sample_config("still full")));
    still_full.on_step(sample_step(1));
    test::g_disk_full = true;
    RunResult r;
    r.status = RunStatus::Finished;
    r.steps_done = 1;
    still_full.on_finish(r);
    test::g_disk_full = false;
    QVERIFY2(QString::fromStdString(still_full.finish_error()).contains("the disk is full"),
             still_full.finish_error().c_str());
    QVERIFY(still_full.adapter_name().empty());
  }

  // Liveness by lease: a run whose owner renews its lease is live even when
  // its PID means nothing here (another PID namespace or host); a queued run
  // is live too; a run taken for dead while its owner was stuck comes back;
  // once the owner is gone and the lease lapsed, it is interrupted.
  void leasesNotPidsTellWhetherARunIsLive() {
    const fs::path file = db("lease.sqlite3");
    { Store create(file); }
    QProcess child;
    child.start(QCoreApplication::applicationFilePath(), {"--lease-child", QString::fromStdString(file.string())});
    QVERIFY(child.waitForStarted());
    QVERIFY(child.waitForReadyRead(10000));
    const std::string run = child.readAllStandardOutput().trimmed().toStdString();
    {
      RawDb raw(file);
      // As seen from another PID namespace: a pid that does not exist here.
      raw.exec("UPDATE runs SET pid = 2147483000 WHERE id = " + run);
      if (raw.integer("SELECT count(*) FROM pragma_table_info('runs') WHERE name = 'owner'") == 1)
        raw.exec("UPDATE runs SET owner = 'elsewhere 00000000-0000-0000-0000-000000000000 pid:[1] 2147483000' "
                 "WHERE id = " + run);
    }
    const std::int64_t id = std::stoll(run);
    {
      Store other(file);
      QCOMPARE(other.interrupted_runs(), 0);
      QCOMPARE(other.get_run(id).row.status, std::string("queued"));
      const QString refused = store_error_of([&] { other.delete_run(id); });
      QVERIFY2(refused.contains("is still queued"), qPrintable(refused));
    }
    // Stuck past its lease (a suspended laptop): taken for dead, then back.
    RawDb(file).exec("UPDATE runs SET heartbeat = heartbeat - 600 WHERE id = " + run);
    QCOMPARE(Store(file).interrupted_runs(), 1);
    QTRY_COMPARE_WITH_TIMEOUT(Store(file).get_run(id).row.status, std::string("queued"), 10000);

    child.kill();
    QVERIFY(child.waitForFinished(5000));
    RawDb(file).exec("UPDATE runs SET heartbeat = heartbeat - 600 WHERE id = " + run);
    Store after(file);
    QCOMPARE(after.interrupted_runs(), 1);
    QCOMPARE(after.get_run(id).row.error, std::string(kInterrupted));
    after.delete_run(id);
    QVERIFY(after.list_runs().empty());
  }

  // A live run deleted by another program (by hand, or a program that took
  // it for dead): training goes on with a warning, and its adapter is still
  // kept (without a run) instead of the run dying on a foreign key.
  void aRunDeletedUnderneathKeepsTraining() {
    const fs::path file = db("deleted-underneath.sqlite3");
    Store store(file);
    Warnings warnings;
    StoreSink::Options options;
    options.warning = warnings.sink();
    options.adapter = [](std::int64_t, const RunResult&) {
      return std::optional<KeptAdapter>(KeptAdapter{"orphaned", sample_adapter("lora", 5), "reverse"});
    };
    StoreSink sink(store, options);
    sink.on_start(sample_info(sample_config("deleted")));
    for (std::int64_t s = 1; s <= 20; ++s) sink.on_step(sample_step(s));
    RawDb(file).exec("PRAGMA foreign_keys = ON; DELETE FROM runs WHERE id = " + std::to_string(sink.run_id()));
    for (std::int64_t s = 21; s <= 200; ++s) {
      sink.on_step(sample_step(s));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    RunResult r;
    r.status = RunStatus::Finished;
    r.steps_done = 200;
    sink.on_finish(r);
    QVERIFY(warnings.said("was deleted or ended by another process"));
    QVERIFY2(sink.finish_error().empty(), sink.finish_error().c_str());
    QCOMPARE(sink.adapter_name(), std::string("orphaned"));
    QVERIFY(!store.list_adapters().at(0).run_id);
  }

  // metrics.jsonl: a whole line per step, written at once; a full disk is a
  // warning and a count of lost lines, not the end of the run.
  void metricsFileHoldsWholeLinesAndSurvivesAFullDisk() {
    const fs::path file = db("metrics.jsonl");
    {
      JsonlMetricsSink sink(file);
      for (std::int64_t s = 1; s <= 3; ++s) sink.on_step(sample_step(s));
      QCOMPARE(sink.lost_lines(), std::int64_t(0));
      const std::vector<char> bytes = file_bytes(file);  // no flush needed: nothing is buffered
      QCOMPARE(std::count(bytes.begin(), bytes.end(), '\n'), std::ptrdiff_t(3));
      QCOMPARE(bytes.back(), '\n');
    }
    Warnings warnings;
    JsonlMetricsSink full("/dev/full", warnings.sink());
    full.on_step(sample_step(1));
    full.on_step(sample_step(2));
    QCOMPARE(full.lost_lines(), std::int64_t(2));
    QVERIFY2(full.write_error().find("/dev/full: cannot write step 1 (No space left on device)") == 0,
             full.write_error().c_str());
    QVERIFY(warnings.said("training goes on"));
  }

  // The end of a diverged run keeps its adapter, marked, in the same transaction.
  void aDivergedRunKeepsItsAdapterMarked() {
    Store store(db("diverged.sqlite3"));
    const ExperimentConfig config = sample_config("div");
    const std::int64_t run = store.create_run(store.create_experiment("div", config), "cpu", sample_info(config));
    RunResult r;
    r.status = RunStatus::Diverged;
    r.error = "diverged at step 57: the loss is nan";
    r.steps_done = 56;
    const KeptAdapter kept{"div-run", sample_adapter("lora", 2), "reverse"};
    const std::int64_t adapter = store.finish_run(run, r, &kept);
    QVERIFY(adapter > 0);
    const RunRow row = store.get_run(run).row;
    QCOMPARE(row.status, std::string("diverged"));
    QCOMPARE(row.error, r.error);
    const AdapterRow a = store.list_adapters().at(0);
    QCOMPARE(a.run_id, std::optional<std::int64_t>(run));
    QCOMPARE(a.diverged, r.error);
  }

  // An adapter whose blobs would not load back (a model config in its
  // metadata that its tensors do not fit) is refused whole: nothing stays.
  void anAdapterThatWouldNotLoadBackIsNotStored() {
    Store store(db("unloadable.sqlite3"));
    AdapterState a = sample_adapter("lora", 8);
    a.model.hidden = 1000000000;
    const QString msg = store_error_of([&] { store.save_adapter("claims-a-huge-model", std::nullopt, a, "", NAN, NAN); });
    QVERIFY2(msg.contains("would not load back, so nothing was stored"), qPrintable(msg));
    QVERIFY(store.list_adapters().empty());
  }

  void sinkThroughput() {
    Store store(db("throughput.sqlite3"));
    StoreSink sink(store);
    sink.on_start(sample_info(sample_config("fast")));
    std::vector<StepEvent> events;
    for (std::int64_t s = 1; s <= 10000; ++s) {
      StepEvent e = sample_step(s % 1000 == 30 ? 30 : 2);  // a ledger change every 1000 steps
      e.step = s;
      events.push_back(std::move(e));
    }
    QElapsedTimer timer;
    timer.start();
    for (const StepEvent& e : events) sink.on_step(e);
    RunResult r;
    r.status = RunStatus::Finished;
    r.steps_done = 10000;
    sink.on_finish(r);
    const double ms = static_cast<double>(timer.nsecsElapsed()) / 1e6;
    qInfo("10,000 step events through StoreSink, committed: %.1f ms (%.2f us per step)", ms, ms * 1000 / 10000);
    QCOMPARE(store.run_metrics(sink.run_id()).size(), std::size_t(10000));
    QCOMPARE(store.run_memory_snapshots(sink.run_id()).size(), std::size_t(11));
    QVERIFY(ms < 5000);
  }
};

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--store-kill-child") == 0) return kill_child(argv[2], argv[3]);
  if (argc == 3 && std::strcmp(argv[1], "--lease-child") == 0) return lease_child(argv[2]);
  QCoreApplication app(argc, argv);
  TestStore test;
  QTEST_SET_MAIN_SOURCE_PATH
  return QTest::qExec(&test, argc, argv);
}

#include "test_store.moc"

#include "core/store/store.h"

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/common/errors.h"
#include "core/common/integers.h"
#include "core/common/json_integer.h"
#include "core/common/kill_point.h"
#include "core/io/peft.h"
#include "core/format/safetensors.h"
#include "core/model/checkpoint.h"
#include "core/train/jsonl_sink.h"
#include "core/common/paths.h"

namespace lwb {

namespace {

using json = nlohmann::json;

constexpr const char* kInterrupted = "interrupted (the process ended without finishing the run)";

// Forward migrations: entry i takes a file from user_version i to i + 1. A
// step is applied once, in its own transaction, and never edited after a
// release: files in the wild are at every version. Foreign keys are off while
// they run (dropping a rebuilt table would otherwise cascade) and checked
// before each commits.
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
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
)sql"},
    // The owner of a queued or running run, so that opening the file marks
    // only the runs of processes that have ended as interrupted (the GUI and
    // a CLI run may share the file). Rows from version 1 have no owner. A
    // reused pid only keeps a dead run "running" until that process ends. The
    // indexes serve that sweep and the foreign-key checks on deletes.
    {2, R"sql(
ALTER TABLE runs ADD COLUMN pid INTEGER;
CREATE INDEX runs_by_status ON runs(status);
CREATE INDEX adapters_by_run ON adapters(run_id);
CREATE INDEX composition_members_by_adapter ON composition_members(adapter_id);
CREATE INDEX variant_events_by_run ON variant_events(run_id, step);
)sql"},
    // Liveness by lease instead of PID (a PID means nothing in another PID
    // namespace): the owner ("host boot-id pid-namespace pid") and the time
    // it last renewed its lease. The status "diverged" for runs stopped by
    // the divergence guards, whose adapters are kept but marked. SQLite
    // cannot change a CHECK constraint, so runs is rebuilt (foreign keys are
    // off during migrations; the children's REFERENCES runs(id) then name the
    // new table).
    {3, R"sql(
CREATE TABLE runs_v3 (
  id INTEGER PRIMARY KEY,
  experiment_id INTEGER NOT NULL REFERENCES experiments(id),
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'stopped', 'failed', 'diverged')),
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
  run_info_json TEXT,
  pid INTEGER,
  owner TEXT,
  heartbeat REAL
);
INSERT INTO runs_v3 (id, experiment_id, status, device, started, ended, steps_done, final_train_loss,
  final_eval_loss, final_accuracy, tokens_per_s, peak_bytes, error, summary_json, run_info_json, pid)
SELECT id, experiment_id, status, device, started, ended, steps_done, final_train_loss,
  final_eval_loss, final_accuracy, tokens_per_s, peak_bytes, error, summary_json, run_info_json, pid FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v3 RENAME TO runs;
CREATE INDEX runs_by_status ON runs(status);
ALTER TABLE adapters ADD COLUMN diverged TEXT;
)sql"},
    // Comparisons a researcher can trust: each arm of a comparison or study
    // runs over several seeds (and first over a learning-rate grid), and
    // every one of those runs is a row here with the measurements the report
    // is computed from, kept when the run itself is deleted. The report
    // (markdown and its PNG plots) is stored with them. Every run records
    // what its numbers depend on besides config and seed (device, BLAS
    // kernels, threads, build).
    {4, R"sql(
ALTER TABLE runs ADD COLUMN environment_json TEXT;
CREATE TABLE comparisons (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('compare', 'study')),
  status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'stopped', 'failed')),
  created TEXT NOT NULL,
  ended TEXT,
  design_json TEXT NOT NULL,
  report_markdown TEXT,
  error TEXT
);
CREATE TABLE comparison_runs (
  id INTEGER PRIMARY KEY,
  comparison_id INTEGER NOT NULL REFERENCES comparisons(id) ON DELETE CASCADE,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  arm TEXT NOT NULL,
  phase TEXT NOT NULL CHECK (phase IN ('lr-pick', 'seed')),
  seed INTEGER NOT NULL,
  lr REAL NOT NULL,
  status TEXT NOT NULL,
  eval_loss REAL,
  accuracy REAL,
  tokens_per_s REAL,
  peak_bytes INTEGER,
  trainable_params INTEGER,
  measures_json TEXT NOT NULL
);
CREATE INDEX comparison_runs_by_comparison ON comparison_runs(comparison_id, id);
CREATE INDEX comparison_runs_by_run ON comparison_runs(run_id);
CREATE TABLE comparison_files (
  comparison_id INTEGER NOT NULL REFERENCES comparisons(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (comparison_id, name)
);
)sql"},
    // The window as researchers use it: a resumed run names the run it
    // continues; the trainer's per-layer gradient norms (a JSON array at the
    // steps it samples them); the library tools' jobs with their inputs, so
    // every merged, resized, extracted or verified adapter keeps its lineage.
    {5, R"sql(
ALTER TABLE runs ADD COLUMN parent_run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL;
CREATE INDEX runs_by_parent ON runs(parent_run_id);
ALTER TABLE metrics ADD COLUMN layer_grad_norms TEXT;
CREATE TABLE derivations (
  id INTEGER PRIMARY KEY,
  tool TEXT NOT NULL CHECK (tool IN ('merge', 'resize', 'extract', 'verify')),
  created TEXT NOT NULL,
  params_json TEXT NOT NULL,
  report_json TEXT NOT NULL,
  output_adapter_id INTEGER REFERENCES adapters(id) ON DELETE SET NULL,
  output_path TEXT
);
CREATE INDEX derivations_by_output ON derivations(output_adapter_id);
CREATE TABLE derivation_inputs (
  derivation_id INTEGER NOT NULL REFERENCES derivations(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  adapter_id INTEGER REFERENCES adapters(id) ON DELETE SET NULL,
  run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
  ratio REAL,
  PRIMARY KEY (derivation_id, position)
);
CREATE INDEX derivation_inputs_by_adapter ON derivation_inputs(adapter_id);
CREATE INDEX derivation_inputs_by_run ON derivation_inputs(run_id);
)sql"},
    // Predictions over a data file (lora-workbench predict, Evaluate &
    // Predict in the window): their means, and every example with its
    // answer and scores. They belong to the run they score (deleted with
    // it) and name their adapter, whose id is cleared if it is deleted.
    {6, R"sql(
CREATE TABLE predictions (
  id INTEGER PRIMARY KEY,
  run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
  adapter_id INTEGER REFERENCES adapters(id) ON DELETE SET NULL,
  adapter TEXT NOT NULL,
  data TEXT NOT NULL,
  created TEXT NOT NULL,
  examples INTEGER NOT NULL,
  loss REAL,
  exact_match REAL,
  rouge_l REAL
);
CREATE INDEX predictions_by_run ON predictions(run_id);
CREATE INDEX predictions_by_adapter ON predictions(adapter_id);
CREATE TABLE prediction_rows (
  prediction_id INTEGER NOT NULL REFERENCES predictions(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  prompt TEXT NOT NULL,
  reference TEXT NOT NULL,
  prediction TEXT NOT NULL,
  loss REAL,
  exact INTEGER NOT NULL,
  rouge_l REAL,
  PRIMARY KEY (prediction_id, position)
) WITHOUT ROWID;
)sql"},
    // Samples during training (train.samples): each sample prompt's answer
    // at the steps that sampled, deleted with their run.
    {7, R"sql(
CREATE TABLE run_samples (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  prompt_index INTEGER NOT NULL,
  prompt TEXT NOT NULL,
  answer TEXT NOT NULL,
  PRIMARY KEY (run_id, step, prompt_index)
) WITHOUT ROWID;
)sql"},
};
static_assert(std::size(kMigrations) == Store::kSchemaVersion);

// Shared by list_runs and get_run; read by read_run_row in this order.
constexpr const char* kRunSelect = R"sql(
SELECT r.id, r.experiment_id, e.name,
  json_extract(e.config_json, '$.adapter.method'),
  CASE json_extract(e.config_json, '$.data.kind')
    WHEN 'task' THEN json_extract(e.config_json, '$.data.task')
    WHEN 'pretrain' THEN 'pretrain'
    ELSE json_extract(e.config_json, '$.data.path') END,
  r.status, r.device, r.started, r.ended, r.steps_done,
  json_extract(e.config_json, '$.train.steps'),
  r.final_train_loss, r.final_eval_loss, r.final_accuracy, r.tokens_per_s, r.peak_bytes, r.error,
  e.config_json, r.run_info_json, r.summary_json, r.environment_json, r.parent_run_id
FROM runs r JOIN experiments e ON e.id = r.experiment_id
)sql";

std::string iso_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// kill(pid, 0) probes without signalling; EPERM means it exists under another user.
bool process_alive(std::int64_t pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string first_line_of(const char* file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

// Who owns a live run, as "host boot-id pid-namespace pid". Within one boot
// and one PID namespace the pid can be probed; anywhere else only the lease
// tells.
struct Owner {
  std::string host, boot, pidns;
  std::int64_t pid = 0;
};

const Owner& this_process() {
  static const Owner me = [] {
    Owner o;
    char host[256] = "";
    ::gethostname(host, sizeof host - 1);
    o.host = host[0] ? host : "?";
    o.boot = first_line_of("/proc/sys/kernel/random/boot_id");
    std::error_code ec;
    o.pidns = std::filesystem::read_symlink("/proc/self/ns/pid", ec).string();
    o.pid = static_cast<std::int64_t>(::getpid());
    for (std::string* f : {&o.host, &o.boot, &o.pidns})
      for (char& ch : *f)
        if (ch == ' ' || ch == '\0') ch = '_';
    return o;
  }();
  return me;
}

std::string owner_text(const Owner& o) {
  return o.host + " " + (o.boot.empty() ? "?" : o.boot) + " " + (o.pidns.empty() ? "?" : o.pidns) + " " +
         std::to_string(o.pid);
}

std::optional<Owner> parse_owner(const std::string& text) {
  std::istringstream in(text);
  Owner o;
  std::string pid;
  if (!(in >> o.host >> o.boot >> o.pidns >> pid)) return std::nullopt;
  const std::optional<std::int64_t> p = parse_integer<std::int64_t>(pid, 1);
  if (!p) return std::nullopt;
  o.pid = *p;
  return o;
}

// Whether a queued or running run's process may still finish it.
bool run_is_live(const std::string& owner, double heartbeat, std::optional<std::int64_t> legacy_pid) {
  if (owner.empty()) return legacy_pid && process_alive(*legacy_pid);  // written by schema 2: only a pid
  if (!(unix_now() - heartbeat < Store::kLeaseSeconds)) return false;
  const std::optional<Owner> o = parse_owner(owner);
  const Owner& me = this_process();
  // Here the pid answers at once (a crash is seen before the lease lapses).
  if (o && !me.boot.empty() && !me.pidns.empty() && o->boot == me.boot && o->pidns == me.pidns)
    return process_alive(o->pid);
  return true;
}

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

struct StepStatements;

struct StoreConnection {
  sqlite3* db = nullptr;
  std::string file;
  std::string doing;  // what the current public call is doing, for messages
  std::unique_ptr<StepStatements> steps;  // prepared on the first append_steps, then reused

  explicit StoreConnection(std::string f) : file(std::move(f)) {}
  ~StoreConnection();
  [[noreturn]] void fail(int rc) const;
  void exec(const std::string& sql) {
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(rc);
  }
  int user_version();
};

void StoreConnection::fail(int rc) const {
  const std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  // A full disk can surface as an I/O error (e.g. growing the WAL index).
  const bool no_space = (rc & 0xff) == SQLITE_IOERR && db && sqlite3_system_errno(db) == ENOSPC;
  switch (no_space ? SQLITE_FULL : rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      throw StoreError(file + ": the database is locked by another process (while " + doing +
                           "); close the other lora-workbench that is writing to it, or try again",
                       StoreError::Reason::Busy);
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      throw StoreError(file + ": not a lora-workbench database, or the file is damaged (" + detail +
                       "); move it aside or set LWB_DB to another file");
    case SQLITE_READONLY:
      throw StoreError(file + ": cannot write to the database while " + doing + " (" + detail +
                       "); check the permissions of the file and its folder");
    case SQLITE_CANTOPEN:
      throw StoreError(file + ": cannot open the database (" + detail +
                       "); check that its folder exists and is writable");
    case SQLITE_FULL:
      throw StoreError(file + ": the disk is full (while " + doing + "); free some space and try again",
                       StoreError::Reason::Full);
    default:
      throw StoreError(file + ": " + doing + " failed: " + detail);
  }
}

namespace {

class Statement {
 public:
  Statement(StoreConnection& db, std::string_view sql, unsigned flags = 0) : db_(db) {
    const int rc = sqlite3_prepare_v3(db_.db, sql.data(), static_cast<int>(sql.size()), flags, &stmt_, nullptr);
    if (rc != SQLITE_OK) db_.fail(rc);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  // NaN means "not measured": stored as NULL and read back as NaN.
  Statement& bind(int i, double v) {
    return check(std::isnan(v) ? sqlite3_bind_null(stmt_, i) : sqlite3_bind_double(stmt_, i, v));
  }
  Statement& bind(int i, std::string_view v) {
    return check(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  Statement& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Statement& bind(int i, std::optional<std::int64_t> v) {
    return v ? bind(i, *v) : check(sqlite3_bind_null(stmt_, i));
  }
  Statement& bind(int i, const std::optional<std::string>& v) {
    return v ? bind(i, *v) : check(sqlite3_bind_null(stmt_, i));
  }
  Statement& bind(int i, const std::vector<std::uint8_t>& v) {
    return check(sqlite3_bind_blob64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT));
  }

  // Binds the arguments to the parameters in order.
  template <class... A>
  Statement& with(const A&... args) {
    int i = 0;
    (bind(++i, args), ...);
    return *this;
  }

  // Steps to the next row; false when there are no more.
  bool next() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    sqlite3_reset(stmt_);  // releases its locks; the error message stays
    db_.fail(rc);
  }
  // Runs a statement that returns no rows and readies it for reuse; returns
  // the number of rows it changed.
  int run() {
    while (next()) {
    }
    sqlite3_reset(stmt_);
    return sqlite3_changes(db_.db);
  }

  bool is_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::int64_t integer(int c) const { return sqlite3_column_int64(stmt_, c); }
  std::optional<std::int64_t> optional_integer(int c) const {
    return is_null(c) ? std::nullopt : std::optional<std::int64_t>(integer(c));
  }
  double real(int c) const { return is_null(c) ? NAN : sqlite3_column_double(stmt_, c); }
  std::string text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
  }
  std::vector<std::uint8_t> blob(int c) const {
    const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, c));
    return p ? std::vector<std::uint8_t>(p, p + sqlite3_column_bytes(stmt_, c)) : std::vector<std::uint8_t>();
  }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK) db_.fail(rc);
    return *this;
  }
  StoreConnection& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE takes the write lock up front, so a busy database is
// reported here (after the busy timeout) and never halfway through.
class Transaction {
 public:
  explicit Transaction(StoreConnection& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
  ~Transaction() {
    if (!done_) sqlite3_exec(db_.db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    db_.exec("COMMIT");
    done_ = true;
  }

 private:
  StoreConnection& db_;
  bool done_ = false;
};

template <class T>
bool exists(StoreConnection& d, std::string_view sql, const T& key) {
  Statement q(d, sql);
  q.with(key);
  return q.next();
}

[[noreturn]] void missing(const StoreConnection& d, const char* what, std::int64_t id) {
  throw StoreError(d.file + ": there is no " + what + " with id " + std::to_string(id));
}


std::string run_info_json(const RunInfo& i) {
  const json j = {{"config", json::parse(i.config.to_json())},
                  {"backend", i.backend},
                  {"dataset", i.dataset},
                  {"train_examples", i.train_examples},
                  {"heldout_examples", i.heldout_examples},
                  {"trainable_params", i.trainable_params},
                  {"model_params", i.model_params},
                  {"base_fingerprint", i.base_fingerprint},
                  {"eval_split", i.eval_split}};
  return j.dump();
}

LedgerSnapshot snapshot_from_json(const std::string& text, const std::string& source) {
  auto integer = [&](const json& v, const char* key, auto lo) {
    using T = decltype(lo);
    const std::optional<T> x = json_integer<T>(v, lo);
    if (!x) throw FormatError(source, std::string("the memory snapshot's \"") + key + "\" is not " +
                                          integer_range_text(lo, std::numeric_limits<T>::max()) + ": " + v.dump());
    return *x;
  };
  try {
    const json j = json::parse(text);
    LedgerSnapshot s;
    s.total = integer(j.at("total"), "total", std::size_t{0});
    s.peak_total = integer(j.at("peak_total"), "peak_total", std::size_t{0});
    for (int c = 0; c < kMemCategoryCount; ++c) {
      const char* key = mem_category_key(static_cast<MemCategory>(c));
      s.current[c] = integer(j.at("current").at(key), key, std::size_t{0});
      s.peak[c] = integer(j.at("peak").at(key), key, std::size_t{0});
    }
    for (const json& layer : j.at("layers")) {
      LedgerSnapshot::Row row;
      row.layer = integer(layer.at("layer"), "layer", kModelLevel);
      for (int c = 0; c < kMemCategoryCount; ++c) {
        const char* key = mem_category_key(static_cast<MemCategory>(c));
        row.bytes[c] = integer(layer.at(key), key, std::size_t{0});
      }
      s.rows.push_back(row);
    }
    return s;
  } catch (const json::exception& e) {
    throw FormatError(source, std::string("the memory snapshot is not valid: ") + e.what());
  }
}


std::string weights_json(const std::vector<double>& w) {
  json j = json::array();
  for (double v : w) j.push_back(std::isnan(v) ? json(nullptr) : json(v));
  return j.dump();
}

// `what` names the numbers in the message ("trial weights").
std::vector<double> weights_from_json(const std::string& text, const std::string& source, const char* what) {
  try {
    std::vector<double> w;
    for (const json& v : json::parse(text)) w.push_back(v.is_null() ? NAN : v.get<double>());
    return w;
  } catch (const json::exception& e) {
    throw FormatError(source, std::string(what) + " are not valid: " + e.what());
  }
}

}  // namespace

// The statements append_steps reuses for every batch.
struct StepStatements {
  Statement metric, snapshot, event, sample, progress;
  explicit StepStatements(StoreConnection& d)
      : metric(d,
               "INSERT OR REPLACE INTO metrics (run_id, step, loss, eval_loss, accuracy, lr, grad_norm, "
               "tokens_per_s, elapsed_s, layer_grad_norms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               SQLITE_PREPARE_PERSISTENT),
        snapshot(d, "INSERT OR REPLACE INTO memory_snapshots (run_id, step, snapshot_json) VALUES (?, ?, ?)",
                 SQLITE_PREPARE_PERSISTENT),
        event(d, "INSERT INTO variant_events (run_id, step, kind, payload_json) VALUES (?, ?, ?, ?)",
              SQLITE_PREPARE_PERSISTENT),
        sample(d, "INSERT OR REPLACE INTO run_samples (run_id, step, prompt_index, prompt, answer) VALUES (?, ?, ?, ?, ?)",
               SQLITE_PREPARE_PERSISTENT),
        progress(d, "UPDATE runs SET steps_done = ?, heartbeat = ? WHERE id = ?", SQLITE_PREPARE_PERSISTENT) {}
};

StoreConnection::~StoreConnection() {
  steps.reset();  // statements are finalized before the connection closes
  sqlite3_close_v2(db);
}

int StoreConnection::user_version() {
  Statement q(*this, "PRAGMA user_version");
  return q.next() ? static_cast<int>(q.integer(0)) : 0;
}

namespace {

void migrate(StoreConnection& d, int version) {
  if (version >= Store::kSchemaVersion) return;
  // A no-op inside a transaction, so set around them.
  d.exec("PRAGMA foreign_keys = OFF");
  for (const Migration& m : kMigrations) {
    if (m.version <= version) continue;
    Transaction t(d);
    // Another process may have migrated the file while this one waited for the lock.
    version = d.user_version();
    if (version < m.version) {
      d.exec(m.sql);
      {
        Statement broken(d, "PRAGMA foreign_key_check");
        if (broken.next())
          throw StoreError(d.file + ": migrating to schema version " + std::to_string(m.version) +
                           " would break a reference (table " + broken.text(0) + "); the file was left as it was");
      }
      d.exec("PRAGMA user_version = " + std::to_string(m.version));
      version = m.version;
    }
    t.commit();
  }
  d.exec("PRAGMA foreign_keys = ON");
}

// Runs whose owner has ended (its lease lapsed, or here its process is gone)
// can never finish: mark them failed, keeping what they recorded. Returns how
// many.
int mark_interrupted_runs(StoreConnection& d) {
  struct Orphan {
    std::int64_t id;
    double heartbeat;
  };
  std::vector<Orphan> orphans;
  {
    Statement q(d, "SELECT id, owner, heartbeat, pid FROM runs WHERE status IN ('queued', 'running')");
    while (q.next())
      if (!run_is_live(q.text(1), q.real(2), q.optional_integer(3))) orphans.push_back({q.integer(0), q.real(2)});
  }
  // Opening takes the write lock only when there is something to mark.
  if (orphans.empty()) return 0;
  Transaction t(d);
  // Unless the owner renewed its lease meanwhile.
  Statement mark(d,
                 "UPDATE runs SET status = 'failed', error = ?, ended = ? "
                 "WHERE id = ? AND status IN ('queued', 'running') AND heartbeat IS ?");
  const std::string now = iso_now();
  int marked = 0;
  for (const Orphan& o : orphans) marked += mark.with(kInterrupted, now, o.id, o.heartbeat).run();
  t.commit();
  return marked;
}

std::int64_t insert_run(StoreConnection& d, std::int64_t experiment_id, const std::string& device,
                        std::optional<std::int64_t> parent_run_id = std::nullopt) {
  if (!exists(d, "SELECT 1 FROM experiments WHERE id = ?", experiment_id)) missing(d, "experiment", experiment_id);
  if (parent_run_id && !exists(d, "SELECT 1 FROM runs WHERE id = ?", *parent_run_id)) missing(d, "run", *parent_run_id);
  Statement(d,
            "INSERT INTO runs (experiment_id, status, device, pid, owner, heartbeat, parent_run_id) "
            "VALUES (?, 'queued', ?, ?, ?, ?, ?)")
      .with(experiment_id, device, this_process().pid, owner_text(this_process()), unix_now(), parent_run_id)
      .run();
  return sqlite3_last_insert_rowid(d.db);
}

void mark_started(StoreConnection& d, std::int64_t run_id, const RunInfo& info) {
  const int changed =
      Statement(d,
                "UPDATE runs SET status = 'running', started = ?, run_info_json = ?, environment_json = ?, pid = ?, "
                "owner = ?, heartbeat = ? WHERE id = ? AND status = 'queued'")
          .with(iso_now(), run_info_json(info), environment_to_json(info.environment), this_process().pid,
                owner_text(this_process()), unix_now(), run_id)
          .run();
  if (changed == 0) {
    Statement q(d, "SELECT status FROM runs WHERE id = ?");
    q.with(run_id);
    if (!q.next()) missing(d, "run", run_id);
    throw StoreError(d.file + ": run " + std::to_string(run_id) + " cannot start: it is " + q.text(0) +
                     ", not queued");
  }
  Statement(d, "INSERT OR REPLACE INTO memory_snapshots (run_id, step, snapshot_json) VALUES (?, 0, ?)")
      .with(run_id, ledger_snapshot_json(info.memory))
      .run();
}

// Inserts the adapter and reads its blobs back before the caller commits: an
// adapter that would not load again (e.g. a model config in its metadata that
// its tensors do not fit) must not reach the library.
std::int64_t insert_adapter(StoreConnection& d, const std::string& name, std::optional<std::int64_t> run_id,
                            const AdapterState& state, const std::string& task, double eval_loss,
                            double eval_accuracy, const std::string& diverged) {
  if (name.empty()) throw StoreError(d.file + ": an adapter needs a name");
  const AdapterConfig& c = state.config;
  std::string targets;
  for (Target t : kAllTargets)
    if (c.targets_contain(t)) targets += (targets.empty() ? "" : ",") + std::string(target_short_name(t));
  const std::string config = io::peft_config_json(state);
  std::vector<std::uint8_t> blob = io::peft_safetensors_bytes(state);
  if (exists(d, "SELECT 1 FROM adapters WHERE name = ?", name))
    throw StoreError(d.file + ": an adapter named " + in_quotes(name) +
                     " already exists; choose another name or delete that adapter first");
  if (run_id && !exists(d, "SELECT 1 FROM runs WHERE id = ?", *run_id)) missing(d, "run", *run_id);
  Statement(d,
            "INSERT INTO adapters (run_id, name, variant, rank, targets, base_model, base_fingerprint, "
            "peft_config_json, safetensors, created, task, eval_loss, eval_accuracy, diverged) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .with(run_id, name, method_display_name(c), c.r, targets, state.base_model, state.base_fingerprint, config, blob,
            iso_now(), task, eval_loss, eval_accuracy, diverged.empty() ? std::optional<std::string>() : diverged)
      .run();
  const std::int64_t id = sqlite3_last_insert_rowid(d.db);
  try {
    io::read_peft_blobs(config, std::move(blob), "adapter " + in_quotes(name));
  } catch (const Error& e) {
    throw StoreError(d.file + ": adapter " + in_quotes(name) + " would not load back, so nothing was stored: " +
                     e.what());
  }
  return id;
}

// A run that ended and left a state to resume from (a live run's state is
// still being written).
bool ended_with_state(const RunRow& r, const std::filesystem::path& state) {
  std::error_code ec;
  return r.status != "queued" && r.status != "running" && std::filesystem::exists(state, ec);
}

RunRow read_run_row(const Statement& q) {
  RunRow r;
  r.id = q.integer(0);
  r.experiment_id = q.integer(1);
  r.experiment = q.text(2);
  r.method = q.text(3);
  r.task = q.text(4);
  r.status = q.text(5);
  r.device = q.text(6);
  r.started = q.text(7);
  r.ended = q.text(8);
  r.steps_done = q.integer(9);
  r.total_steps = q.integer(10);
  r.final_train_loss = q.real(11);
  r.final_eval_loss = q.real(12);
  r.final_accuracy = q.real(13);
  r.tokens_per_s = q.real(14);
  r.peak_bytes = q.integer(15);
  r.error = q.text(16);
  r.parent_run_id = q.optional_integer(21);
  return r;
}

}  // namespace

std::filesystem::path Store::default_path() {
  if (const char* p = std::getenv("LWB_DB"); p && *p) return p;
  return user_data_dir() / "workbench.sqlite3";
}

Store::Store(const std::filesystem::path& file, std::chrono::milliseconds busy_timeout)
    : file_(file), conn_(std::make_unique<StoreConnection>(file.string())) {
  StoreConnection& d = *conn_;
  d.doing = "opening the database";
  if (file.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) throw StoreError(d.file + ": cannot create its folder (" + ec.message() + ")");
  }
  const int rc = sqlite3_open_v2(d.file.c_str(), &d.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) d.fail(rc);
  sqlite3_busy_timeout(d.db, static_cast<int>(busy_timeout.count()));

  // Read before anything is written: a file from a newer program must stay
  // exactly as it is.
  const int version = d.user_version();
  if (version > kSchemaVersion) {
    // Closing would otherwise checkpoint the file's write-ahead log into it.
    sqlite3_db_config(d.db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    throw StoreError(d.file + ": database schema version " + std::to_string(version) +
                     " is newer than this program (" + std::to_string(kSchemaVersion) +
                     "); use a newer lora-workbench");
  }
  if (version == 0) {
    Statement q(d, "SELECT 1 FROM sqlite_master WHERE type = 'table'");
    if (q.next())
      throw StoreError(d.file + ": a SQLite database of another program (it has tables but no lora-workbench "
                                "schema); choose another file or set LWB_DB");
  }
  d.exec("PRAGMA foreign_keys = ON");
  d.exec("PRAGMA journal_mode = WAL");
  // In WAL mode NORMAL syncs at checkpoints rather than at every commit: a
  // power cut may lose the last commits, never the file's consistency.
  d.exec("PRAGMA synchronous = NORMAL");
  migrate(d, version);
  interrupted_runs_ = mark_interrupted_runs(d);
}

Store::~Store() = default;

std::int64_t Store::create_experiment(const std::string& name, const ExperimentConfig& config) {
  StoreConnection& d = *conn_;
  d.doing = "saving experiment " + in_quotes(name);
  Transaction t(d);
  Statement(d, "INSERT INTO experiments (name, config_json, created) VALUES (?, ?, ?)")
      .with(name, config.to_json(), iso_now())
      .run();
  const std::int64_t id = sqlite3_last_insert_rowid(d.db);
  t.commit();
  return id;
}

std::int64_t Store::queue_run(std::int64_t experiment_id, const std::string& device,
                              std::optional<std::int64_t> parent_run_id) {
  StoreConnection& d = *conn_;
  d.doing = "queueing a run of experiment " + std::to_string(experiment_id);
  Transaction t(d);
  const std::int64_t id = insert_run(d, experiment_id, device, parent_run_id);
  t.commit();
  return id;
}

void Store::start_run(std::int64_t run_id, const RunInfo& info) {
  StoreConnection& d = *conn_;
  d.doing = "starting run " + std::to_string(run_id);
  Transaction t(d);
  mark_started(d, run_id, info);
  t.commit();
}

std::int64_t Store::create_run(std::int64_t experiment_id, const std::string& device, const RunInfo& info) {
  StoreConnection& d = *conn_;
  d.doing = "starting a run of experiment " + std::to_string(experiment_id);
  Transaction t(d);
  const std::int64_t id = insert_run(d, experiment_id, device);
  mark_started(d, id, info);
  t.commit();
  return id;
}

void Store::append_steps(std::int64_t run_id, std::span<const StepEvent> events) {
  if (events.empty()) return;
  StoreConnection& d = *conn_;
  d.doing = "saving the metrics of run " + std::to_string(run_id);
  if (!d.steps) d.steps = std::make_unique<StepStatements>(d);
  StepStatements& s = *d.steps;
  Transaction t(d);
  for (const StepEvent& e : events) {
    s.metric
        .with(run_id, e.step, e.loss, e.eval ? e.eval->loss : NAN, e.eval ? e.eval->accuracy : NAN, e.lr,
              e.grad_norm, e.tokens_per_s, e.elapsed_s,
              e.layer_grad_norms.empty() ? std::optional<std::string>() : weights_json(e.layer_grad_norms))
        .run();
    if (e.memory) s.snapshot.with(run_id, e.step, ledger_snapshot_json(*e.memory)).run();
    for (const VariantEvent& v : e.variant_events) s.event.with(run_id, e.step, v.kind, v.payload_json).run();
    for (const TrainingSample& x : e.samples) s.sample.with(run_id, e.step, x.prompt, x.prompt_text, x.answer).run();
  }
  s.progress.with(events.back().step, unix_now(), run_id).run();
  t.commit();
}

Lease Store::renew_lease(std::int64_t run_id) {
  StoreConnection& d = *conn_;
  d.doing = "renewing the lease of run " + std::to_string(run_id);
  Transaction t(d);
  Lease lease = Lease::Held;
  if (Statement(d, "UPDATE runs SET heartbeat = ? WHERE id = ? AND status IN ('queued', 'running')")
          .with(unix_now(), run_id)
          .run() == 0) {
    // Taken for dead (a suspended laptop, a lock held past the lease): it is
    // live after all, so it goes back to what it was.
    const int revived = Statement(d,
                                  "UPDATE runs SET status = CASE WHEN started IS NULL THEN 'queued' ELSE 'running' END, "
                                  "error = NULL, ended = NULL, heartbeat = ? "
                                  "WHERE id = ? AND status = 'failed' AND error = ?")
                            .with(unix_now(), run_id, kInterrupted)
                            .run();
    lease = revived > 0 ? Lease::Revived : Lease::Lost;
  }
  t.commit();
  return lease;
}

std::int64_t Store::finish_run(std::int64_t run_id, const RunResult& r, const KeptAdapter* adapter) {
  StoreConnection& d = *conn_;
  d.doing = "finishing run " + std::to_string(run_id) + (adapter ? " and keeping adapter " + in_quotes(adapter->name) : "");
  Transaction t(d);
  const int changed =
      Statement(d,
                "UPDATE runs SET status = ?, ended = ?, steps_done = ?, final_train_loss = ?, "
                "final_eval_loss = ?, final_accuracy = ?, tokens_per_s = ?, peak_bytes = ?, error = ?, "
                "summary_json = ? WHERE id = ?")
          .with(run_status_name(r.status), iso_now(), r.steps_done, r.final_train_loss, r.final_eval.loss,
                r.final_eval.accuracy, r.tokens_per_s, static_cast<std::int64_t>(r.memory.peak_total), r.error,
                run_result_json(r), run_id)
          .run();
  if (changed == 0) missing(d, "run", run_id);
  // The evaluation a stopped run ends with was taken after its last step
  // event: it belongs on that step's row (a scheduled one already there stays).
  if (r.steps_done > 0 && (std::isfinite(r.final_eval.loss) || std::isfinite(r.final_eval.accuracy)))
    Statement(d,
              "UPDATE metrics SET eval_loss = ?, accuracy = ? WHERE run_id = ? AND step = ? "
              "AND eval_loss IS NULL AND accuracy IS NULL")
        .with(r.final_eval.loss, r.final_eval.accuracy, run_id, r.steps_done)
        .run();
  std::int64_t adapter_id = 0;
  if (adapter)
    adapter_id = insert_adapter(d, adapter->name, run_id, adapter->state, adapter->task, r.final_eval.loss,
                                r.final_eval.accuracy, r.status == RunStatus::Diverged ? r.error : std::string());
  kill_point("store-finish-before-commit");
  t.commit();
  if (r.status == RunStatus::Finished) {
    std::error_code ec;  // nothing is left to resume; a leftover only costs disk space
    std::filesystem::remove(state_file(run_id), ec);
  }
  return adapter_id;
}

std::filesystem::path Store::state_file(std::int64_t run_id) const {
  return file_.string() + "-states/run-" + std::to_string(run_id) + ".safetensors";
}

std::filesystem::path Store::models_dir() const { return file_.string() + "-models"; }

std::filesystem::path Store::model_file(std::int64_t run_id) const {
  return models_dir() / ("run-" + std::to_string(run_id) + ".safetensors");
}

std::vector<RunRow> Store::list_runs() {
  StoreConnection& d = *conn_;
  d.doing = "listing the runs";
  Statement q(d, std::string(kRunSelect) + " ORDER BY r.id DESC");
  std::vector<RunRow> rows;
  while (q.next()) {
    rows.push_back(read_run_row(q));
    rows.back().resumable = ended_with_state(rows.back(), state_file(rows.back().id));
    std::error_code ec;
    rows.back().has_model = std::filesystem::exists(model_file(rows.back().id), ec);
  }
  return rows;
}

RunDetail Store::get_run(std::int64_t run_id) {
  StoreConnection& d = *conn_;
  d.doing = "reading run " + std::to_string(run_id);
  Statement q(d, std::string(kRunSelect) + " WHERE r.id = ?");
  q.with(run_id);
  if (!q.next()) missing(d, "run", run_id);
  RunDetail r;
  r.row = read_run_row(q);
  r.config_json = q.text(17);
  r.run_info_json = q.text(18);
  r.summary_json = q.text(19);
  r.environment_json = q.text(20);
  r.row.resumable = ended_with_state(r.row, state_file(run_id));
  if (r.row.resumable) r.state_file = state_file(run_id);
  std::error_code ec;
  r.row.has_model = std::filesystem::exists(model_file(run_id), ec);
  return r;
}

std::vector<std::int64_t> Store::run_ancestry(std::int64_t run_id) {
  StoreConnection& d = *conn_;
  d.doing = "reading the runs that run " + std::to_string(run_id) + " resumed";
  Statement q(d, "SELECT parent_run_id FROM runs WHERE id = ?");
  std::vector<std::int64_t> chain;
  for (std::optional<std::int64_t> id = run_id; id;) {
    // A cycle cannot be written (a parent exists before its child), but a
    // damaged file must not hang the window.
    if (std::find(chain.begin(), chain.end(), *id) != chain.end()) break;
    q.with(*id);
    if (!q.next()) {
      if (chain.empty()) missing(d, "run", run_id);
      break;
    }
    chain.push_back(*id);
    id = q.optional_integer(0);
    q.run();  // resets it for the next id
  }
  return chain;
}

std::vector<MetricRow> Store::run_metrics(std::int64_t run_id) {
  StoreConnection& d = *conn_;
  d.doing = "reading the metrics of run " + std::to_string(run_id);
  Statement q(d,
              "SELECT step, loss, eval_loss, accuracy, lr, grad_norm, tokens_per_s, elapsed_s, layer_grad_norms "
              "FROM metrics WHERE run_id = ? ORDER BY step");
  q.with(run_id);
  std::vector<MetricRow> rows;
  const std::string source = d.file + ": metrics of run " + std::to_string(run_id);
  while (q.next()) {
    rows.push_back({q.integer(0), q.real(1), q.real(2), q.real(3), q.real(4), q.real(5), q.real(6), q.real(7), {}});
    if (!q.is_null(8)) rows.back().layer_grad_norms = weights_from_json(q.text(8), source, "layer gradient norms");
  }
  return rows;
}

std::vector<MemorySnapshotRow> Store::run_memory_snapshots(std::int64_t run_id) {
  StoreConnection& d = *conn_;
  d.doing = "reading the memory snapshots of run " + std::to_string(run_id);
  Statement q(d, "SELECT step, snapshot_json FROM memory_snapshots WHERE run_id = ? ORDER BY step");
  q.with(run_id);
  std::vector<MemorySnapshotRow> rows;
  while (q.next()) {
    const std::int64_t step = q.integer(0);
    const std::string source = d.file + ": run " + std::to_string(run_id) + " step " + std::to_string(step);
    rows.push_back({step, snapshot_from_json(q.text(1), source)});
  }
  return rows;
}

std::vector<VariantEventRow> Store::run_variant_events(std::int64_t run_id) {
  StoreConnection& d = *conn_;
  d.doing = "reading the variant events of run " + std::to_string(run_id);
  Statement q(d, "SELECT step, kind, payload_json FROM variant_events WHERE run_id = ? ORDER BY step, id");
  q.with(run_id);
  std::vector<VariantEventRow> rows;
  while (q.next()) rows.push_back({q.integer(0), {q.text(1), q.text(2)}});
  return rows;
}

std::vector<RunSampleRow> Store::run_samples(std::int64_t run_id) {
  StoreConnection& d = *conn_;
  d.doing = "reading the samples of run " + std::to_string(run_id);
  Statement q(d, "SELECT step, prompt_index, prompt, answer FROM run_samples WHERE run_id = ? ORDER BY step, prompt_index");
  q.with(run_id);
  std::vector<RunSampleRow> rows;
  while (q.next()) {
    RunSampleRow r;
    r.step = q.integer(0);
    r.sample.prompt = static_cast<int>(q.integer(1));
    r.sample.prompt_text = q.text(2);
    r.sample.answer = q.text(3);
    rows.push_back(std::move(r));
  }
  return rows;
}

void Store::delete_run(std::int64_t run_id) {
  StoreConnection& d = *conn_;
  d.doing = "deleting run " + std::to_string(run_id);
  Transaction t(d);
  {
    Statement q(d, "SELECT status, owner, heartbeat, pid FROM runs WHERE id = ?");
    q.with(run_id);
    if (!q.next()) missing(d, "run", run_id);
    // Its process would fail on its next write.
    const std::string status = q.text(0);
    if ((status == "queued" || status == "running") && run_is_live(q.text(1), q.real(2), q.optional_integer(3)))
      throw StoreError(d.file + ": run " + std::to_string(run_id) + " is still " + status +
                       " (its process renews its lease); stop it before deleting it");
  }
  Statement(d, "DELETE FROM runs WHERE id = ?").with(run_id).run();
  t.commit();
  std::error_code ec;  // a file that cannot be removed only costs disk space
  std::filesystem::remove(state_file(run_id), ec);
  std::filesystem::remove(model_file(run_id), ec);
}

std::int64_t Store::save_adapter(const std::string& name, std::optional<std::int64_t> run_id,
                                 const AdapterState& state, const std::string& task, double eval_loss,
                                 double eval_accuracy) {
  StoreConnection& d = *conn_;
  d.doing = "saving adapter " + in_quotes(name);
  Transaction t(d);
  const std::int64_t id = insert_adapter(d, name, run_id, state, task, eval_loss, eval_accuracy, "");
  t.commit();
  return id;
}

AdapterState Store::load_adapter(std::int64_t adapter_id) {
  StoreConnection& d = *conn_;
  d.doing = "loading adapter " + std::to_string(adapter_id);
  Statement q(d,
              "SELECT name, variant, base_model, base_fingerprint, peft_config_json, safetensors "
              "FROM adapters WHERE id = ?");
  q.with(adapter_id);
  if (!q.next()) missing(d, "adapter", adapter_id);
  const std::string source = d.file + ": adapter " + in_quotes(q.text(0));
  AdapterState s = io::read_peft_blobs(q.text(4), q.blob(5), source);
  // The variant column keeps what PEFT has no word for (a ReLoRA adapter is a
  // plain LoRA there; DoRA's norm_grad is no PEFT field).
  select_method(s.config, q.text(1));
  s.base_model = q.text(2);
  s.base_fingerprint = q.text(3);
  return s;
}

std::optional<std::int64_t> Store::find_adapter(const std::string& name) {
  StoreConnection& d = *conn_;
  d.doing = "looking up adapter " + in_quotes(name);
  Statement q(d, "SELECT id FROM adapters WHERE name = ?");
  q.with(name);
  return q.next() ? std::optional<std::int64_t>(q.integer(0)) : std::nullopt;
}

std::vector<AdapterRow> Store::list_adapters() {
  StoreConnection& d = *conn_;
  d.doing = "listing the adapters";
  Statement q(d,
              "SELECT id, run_id, name, variant, rank, targets, base_model, base_fingerprint, task, eval_loss, "
              "eval_accuracy, created, length(safetensors), diverged FROM adapters ORDER BY id DESC");
  std::vector<AdapterRow> rows;
  while (q.next()) {
    AdapterRow a;
    a.id = q.integer(0);
    a.run_id = q.optional_integer(1);
    a.name = q.text(2);
    a.variant = q.text(3);
    a.rank = static_cast<int>(q.integer(4));
    a.targets = q.text(5);
    a.base_model = q.text(6);
    a.base_fingerprint = q.text(7);
    a.task = q.text(8);
    a.eval_loss = q.real(9);
    a.eval_accuracy = q.real(10);
    a.created = q.text(11);
    a.bytes = q.integer(12);
    a.diverged = q.text(13);
    rows.push_back(std::move(a));
  }
  return rows;
}

void Store::delete_adapter(std::int64_t adapter_id) {
  StoreConnection& d = *conn_;
  d.doing = "deleting adapter " + std::to_string(adapter_id);
  Transaction t(d);
  std::string name;
  {
    Statement q(d, "SELECT name FROM adapters WHERE id = ?");
    q.with(adapter_id);
    if (!q.next()) missing(d, "adapter", adapter_id);
    name = q.text(0);
  }
  std::string users;
  {
    Statement q(d,
                "SELECT DISTINCT c.name FROM composition_members m JOIN compositions c ON c.id = m.composition_id "
                "WHERE m.adapter_id = ? ORDER BY c.name");
    q.with(adapter_id);
    while (q.next()) users += (users.empty() ? "" : ", ") + in_quotes(q.text(0));
  }
  if (!users.empty())
    throw StoreError(d.file + ": adapter " + in_quotes(name) + " is used by composition(s) " + users +
                     "; delete those compositions or remove the adapter from them first");
  Statement(d, "DELETE FROM adapters WHERE id = ?").with(adapter_id).run();
  t.commit();
}

std::int64_t Store::save_composition(const Composition& c) {
  StoreConnection& d = *conn_;
  d.doing = "saving composition " + in_quotes(c.name);
  if (c.name.empty()) throw StoreError(d.file + ": a composition needs a name");
  Transaction t(d);
  {
    Statement q(d, "SELECT id FROM compositions WHERE name = ?");
    q.with(c.name);
    if (q.next() && q.integer(0) != c.id)
      throw StoreError(d.file + ": a composition named " + in_quotes(c.name) + " already exists; choose another name");
  }
  for (std::size_t i = 0; i < c.members.size(); ++i)
    if (!exists(d, "SELECT 1 FROM adapters WHERE id = ?", c.members[i].adapter_id))
      throw StoreError(d.file + ": composition " + in_quotes(c.name) + ": member " + std::to_string(i + 1) +
                       " refers to adapter id " + std::to_string(c.members[i].adapter_id) +
                       ", which is not in the library");
  std::int64_t id = c.id;
  if (id == 0) {
    Statement(d,
              "INSERT INTO compositions (name, mode, optimizer, base_fingerprint, target_task, created, "
              "scores_json, canvas_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .with(c.name, c.mode, c.optimizer, c.base_fingerprint, c.target_task, iso_now(), c.scores_json,
              c.canvas_json)
        .run();
    id = sqlite3_last_insert_rowid(d.db);
  } else {
    const int changed = Statement(d,
                                  "UPDATE compositions SET name = ?, mode = ?, optimizer = ?, base_fingerprint = ?, "
                                  "target_task = ?, scores_json = ?, canvas_json = ? WHERE id = ?")
                            .with(c.name, c.mode, c.optimizer, c.base_fingerprint, c.target_task, c.scores_json,
                                  c.canvas_json, id)
                            .run();
    if (changed == 0) missing(d, "composition", id);
    Statement(d, "DELETE FROM composition_members WHERE composition_id = ?").with(id).run();
    Statement(d, "DELETE FROM composition_trials WHERE composition_id = ?").with(id).run();
  }
  Statement member(d,
                   "INSERT INTO composition_members (composition_id, position, adapter_id, weight, x, y) "
                   "VALUES (?, ?, ?, ?, ?, ?)");
  for (std::size_t i = 0; i < c.members.size(); ++i) {
    const CompositionMember& m = c.members[i];
    member.with(id, static_cast<std::int64_t>(i), m.adapter_id, m.weight, m.x, m.y).run();
  }
  Statement trial(d,
                  "INSERT INTO composition_trials (composition_id, iteration, weights_json, objective) "
                  "VALUES (?, ?, ?, ?)");
  for (const CompositionTrial& tr : c.trials) trial.with(id, tr.iteration, weights_json(tr.weights), tr.objective).run();
  t.commit();
  return id;
}

Composition Store::load_composition(std::int64_t composition_id) {
  StoreConnection& d = *conn_;
  d.doing = "loading composition " + std::to_string(composition_id);
  Composition c;
  {
    Statement q(d,
                "SELECT id, name, mode, optimizer, base_fingerprint, target_task, created, scores_json, canvas_json "
                "FROM compositions WHERE id = ?");
    q.with(composition_id);
    if (!q.next()) missing(d, "composition", composition_id);
    c.id = q.integer(0);
    c.name = q.text(1);
    c.mode = q.text(2);
    c.optimizer = q.text(3);
    c.base_fingerprint = q.text(4);
    c.target_task = q.text(5);
    c.created = q.text(6);
    c.scores_json = q.text(7);
    c.canvas_json = q.text(8);
  }
  {
    Statement q(d,
                "SELECT adapter_id, weight, x, y FROM composition_members WHERE composition_id = ? "
                "ORDER BY position");
    q.with(composition_id);
    while (q.next()) c.members.push_back({q.integer(0), q.real(1), q.real(2), q.real(3)});
  }
  Statement q(d,
              "SELECT iteration, weights_json, objective FROM composition_trials WHERE composition_id = ? "
              "ORDER BY iteration");
  q.with(composition_id);
  const std::string source = d.file + ": composition " + in_quotes(c.name);
  while (q.next()) c.trials.push_back({q.integer(0), weights_from_json(q.text(1), source, "trial weights"), q.real(2)});
  return c;
}

std::vector<CompositionRow> Store::list_compositions() {
  StoreConnection& d = *conn_;
  d.doing = "listing the compositions";
  Statement q(d, R"sql(
SELECT c.id, c.name, c.mode, c.optimizer, c.base_fingerprint, c.target_task, c.created,
  (SELECT count(*) FROM composition_members m WHERE m.composition_id = c.id),
  (SELECT count(*) FROM composition_trials t WHERE t.composition_id = c.id),
  (SELECT min(objective) FROM composition_trials t WHERE t.composition_id = c.id)
FROM compositions c ORDER BY c.id DESC
)sql");
  std::vector<CompositionRow> rows;
  while (q.next())
    rows.push_back({q.integer(0), q.text(1), q.text(2), q.text(3), q.text(4), q.text(5), q.text(6), q.integer(7),
                    q.integer(8), q.real(9)});
  return rows;
}

void Store::delete_composition(std::int64_t composition_id) {
  StoreConnection& d = *conn_;
  d.doing = "deleting composition " + std::to_string(composition_id);
  Transaction t(d);
  if (Statement(d, "DELETE FROM compositions WHERE id = ?").with(composition_id).run() == 0)
    missing(d, "composition", composition_id);
  t.commit();
}

namespace {

// Reads the derivations `where` selects (with its one bound id, or none), inputs included.
std::vector<Derivation> read_derivations(StoreConnection& d, const std::string& where,
                                         std::optional<std::int64_t> id) {
  Statement q(d,
              "SELECT v.id, v.tool, v.created, v.params_json, v.report_json, v.output_adapter_id, a.name, "
              "v.output_path FROM derivations v LEFT JOIN adapters a ON a.id = v.output_adapter_id " +
                  where + " ORDER BY v.id DESC");
  if (id) q.with(*id);
  std::vector<Derivation> out;
  while (q.next()) {
    Derivation v;
    v.id = q.integer(0);
    v.tool = q.text(1);
    v.created = q.text(2);
    v.params_json = q.text(3);
    v.report_json = q.text(4);
    v.output_adapter_id = q.optional_integer(5);
    v.output_name = q.text(6);
    v.output_path = q.text(7);
    out.push_back(std::move(v));
  }
  Statement in(d,
               "SELECT i.adapter_id, i.run_id, i.ratio, a.name FROM derivation_inputs i "
               "LEFT JOIN adapters a ON a.id = i.adapter_id WHERE i.derivation_id = ? ORDER BY i.position");
  for (Derivation& v : out) {
    in.with(v.id);
    while (in.next()) {
      DerivationInput x{in.optional_integer(0), in.optional_integer(1), in.real(2), in.text(3)};
      if (x.label.empty()) x.label = x.run_id ? "run " + std::to_string(*x.run_id) : "(deleted)";
      v.inputs.push_back(std::move(x));
    }
    in.run();
  }
  return out;
}

constexpr const char* kComparisonSelect = R"sql(
SELECT c.id, c.name, c.kind, c.status, c.created, c.ended, c.design_json, c.report_markdown, c.error,
  (SELECT count(*) FROM comparison_runs r WHERE r.comparison_id = c.id)
FROM comparisons c
)sql";

ComparisonRecord read_comparison(const Statement& q) {
  return {q.integer(0), q.text(1), q.text(2), q.text(3), q.text(4), q.text(5), q.text(6), q.text(7), q.text(8),
          q.integer(9)};
}

}  // namespace

Derivation Store::record_derivation(Derivation v, const KeptAdapter* adapter) {
  StoreConnection& d = *conn_;
  d.doing = "recording the " + v.tool + " job" + (adapter ? " and keeping adapter " + in_quotes(adapter->name) : "");
  Transaction t(d);
  for (std::size_t i = 0; i < v.inputs.size(); ++i) {
    const DerivationInput& x = v.inputs[i];
    if (x.adapter_id && !exists(d, "SELECT 1 FROM adapters WHERE id = ?", *x.adapter_id))
      missing(d, "adapter", *x.adapter_id);
    if (x.run_id && !exists(d, "SELECT 1 FROM runs WHERE id = ?", *x.run_id)) missing(d, "run", *x.run_id);
  }
  if (adapter) {
    // An adapter extracted from a run belongs to that run, as a trained one does.
    std::optional<std::int64_t> run;
    for (const DerivationInput& x : v.inputs)
      if (x.run_id && !x.adapter_id) run = x.run_id;
    v.output_adapter_id = insert_adapter(d, adapter->name, run, adapter->state, adapter->task, NAN, NAN, "");
    v.output_name = adapter->name;
  }
  v.created = iso_now();
  Statement(d,
            "INSERT INTO derivations (tool, created, params_json, report_json, output_adapter_id, output_path) "
            "VALUES (?, ?, ?, ?, ?, ?)")
      .with(v.tool, v.created, v.params_json, v.report_json, v.output_adapter_id,
            v.output_path.empty() ? std::optional<std::string>() : v.output_path)
      .run();
  v.id = sqlite3_last_insert_rowid(d.db);
  Statement input(d,
                  "INSERT INTO derivation_inputs (derivation_id, position, adapter_id, run_id, ratio) "
                  "VALUES (?, ?, ?, ?, ?)");
  for (std::size_t i = 0; i < v.inputs.size(); ++i) {
    const DerivationInput& x = v.inputs[i];
    input.with(v.id, static_cast<std::int64_t>(i), x.adapter_id, x.run_id, x.ratio).run();
  }
  t.commit();
  return v;
}

std::vector<Derivation> Store::list_derivations() {
  StoreConnection& d = *conn_;
  d.doing = "listing the library jobs";
  return read_derivations(d, "", std::nullopt);
}

AdapterLineage Store::adapter_lineage(std::int64_t adapter_id) {
  StoreConnection& d = *conn_;
  d.doing = "reading the lineage of adapter " + std::to_string(adapter_id);
  AdapterLineage l;
  std::optional<std::int64_t> run;
  {
    Statement q(d, "SELECT run_id FROM adapters WHERE id = ?");
    q.with(adapter_id);
    if (!q.next()) missing(d, "adapter", adapter_id);
    run = q.optional_integer(0);
  }
  if (run) l.runs = run_ancestry(*run);
  d.doing = "reading the lineage of adapter " + std::to_string(adapter_id);
  std::vector<Derivation> made = read_derivations(d, "WHERE v.output_adapter_id = ?", adapter_id);
  if (!made.empty()) l.made_by = std::move(made.front());
  l.used_by = read_derivations(
      d, "WHERE v.id IN (SELECT derivation_id FROM derivation_inputs WHERE adapter_id = ?)", adapter_id);
  Statement q(d,
              "SELECT DISTINCT c.id, c.name FROM composition_members m JOIN compositions c ON c.id = m.composition_id "
              "WHERE m.adapter_id = ? ORDER BY c.id");
  q.with(adapter_id);
  while (q.next()) l.compositions.emplace_back(q.integer(0), q.text(1));
  return l;
}

std::int64_t Store::create_comparison(const std::string& name, const std::string& kind,
                                      const std::string& design_json) {
  StoreConnection& d = *conn_;
  d.doing = "saving " + kind + " " + in_quotes(name);
  if (kind != "compare" && kind != "study")
    throw StoreError(d.file + ": a comparison's kind is compare or study, not " + in_quotes(kind));
  Transaction t(d);
  Statement(d, "INSERT INTO comparisons (name, kind, status, created, design_json) VALUES (?, ?, 'running', ?, ?)")
      .with(name, kind, iso_now(), design_json)
      .run();
  const std::int64_t id = sqlite3_last_insert_rowid(d.db);
  t.commit();
  return id;
}

std::int64_t Store::add_comparison_run(std::int64_t comparison_id, const ComparisonSample& r) {
  StoreConnection& d = *conn_;
  d.doing = "recording a run of comparison " + std::to_string(comparison_id);
  if (r.phase != "lr-pick" && r.phase != "seed")
    throw StoreError(d.file + ": a comparison run's phase is lr-pick or seed, not " + in_quotes(r.phase));
  Transaction t(d);
  if (!exists(d, "SELECT 1 FROM comparisons WHERE id = ?", comparison_id)) missing(d, "comparison", comparison_id);
  // A run deleted meanwhile is recorded without its id, its measurements kept.
  std::optional<std::int64_t> run_id = r.run_id;
  if (run_id && !exists(d, "SELECT 1 FROM runs WHERE id = ?", *run_id)) run_id.reset();
  Statement(d,
            "INSERT INTO comparison_runs (comparison_id, run_id, arm, phase, seed, lr, status, eval_loss, accuracy, "
            "tokens_per_s, peak_bytes, trainable_params, measures_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .with(comparison_id, run_id, r.arm, r.phase, static_cast<std::int64_t>(r.seed), r.lr, r.status, r.eval_loss,
            r.accuracy, r.tokens_per_s, r.peak_bytes, r.trainable_params, sample_measures_json(r))
      .run();
  const std::int64_t id = sqlite3_last_insert_rowid(d.db);
  t.commit();
  return id;
}

void Store::finish_comparison(std::int64_t comparison_id, const std::string& status, const std::string& report_markdown,
                              std::span<const ComparisonFile> files, const std::string& error) {
  StoreConnection& d = *conn_;
  d.doing = "finishing comparison " + std::to_string(comparison_id);
  if (status != "finished" && status != "stopped" && status != "failed")
    throw StoreError(d.file + ": a comparison ends finished, stopped or failed, not " + in_quotes(status));
  Transaction t(d);
  if (Statement(d, "UPDATE comparisons SET status = ?, ended = ?, report_markdown = ?, error = ? WHERE id = ?")
          .with(status, iso_now(), report_markdown, error.empty() ? std::optional<std::string>() : error, comparison_id)
          .run() == 0)
    missing(d, "comparison", comparison_id);
  Statement file(d, "INSERT OR REPLACE INTO comparison_files (comparison_id, name, bytes) VALUES (?, ?, ?)");
  for (const ComparisonFile& f : files) file.with(comparison_id, f.name, f.bytes).run();
  t.commit();
}

std::vector<ComparisonRecord> Store::list_comparisons() {
  StoreConnection& d = *conn_;
  d.doing = "listing the comparisons";
  Statement q(d, std::string(kComparisonSelect) + " ORDER BY c.id DESC");
  std::vector<ComparisonRecord> rows;
  while (q.next()) rows.push_back(read_comparison(q));
  return rows;
}

ComparisonRecord Store::get_comparison(std::int64_t comparison_id) {
  StoreConnection& d = *conn_;
  d.doing = "reading comparison " + std::to_string(comparison_id);
  Statement q(d, std::string(kComparisonSelect) + " WHERE c.id = ?");
  q.with(comparison_id);
  if (!q.next()) missing(d, "comparison", comparison_id);
  return read_comparison(q);
}

std::vector<ComparisonSample> Store::comparison_runs(std::int64_t comparison_id) {
  StoreConnection& d = *conn_;
  d.doing = "reading the runs of comparison " + std::to_string(comparison_id);
  Statement q(d,
              "SELECT id, run_id, arm, phase, seed, lr, status, eval_loss, accuracy, tokens_per_s, peak_bytes, "
              "trainable_params, measures_json FROM comparison_runs WHERE comparison_id = ? ORDER BY id");
  q.with(comparison_id);
  std::vector<ComparisonSample> rows;
  while (q.next()) {
    ComparisonSample r;
    r.id = q.integer(0);
    r.run_id = q.optional_integer(1);
    r.arm = q.text(2);
    r.phase = q.text(3);
    r.seed = static_cast<std::uint64_t>(q.integer(4));
    r.lr = q.real(5);
    r.status = q.text(6);
    r.eval_loss = q.real(7);
    r.accuracy = q.real(8);
    r.tokens_per_s = q.real(9);
    r.peak_bytes = q.integer(10);
    r.trainable_params = q.integer(11);
    read_sample_measures(q.text(12), d.file + ": comparison " + std::to_string(comparison_id) + " row " +
                                         std::to_string(r.id), r);
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<ComparisonFile> Store::comparison_files(std::int64_t comparison_id) {
  StoreConnection& d = *conn_;
  d.doing = "reading the files of comparison " + std::to_string(comparison_id);
  Statement q(d, "SELECT name, bytes FROM comparison_files WHERE comparison_id = ? ORDER BY name");
  q.with(comparison_id);
  std::vector<ComparisonFile> files;
  while (q.next()) files.push_back({q.text(0), q.blob(1)});
  return files;
}

void Store::delete_comparison(std::int64_t comparison_id) {
  StoreConnection& d = *conn_;
  d.doing = "deleting comparison " + std::to_string(comparison_id);
  Transaction t(d);
  if (Statement(d, "DELETE FROM comparisons WHERE id = ?").with(comparison_id).run() == 0)
    missing(d, "comparison", comparison_id);
  t.commit();
}

std::int64_t Store::save_predictions(const PredictionSet& p) {
  StoreConnection& d = *conn_;
  d.doing = "saving predictions over " + in_quotes(p.data);
  Transaction t(d);
  if (p.run_id && !exists(d, "SELECT 1 FROM runs WHERE id = ?", *p.run_id)) missing(d, "run", *p.run_id);
  if (p.adapter_id && !exists(d, "SELECT 1 FROM adapters WHERE id = ?", *p.adapter_id))
    missing(d, "adapter", *p.adapter_id);
  const infer::PredictionSummary s = infer::summarize(p.rows);
  Statement(d,
            "INSERT INTO predictions (run_id, adapter_id, adapter, data, created, examples, loss, exact_match, "
            "rouge_l) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
      .with(p.run_id, p.adapter_id, p.adapter, p.data, iso_now(), s.examples, s.loss, s.exact_match, s.rouge_l)
      .run();
  const std::int64_t id = sqlite3_last_insert_rowid(d.db);
  Statement row(d,
                "INSERT INTO prediction_rows (prediction_id, position, prompt, reference, prediction, loss, exact, "
                "rouge_l) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  for (std::size_t i = 0; i < p.rows.size(); ++i) {
    const infer::Prediction& r = p.rows[i];
    row.with(id, static_cast<std::int64_t>(i), r.prompt, r.reference, r.prediction, r.loss, r.exact ? 1 : 0, r.rouge_l)
        .run();
  }
  t.commit();
  return id;
}

namespace {

constexpr const char* kPredictionSelect =
    "SELECT id, run_id, adapter_id, adapter, data, created, examples, loss, exact_match, rouge_l FROM predictions";

PredictionSet read_prediction_set(const Statement& q) {
  PredictionSet p;
  p.id = q.integer(0);
  p.run_id = q.optional_integer(1);
  p.adapter_id = q.optional_integer(2);
  p.adapter = q.text(3);
  p.data = q.text(4);
  p.created = q.text(5);
  p.summary = {q.integer(6), q.real(7), q.real(8), q.real(9)};
  return p;
}

}  // namespace

std::vector<PredictionSet> Store::list_predictions(std::optional<std::int64_t> run_id) {
  StoreConnection& d = *conn_;
  d.doing = "listing predictions";
  Statement q(d, std::string(kPredictionSelect) + (run_id ? " WHERE run_id = ?" : "") + " ORDER BY id DESC");
  if (run_id) q.with(*run_id);
  std::vector<PredictionSet> out;
  while (q.next()) out.push_back(read_prediction_set(q));
  return out;
}

PredictionSet Store::load_predictions(std::int64_t prediction_id) {
  StoreConnection& d = *conn_;
  d.doing = "loading predictions " + std::to_string(prediction_id);
  Statement q(d, std::string(kPredictionSelect) + " WHERE id = ?");
  q.with(prediction_id);
  if (!q.next()) missing(d, "prediction set", prediction_id);
  PredictionSet p = read_prediction_set(q);
  Statement rows(d,
                 "SELECT prompt, reference, prediction, loss, exact, rouge_l FROM prediction_rows "
                 "WHERE prediction_id = ? ORDER BY position");
  rows.with(prediction_id);
  while (rows.next()) p.rows.push_back({rows.text(0), rows.text(1), rows.text(2), rows.real(3), rows.integer(4) != 0, rows.real(5)});
  return p;
}

}  // namespace lwb

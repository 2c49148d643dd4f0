#pragma once
// The workbench's SQLite file: experiments, runs with their metric curves and
// memory snapshots, the adapter library (PEFT blobs) and LoRAHub compositions.
//
// One Store is one connection and is used from one thread at a time; a second
// thread (or process) opens its own Store on the same file, and WAL mode lets
// readers work while one writer commits. Every write is a bound-parameter
// statement inside a transaction. Problems are StoreError, naming the file.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/infer/predict.h"
#include "core/train/compare_run.h"
#include "core/train/events.h"
#include "core/train/experiment_config.h"

namespace lwb {

struct StoreConnection;  // the SQLite connection and its prepared statements

// Absent measurements (a step without evaluation, a run that never finished)
// read back as NaN.
struct RunRow {
  std::int64_t id = 0;
  std::int64_t experiment_id = 0;
  std::string experiment;  // the experiment's name
  std::string method;      // "lora", "rslora", "dora", ... from the config
  std::string task;        // the built-in task, "pretrain", or the data file
  std::string status;      // "queued", "running", "finished", "stopped", "failed", "diverged"
  std::string device;
  std::string started, ended;  // ISO 8601 UTC ("2025-01-31T12:00:00Z"); empty if not yet
  std::int64_t steps_done = 0;
  std::int64_t total_steps = 0;
  double final_train_loss = NAN;
  double final_eval_loss = NAN;
  double final_accuracy = NAN;
  double tokens_per_s = NAN;
  std::int64_t peak_bytes = 0;
  std::string error;  // for failed runs; for diverged ones, the step and reason
  // Ended (stopped, killed, failed, diverged) with a saved state to resume from.
  bool resumable = false;
  // The run this one resumed (it continues that run's curve); empty for a
  // fresh run or when the parent was deleted.
  std::optional<std::int64_t> parent_run_id;
  // A full fine-tuning run whose trained weights are kept (Store::model_file).
  bool has_model = false;
};

struct RunDetail {
  RunRow row;
  std::string config_json;    // the experiment's ExperimentConfig::to_json()
  std::string run_info_json;  // what the trainer reported at the start; empty while queued
  std::string summary_json;   // run_result_json() of the finished run; empty before
  // environment_to_json() of what the run's numbers depend on (device, BLAS
  // kernels, threads, build); empty while queued and for runs recorded
  // before schema 4.
  std::string environment_json;
  // Its saved resumable state (Store::state_file) when there is one: a run
  // stopped, killed or ended by an error resumes from it.
  std::filesystem::path state_file;
};

struct MetricRow {
  std::int64_t step = 0;
  double loss = NAN;
  double eval_loss = NAN;
  double accuracy = NAN;
  double lr = NAN;
  double grad_norm = NAN;
  double tokens_per_s = NAN;
  double elapsed_s = NAN;
  // Per layer (index = layer), at the steps the trainer samples them; empty
  // elsewhere.
  std::vector<double> layer_grad_norms;
};

struct MemorySnapshotRow {
  std::int64_t step = 0;  // 0: the ledger at the start of the run
  LedgerSnapshot snapshot;
};

struct VariantEventRow {
  std::int64_t step = 0;
  VariantEvent event;
};

struct RunSampleRow {
  std::int64_t step = 0;
  TrainingSample sample;
};

struct AdapterRow {
  std::int64_t id = 0;
  std::optional<std::int64_t> run_id;  // empty for imported adapters and deleted runs
  std::string name;
  std::string variant;  // method_display_name() of the adapter's config
  int rank = 0;
  std::string targets;  // "q,v"
  std::string base_model;
  std::string base_fingerprint;
  std::string task;
  double eval_loss = NAN;
  double eval_accuracy = NAN;
  std::string created;
  std::int64_t bytes = 0;  // size of the safetensors blob
  // Why the run that made it diverged ("diverged at step 57: ..."); empty
  // for an adapter of a sound run or an import.
  std::string diverged;
};

// An adapter kept in the library when its run ends.
struct KeptAdapter {
  std::string name;
  AdapterState state;
  std::string task;
};

// What renewing a run's lease found.
enum class Lease {
  Held,     // renewed
  Revived,  // another process had taken the run for dead (marked it interrupted); it is live again
  Lost,     // the run was deleted or ended by another process: nothing more is recorded for it
};

struct CompositionMember {
  std::int64_t adapter_id = 0;
  double weight = 0;
  double x = 0, y = 0;  // position on the canvas
};

struct CompositionTrial {
  std::int64_t iteration = 0;
  std::vector<double> weights;  // one per member, in member order
  double objective = NAN;
};

struct Composition {
  std::int64_t id = 0;  // 0 until saved
  std::string name;
  std::string mode;       // merge mode: "lorahub", "linear", "cat", "svd"
  std::string optimizer;  // weight search: "cobyla", "cma-es", "none"
  std::string base_fingerprint;
  std::string target_task;
  std::string created;  // set by the store
  // The caller's documents, kept as given.
  std::string scores_json = "{}";
  std::string canvas_json = "{}";
  std::vector<CompositionMember> members;  // in canvas order
  std::vector<CompositionTrial> trials;    // the search trace
};

// What a library tool (core/compose/library_jobs.h) did: its inputs (adapters
// with a ratio, or a run), its parameters and report as the tool's JSON, and
// its output: an adapter in the library, a file, or nothing (a verification).
struct DerivationInput {
  std::optional<std::int64_t> adapter_id;  // empty once that adapter is deleted
  std::optional<std::int64_t> run_id;      // empty once that run is deleted
  double ratio = NAN;                      // merge weight; NaN when none
  std::string label;                       // read back: the adapter's name or "run N"
};

struct Derivation {
  std::int64_t id = 0;  // 0 until recorded
  std::string tool;     // "merge", "resize", "extract", "verify"
  std::string created;  // set by the store
  std::string params_json = "{}";
  std::string report_json = "{}";
  std::optional<std::int64_t> output_adapter_id;
  std::string output_name;  // read back: the output adapter's name
  std::string output_path;  // a file the tool wrote (a merged base), or ""
  std::vector<DerivationInput> inputs;
};

// Where an adapter comes from and where it went.
struct AdapterLineage {
  // The run that trained it, then the runs that run resumed, newest first.
  std::vector<std::int64_t> runs;
  std::optional<Derivation> made_by;  // the tool that made it
  std::vector<Derivation> used_by;    // tools that took it as an input
  // Compositions it is a member of: id and name.
  std::vector<std::pair<std::int64_t, std::string>> compositions;
};

// A report's file (the markdown's plots), stored with its comparison.
struct ComparisonFile {
  std::string name;  // "quality.png"
  std::vector<std::uint8_t> bytes;
};

struct ComparisonRecord {
  std::int64_t id = 0;
  std::string name;
  std::string kind;    // "compare" or "study"
  std::string status;  // "running", "finished", "stopped", "failed"
  std::string created, ended;
  std::string design_json;  // what was to be run (arms, seeds, grid), as the caller wrote it
  std::string report_markdown;
  std::string error;
  std::int64_t runs = 0;  // comparison_runs rows
};

struct CompositionRow {
  std::int64_t id = 0;
  std::string name, mode, optimizer, base_fingerprint, target_task, created;
  std::int64_t members = 0;
  std::int64_t trials = 0;
  double best_objective = NAN;  // lowest objective over the trials
};

// Predictions of an adapter (or the base) over a data file, with the run
// they score when there is one.
struct PredictionSet {
  std::int64_t id = 0;  // set by the store
  std::optional<std::int64_t> run_id, adapter_id;
  std::string adapter;  // its name; "base" for the base alone
  std::string data;     // the data file as given
  std::string created;  // set by the store
  infer::PredictionSummary summary;  // as stored; save_predictions computes it from the rows
  std::vector<infer::Prediction> rows;  // in the data's order
};

class Store {
 public:
  // Schema version this program writes; older files are migrated on open.
  static constexpr int kSchemaVersion = 7;
  // A queued or running run is live while its owner renews its lease (a
  // heartbeat time, with the owner's host, boot and pid namespace) at least
  // this often. A PID alone cannot tell: another PID namespace (a container,
  // a sandbox, another host on a shared disk) sees other processes.
  static constexpr double kLeaseSeconds = 60;

  // $LWB_DB if set, else <user data dir>/workbench.sqlite3.
  static std::filesystem::path default_path();

  // Opens (creating the file and its folder if needed) and migrates. A file
  // from a newer program is refused before anything is written to it.
  explicit Store(const std::filesystem::path& file,
                 std::chrono::milliseconds busy_timeout = std::chrono::seconds(5));
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& file() const { return file_; }
  // Runs that a killed process had left queued or running (their lease has
  // lapsed), marked failed when this Store opened the file.
  int interrupted_runs() const { return interrupted_runs_; }
  // Where run `run_id` keeps its resumable state: a file beside the store.
  std::filesystem::path state_file(std::int64_t run_id) const;
  // Where a full fine-tuning run's trained weights are kept (a base
  // checkpoint beside the store; its owner writes it when the run ends), and
  // where library tools write merged bases.
  std::filesystem::path model_file(std::int64_t run_id) const;
  std::filesystem::path models_dir() const;

  std::int64_t create_experiment(const std::string& name, const ExperimentConfig& config);

  // A run waiting to start (e.g. for its base to be pretrained), owned by
  // this process: its lease must be renewed from now on (StoreSink does).
  // parent_run_id: the run it resumes, whose curve it continues.
  std::int64_t queue_run(std::int64_t experiment_id, const std::string& device,
                         std::optional<std::int64_t> parent_run_id = std::nullopt);
  // Marks a queued run running and records what the trainer reported.
  void start_run(std::int64_t run_id, const RunInfo& info);
  // queue_run + start_run in one transaction.
  std::int64_t create_run(std::int64_t experiment_id, const std::string& device, const RunInfo& info);
  // Metrics, memory snapshots, variant events and samples of consecutive steps, in one
  // transaction; the run's steps_done follows the last event and its lease is
  // renewed.
  void append_steps(std::int64_t run_id, std::span<const StepEvent> events);
  Lease renew_lease(std::int64_t run_id);
  // Records the run's end and, in the same transaction, keeps `adapter` (if
  // given) in the library, marked when the run diverged: a run is never
  // recorded as ended without the adapter it made. A finished run's
  // resumable state is removed then. The final evaluation (taken when a run
  // is stopped, or at the end when no scheduled one fell on the last step)
  // joins the metrics at the last step. Returns the adapter's id, or 0.
  std::int64_t finish_run(std::int64_t run_id, const RunResult& result, const KeptAdapter* adapter = nullptr);

  std::vector<RunRow> list_runs();  // newest first
  RunDetail get_run(std::int64_t run_id);
  std::vector<MetricRow> run_metrics(std::int64_t run_id);
  std::vector<MemorySnapshotRow> run_memory_snapshots(std::int64_t run_id);
  std::vector<VariantEventRow> run_variant_events(std::int64_t run_id);
  // Its samples during training (train.samples), by step then prompt.
  std::vector<RunSampleRow> run_samples(std::int64_t run_id);
  // The run, the run it resumed, and so on back to a fresh run: ids, newest
  // first (a chain broken by a deleted run ends there).
  std::vector<std::int64_t> run_ancestry(std::int64_t run_id);
  // Its metrics, snapshots, events, resumable state and kept weights go with
  // it; its adapters stay in the library without a run, and runs that resumed
  // it lose their parent. Refused while the run is live (queued or running
  // with a fresh lease).
  void delete_run(std::int64_t run_id);

  // Keeps the adapter as PEFT files (adapter_config.json text + safetensors
  // blob). Names are unique. The blobs are read back before the transaction
  // commits: an adapter that would not load again is not stored at all.
  std::int64_t save_adapter(const std::string& name, std::optional<std::int64_t> run_id,
                            const AdapterState& state, const std::string& task, double eval_loss,
                            double eval_accuracy);
  AdapterState load_adapter(std::int64_t adapter_id);
  std::optional<std::int64_t> find_adapter(const std::string& name);
  std::vector<AdapterRow> list_adapters();  // newest first
  // Refused while a composition uses the adapter.
  void delete_adapter(std::int64_t adapter_id);

  // Records a library tool's job; with `adapter` the new adapter is kept in
  // the same transaction and becomes the output (adapter->name must be free).
  // Every input must exist. Returns the derivation with its ids set.
  Derivation record_derivation(Derivation d, const KeptAdapter* adapter = nullptr);
  std::vector<Derivation> list_derivations();  // newest first
  AdapterLineage adapter_lineage(std::int64_t adapter_id);

  // Inserts when c.id is 0, else replaces the stored composition with its
  // members and trials. Returns the id.
  std::int64_t save_composition(const Composition& c);
  Composition load_composition(std::int64_t composition_id);
  std::vector<CompositionRow> list_compositions();  // newest first
  void delete_composition(std::int64_t composition_id);

  // Keeps predictions with their rows in one transaction; StoreError when
  // the run or adapter they name is not in the store. Returns the id.
  std::int64_t save_predictions(const PredictionSet& predictions);
  // Without their rows, newest first; of one run, or all.
  std::vector<PredictionSet> list_predictions(std::optional<std::int64_t> run_id = std::nullopt);
  PredictionSet load_predictions(std::int64_t prediction_id);

  // Comparisons and studies. A comparison is created running; each of its
  // runs is added as it ends (a killed comparison keeps the rows it made);
  // finishing stores the report and its files.
  std::int64_t create_comparison(const std::string& name, const std::string& kind, const std::string& design_json);
  // A run of the comparison as it ended (ComparisonSample::id is ignored;
  // the new row's id is returned). A run_id no longer in the history is
  // recorded as none, the measurements kept.
  std::int64_t add_comparison_run(std::int64_t comparison_id, const ComparisonSample& row);
  void finish_comparison(std::int64_t comparison_id, const std::string& status, const std::string& report_markdown,
                         std::span<const ComparisonFile> files, const std::string& error = "");
  std::vector<ComparisonRecord> list_comparisons();  // newest first
  ComparisonRecord get_comparison(std::int64_t comparison_id);
  std::vector<ComparisonSample> comparison_runs(std::int64_t comparison_id);  // in the order added
  std::vector<ComparisonFile> comparison_files(std::int64_t comparison_id);   // by name
  // With its rows and files; its runs stay in the history.
  void delete_comparison(std::int64_t comparison_id);

 private:
  std::filesystem::path file_;
  std::unique_ptr<StoreConnection> conn_;
  int interrupted_runs_ = 0;
};

}  // namespace lwb

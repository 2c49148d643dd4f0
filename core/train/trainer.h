#pragma once
// Trainer: builds backend -> data -> model -> adapters -> optimiser from an
// ExperimentConfig and runs the step loop, reporting to a TrainerSink. Stop and
// pause are atomics polled at step boundaries; a stopped run is a valid result.
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/adapters/variant.h"
#include "core/data/dataset.h"
#include "core/data/tokenizer.h"
#include "core/tensor/ledger.h"
#include "core/model/model.h"
#include "core/optim/adamw.h"
#include "core/source/model_source.h"
#include "core/train/events.h"
#include "core/train/experiment_config.h"

namespace lwb {

struct DataSetup;
class TrainingSampler;

// The data directory and notices (SourceEnvironment: CPU fallback, building
// a missing base model, ...), and the progress of a base pretrained on demand.
struct TrainerEnvironment : SourceEnvironment {
  TrainerSink* pretrain_sink = nullptr;
  // Pretrains a built-in preset's base when it is missing or was made by
  // another recipe (ensure_base_model).
  std::filesystem::path builtin_base(const std::string& preset) const override;
};

struct RunControl {
  const std::atomic<bool>* stop = nullptr;
  const std::atomic<bool>* pause = nullptr;
};

class Trainer {
 public:
  explicit Trainer(ExperimentConfig config, TrainerEnvironment env = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Validates and builds everything; throws ConfigError, FormatError,
  // DataError, OutOfMemoryError, DeviceError. Called by run() if needed.
  void prepare(const RunControl& control = {});
  // Trains to config.train.steps or until stopped. A non-finite loss or
  // gradient norm, a loss far above the start's or vanishing gradients end
  // it as Diverged (core/train/divergence.h); engine errors during the loop
  // end it as Failed with the message (the sink still gets on_finish);
  // errors in prepare() propagate. On the CPU the run takes its share of the
  // cores with the other runs training on them (core/cpu/cpu_share.h) unless
  // train.threads says how many; a resumed run uses as many as before.
  RunResult run(TrainerSink& sink, const RunControl& control = {});
  // Held-out loss and exact-match accuracy over up to max_examples examples
  // (core/eval/evaluation.h).
  EvalResult evaluate(int max_examples);

  // A stopped run continues from its saved state: trainable parameters, AdamW
  // moments and step, and the position in the data. Resuming and running to
  // the end gives the same losses as an uninterrupted run. Not available for
  // variants whose descriptor says they are not resumable (ConfigError).
  void save_state(const std::filesystem::path& file);
  // Where run() keeps the resumable state (empty, the default: nowhere):
  // saved every train.state_every_steps and train.state_every_minutes and
  // when stopped, so a crash or a kill resumes from the last save. Whoever
  // records the run's end removes it (Store::finish_run does for finished
  // runs). Not for variants that are not resumable.
  void set_state_file(std::filesystem::path file) { state_file_ = std::move(file); }
  // The trained adapter as PEFT would save it, finished by the variant's
  // controller (VariantController::finish_adapter_state).
  AdapterState adapter_state() const;
  void resume(const std::filesystem::path& file);

  const ExperimentConfig& config() const { return config_; }
  Model& model() { return *model_; }
  Backend& backend() { return *backend_; }
  MemoryLedger& ledger() { return ledger_; }
  const data::Dataset& dataset() const { return dataset_; }
  const data::Tokenizer& tokenizer() const { return *tokenizer_; }
  // Where the base came from (after prepare()).
  const ResolvedSource& source() const { return source_; }
  const std::string& base_fingerprint() const { return base_fingerprint_; }
  std::int64_t steps_done() const { return steps_done_; }
  // The variant's step-level controller; nullptr for variants without one.
  VariantController* variant() { return variant_.get(); }
  AdamW& optimizer() { return *optimizer_; }

 private:
  void load_data(const DataSetup& setup);
  // Reads the configured base (any source, or random init) into `model`.
  void load_base_into(Model& model, const RunControl& control);
  // Loads the base into model_ and sets base_fingerprint_.
  void load_base(const RunControl& control);
  // Saves to state_file_; a failure (a full disk) is a notice, not the end
  // of the run.
  void save_state_for_resume();
  std::uint64_t step_seed(std::int64_t step) const;

  ExperimentConfig config_;
  TrainerEnvironment env_;
  std::unique_ptr<Backend> backend_;
  MemoryLedger ledger_;
  ResolvedSource source_;
  std::unique_ptr<data::Tokenizer> tokenizer_;
  std::int32_t pad_id_ = 0;  // data::batch_pad_id(*tokenizer_)
  data::Dataset dataset_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<VariantController> variant_;
  std::unique_ptr<Evaluator> evaluator_;
  std::unique_ptr<data::BatchSampler> sampler_;
  std::unique_ptr<TrainingSampler> samples_;  // train.samples > 0
  data::Batch batch_;
  std::string base_fingerprint_;
  std::filesystem::path state_file_;
  int threads_ = 0;          // the CPU threads run() uses (0: not on the CPU)
  int resumed_threads_ = 0;  // those of the run resume() continues
  std::int64_t steps_done_ = 0;
  bool prepared_ = false;
};

// Pretrains the base of a built-in preset on the generic corpus and stores it
// (atomically) in the base cache (core/source/base_cache.h); returns its path. Throws if the run does
// not finish, leaving any previous base untouched.
std::filesystem::path pretrain_base_model(const std::string& preset, const TrainerEnvironment& env,
                                          const RunControl& control = {});
// Identifies how a preset's base is pretrained (config + corpus version).
std::string pretrain_recipe(const std::string& preset);
// Whether the preset's cached base exists and was made by today's recipe, so
// that nothing is pretrained first. data_dir empty: user_data_dir().
bool base_model_ready(const std::string& preset, const std::filesystem::path& data_dir);
// Whether `config` pretrains its preset's base by today's recipe (the
// "pretrain-<preset>" preset under any name, resumed or not): its finished
// run can become the cached base.
bool is_base_pretraining(const ExperimentConfig& config);
// Keeps a finished pretraining run's model as its preset's cached base
// (atomically, with the recipe); returns the path. ConfigError for another
// kind of run, Error for a run that did not finish (nothing is saved).
std::filesystem::path save_pretrained_base(Trainer& trainer, const RunResult& r, const std::filesystem::path& data_dir);
// The cached base, pretrained first when missing or made by another recipe (tiny: ~2 minutes on 2 cores).
std::filesystem::path ensure_base_model(const std::string& preset, const TrainerEnvironment& env,
                                        const RunControl& control = {});

}  // namespace lwb

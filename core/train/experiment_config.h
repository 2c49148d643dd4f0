#pragma once
// ExperimentConfig: the one description of a run, built by the form, a preset
// file or the CLI. It is a versioned JSON document; every field has a dotted
// key ("adapter.r") used by JSON, `--set key=value` and the window's form, and
// validate() gives a message per bad field.
#include <cstdint>
#include <string>
#include <vector>

#include "core/adapters/adapter_config.h"
#include "core/optim/adamw.h"
#include "core/optim/schedule.h"
#include "core/source/source_settings.h"

namespace lwb {

struct DataConfig {
  std::string kind = "task";  // task | jsonl | text | pretrain
  std::string task = "uppercase";
  std::string path;            // jsonl / text file
  // jsonl: auto, alpaca, messages, conversations, prompt-completion or text
  // (core/data/instruction_data.h).
  std::string format = "auto";
  std::string prompt_field = "prompt";
  std::string completion_field = "completion";
  // What the loss covers: "assistant" (the completion, the assistant's turns)
  // or "all" (every token).
  std::string loss_on = "assistant";
  // Examples longer than train.seq_len + 1 tokens: "drop" or "truncate".
  std::string overlong = "drop";
  int n_train = 2000;          // generated task examples
  int n_heldout = 200;
  // A validation split apart from train and held-out (test), for choices
  // such as a comparison's learning rate: generated for tasks, carved out of
  // the training rows for files. 0: none.
  int n_validation = 0;
  double heldout_fraction = 0.1;  // for files
  std::int64_t corpus_bytes = 2'000'000;  // pretrain corpus size
  // Generation and split seed, apart from train.seed so that runs with
  // different seeds still see the same examples.
  std::uint64_t seed = 1234;
};

// The most prompts train.samples may ask for.
inline constexpr int kMaxTrainingSamples = 16;

struct TrainConfig {
  std::int64_t steps = 300;
  int batch = 16;
  int seq_len = 64;
  std::uint64_t seed = 1;
  int eval_every = 50;        // 0: only at the end
  int eval_examples = 200;    // held-out examples per evaluation
  // What evaluations score: "test" (the held-out split) or "validation"
  // (data.n_validation examples). A validation run never loads the test
  // split at all, so nothing it reports can have looked at it.
  std::string eval_split = "test";
  std::string device = "cpu"; // cpu | auto | cuda:N
  // CPU threads: 0 takes this run's share of the machine's threads (divided
  // among the runs training on it when this one starts, see
  // core/cpu/cpu_share.h); N uses N (at most OMP_NUM_THREADS), whatever else
  // runs. The losses depend on the count, so equal counts repeat a run.
  int threads = 0;
  // Resumable state is saved (atomically) every this many steps and every
  // this many minutes, whichever comes first (0: not by that measure), so a
  // run killed or crashed resumes from its last save, not from the start.
  std::int64_t state_every_steps = 100;
  double state_every_minutes = 5;
  // Guards that end a run as "diverged": the loss averaged over 10 steps
  // above divergence_factor times the loss of the first 10 (0: off), or a
  // zero gradient norm for collapse_steps steps in a row (0: off). A
  // non-finite loss or gradient norm always ends it.
  double divergence_factor = 4;
  int collapse_steps = 20;
  // Samples during training: the first `samples` prompts of the held-out
  // split (0: none) answered every sample_every steps and at the last step
  // by the model as it is then, up to sample_max_new tokens, greedy or
  // sampled with the run's seed (core/train/training_samples.h).
  int samples = 0;
  int sample_every = 50;
  int sample_max_new = 32;
  bool sample_greedy = true;
};

struct ExperimentConfig {
  static constexpr int kVersion = 1;
  std::string name = "experiment";
  ModelSource model;
  DataConfig data;
  AdapterConfig adapter;
  AdamWConfig optimizer;
  ScheduleConfig schedule;
  TrainConfig train;

  // Throws ConfigError naming the first bad field.
  void validate() const;
  // Every problem, one message per field (for the form).
  std::vector<std::pair<std::string, std::string>> problems() const;

  std::string to_json(int indent = 2) const;
  // `source` names the file or blob in error messages. Unknown keys and a
  // version newer than kVersion are refused.
  static ExperimentConfig from_json(const std::string& text, const std::string& source);
  static ExperimentConfig load(const std::string& path);
  void save(const std::string& path) const;

  // `--set adapter.r=16`, `--set adapter.targets=q,v`.
  void set(const std::string& key, const std::string& value);
  std::string get(const std::string& key) const;
  static std::vector<std::string> keys();
};

// Built-in presets: "demo" (tiny + LoRA on uppercase), "tiny-full",
// "tiny-lora", "small-lora", "small-full", "pretrain-tiny", "pretrain-small".
ExperimentConfig experiment_preset(const std::string& name);
std::vector<std::string> experiment_preset_names();

}  // namespace lwb

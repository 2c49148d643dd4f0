#pragma once
// What a run reports while it trains: plain structs handed to plain C++ sinks.
// The store sink batches them into SQLite, the UI sink queues them to the GUI
// thread, the CLI prints them.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/common/variant_event.h"
#include "core/eval/evaluation.h"
#include "core/tensor/ledger.h"
#include "core/train/experiment_config.h"
#include "core/train/run_environment.h"

namespace lwb {

// Held-out loss and exact match (NaN where the data has no completions).
using EvalResult = EvalScore;

// One answer of the samples during training (train.samples,
// core/train/training_samples.h).
struct TrainingSample {
  int prompt = 0;  // index among the run's sample prompts
  std::string prompt_text;
  std::string answer;
};

struct StepEvent {
  std::int64_t step = 0;  // completed optimiser steps, 1-based
  std::int64_t total_steps = 0;
  double loss = NAN;
  double lr = 0;
  double grad_norm = NAN;
  double tokens_per_s = 0;  // average over the run's training time so far
  double elapsed_s = 0;     // wall time since the run started (evaluation included)
  std::optional<EvalResult> eval;
  std::optional<LedgerSnapshot> memory;  // present when the ledger changed
  // The device's memory (system RAM for the CPU backend), sampled every few
  // steps; 0 when not sampled at this step.
  double device_used_bytes = 0, device_total_bytes = 0;
  // L2 norm of each layer's trainable gradients (index = layer; the
  // model-level tensors of full fine-tuning are not in it), sampled with the
  // device memory; empty when not sampled at this step.
  std::vector<double> layer_grad_norms;
  // Also carries "train.weight_histogram" at evaluation steps
  // (core/train/step_stats.h).
  std::vector<VariantEvent> variant_events;
  // At the steps train.sample_every names: one answer per sample prompt.
  std::vector<TrainingSample> samples;
};

struct RunInfo {
  ExperimentConfig config;
  std::string backend;
  std::string dataset;
  std::int64_t train_examples = 0, heldout_examples = 0;
  std::int64_t trainable_params = 0;
  std::int64_t model_params = 0;
  std::string base_fingerprint;
  LedgerSnapshot memory;
  // What the numbers depend on besides config and seed (device, BLAS
  // kernels, threads, build).
  RunEnvironment environment;
  // The split evaluations score: "test" (the held-out split) or
  // "validation" (train.eval_split).
  std::string eval_split = "test";
};

// Diverged: the loss or gradient norm went non-finite, the loss climbed far
// above where it started, or the gradients vanished (train.divergence_factor,
// train.collapse_steps). The adapter is kept, marked, as a record.
enum class RunStatus { Finished, Stopped, Failed, Diverged };
const char* run_status_name(RunStatus s);  // "finished", "stopped", "failed", "diverged"

struct RunResult {
  RunStatus status = RunStatus::Failed;
  std::string error;  // for Failed; for Diverged "diverged at step N: <reason>"
  std::int64_t steps_done = 0;
  double final_train_loss = NAN;
  EvalResult final_eval;
  double elapsed_s = 0;
  double tokens_per_s = 0;
  LedgerSnapshot memory;  // at the end, with peaks
  std::vector<VariantEvent> summary;  // e.g. final AdaLoRA ranks
};

class TrainerSink {
 public:
  virtual ~TrainerSink() = default;
  virtual void on_start(const RunInfo&) {}
  virtual void on_step(const StepEvent&) {}
  virtual void on_finish(const RunResult&) {}
};

// Forwards to several sinks in order.
class FanoutSink : public TrainerSink {
 public:
  void add(TrainerSink* s) { sinks_.push_back(s); }
  void on_start(const RunInfo& i) override {
    for (auto* s : sinks_) s->on_start(i);
  }
  void on_step(const StepEvent& e) override {
    for (auto* s : sinks_) s->on_step(e);
  }
  void on_finish(const RunResult& r) override {
    for (auto* s : sinks_) s->on_finish(r);
  }

 private:
  std::vector<TrainerSink*> sinks_;
};

}  // namespace lwb

#pragma once
// The built-in "hub" demo, end to end and CPU-friendly: one tiny LoRA adapter
// per built-in task except a held-out target, kept in the store's adapter
// library; then LoRAHub composes them for the target from 5 examples and
// evaluates zero-shot, every member alone and the composition on held-out
// examples of the target.
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "core/compose/library.h"
#include "core/train/experiment_config.h"
#include "core/train/trainer.h"

namespace lwb::compose {

struct HubPreset {
  std::string name = "hub";
  std::string target;                     // the held-out task
  std::string why;                        // why composition can help for it
  std::vector<std::string> member_tasks;  // one adapter each
  ExperimentConfig training;              // one member's run; data.task is set per member
  SessionOptions session;                 // session.task is the target
  SearchOptions search;
  int seeds = kDefaultSeeds;              // the composition's search and evaluation
};

// "hub": target count, members the other nine built-in tasks, 200 LoRA steps
// each (about a minute on two cores in all), 5 shots, 40 COBYLA evaluations,
// 200 held-out examples, over 3 seeds.
HubPreset hub_preset();

// "hub-reverse-1a2b3c4d": the task and the first 8 hex digits of the base's
// fingerprint, so adapters of a rebuilt base never collide with old ones.
std::string hub_adapter_name(const std::string& task, const std::string& base_fingerprint);

struct HubCallbacks {
  std::function<void(const std::string&)> notice;  // one line per stage
  // Progress of one member's training run (the trainer prepared; index
  // 1-based among the `total` members); may return nullptr.
  std::function<TrainerSink*(const std::string& adapter, Trainer& trainer, int index, int total)> training_sink;
  TrialCallback on_trial;
};

struct HubReport {
  std::vector<std::string> trained, reused;  // adapter names
  bool cancelled = false;  // during training: no composition was made
  ComposeOutcome outcome;  // the stored composition, its search and evaluation
  double train_seconds = 0, total_seconds = 0;
};

// Trains the missing member adapters (reusing ones in the library with the
// same name, hence the same base) and returns their names in member order;
// fills report.trained, .reused, .train_seconds and, when cancelled,
// .cancelled (the names are then incomplete). A member run that fails throws
// Error naming the task.
std::vector<std::string> ensure_hub_members(Store& store, const HubPreset& preset, const TrainerEnvironment& env,
                                            const HubCallbacks& callbacks, HubReport& report,
                                            const std::atomic<bool>* cancel = nullptr);

// ensure_hub_members, then composes for the target and stores the
// composition as "<preset>-<target>", replacing an earlier one of that name.
// A member run that fails throws Error naming the task.
HubReport run_hub(Store& store, const HubPreset& preset, const TrainerEnvironment& env,
                  const HubCallbacks& callbacks = {}, const std::atomic<bool>* cancel = nullptr);

}  // namespace lwb::compose

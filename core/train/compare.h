#pragma once
// Side-by-side runs of several methods on the same base and task: the
// built-in comparison presets and the table `lora-workbench compare` prints.
#include <functional>
#include <string>
#include <vector>

#include "core/train/events.h"
#include "core/train/experiment_config.h"
#include "core/train/trainer.h"

namespace lwb {

struct ComparisonEntry {
  std::string label;
  ExperimentConfig config;
};

struct ComparisonPreset {
  std::string name, description;
  std::vector<ComparisonEntry> entries;
};

// "tiny-methods": every variant's comparison arm (core/adapters/descriptor.h)
// on one task and base, adapters at matched trainable-parameter budgets,
// full fine-tuning last.
ComparisonPreset comparison_preset(const std::string& name);
std::vector<std::string> comparison_preset_names();

struct ComparisonRow {
  std::string label, method;
  RunResult result;
  std::int64_t trainable_params = 0;
  std::int64_t model_params = 0;
};

// Runs every entry in order; `progress` gets each run's sink events.
std::vector<ComparisonRow> run_comparison(const ComparisonPreset& preset, const TrainerEnvironment& env,
                                          const RunControl& control,
                                          const std::function<TrainerSink*(const ComparisonEntry&)>& progress);

std::string format_comparison_table(const std::vector<ComparisonRow>& rows);

}  // namespace lwb

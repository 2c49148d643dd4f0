#pragma once
// Side-by-side runs of several methods on the same base and task: the
// built-in comparison presets. How they are run (seeds, learning-rate pick)
// and reported is core/train/compare_run.h.
#include <string>
#include <vector>

#include "core/train/experiment_config.h"

namespace lwb {

struct ComparisonEntry {
  std::string label;
  ExperimentConfig config;
  // Where the arm's learning rate comes from (a paper, PEFT's docs, or how
  // it was derived), for the report.
  std::string lr_note;
  // What the arm is when it is not a training run of its config's method
  // (a LoRAHub composition, the base alone); empty: the config's method.
  std::string what;
};

struct ComparisonPreset {
  std::string name, description;
  std::vector<ComparisonEntry> entries;
};

// "tiny-methods": LoRA, rsLoRA, DoRA, AdaLoRA, ReLoRA and full fine-tuning
// on one task and base, adapters at matched trainable-parameter budgets.
ComparisonPreset comparison_preset(const std::string& name);
std::vector<std::string> comparison_preset_names();

}  // namespace lwb

#include "core/train/compare.h"

#include <cmath>

#include "core/adapters/descriptor.h"
#include "core/common/errors.h"

namespace lwb {

ComparisonPreset comparison_preset(const std::string& name) {
  if (name != "tiny-methods")
    throw ConfigError("preset", "unknown comparison preset \"" + name + "\"; known: tiny-methods");
  ComparisonPreset p;
  p.name = name;
  ExperimentConfig base = experiment_preset("tiny-lora");
  base.data.task = "reverse";
  base.train.steps = 300;
  base.train.eval_every = 100;
  // One arm per method, as each variant's descriptor sets it up (adapters
  // at matched trainable-parameter budgets); full fine-tuning last.
  std::vector<ComparisonArm> arms;
  for (const VariantDescriptor* v : variants())
    if (v->is_adapter) arms.insert(arms.end(), v->compare_arms.begin(), v->compare_arms.end());
  for (const VariantDescriptor* v : variants())
    if (!v->is_adapter) arms.insert(arms.end(), v->compare_arms.begin(), v->compare_arms.end());
  std::string list;
  for (const ComparisonArm& arm : arms) {
    ExperimentConfig c = base;
    c.name = name + "-" + arm.label;
    for (const auto& [key, value] : arm.settings) c.set(key, value);
    c.optimizer.lr *= arm.lr_factor;
    p.entries.push_back({arm.label, c, arm.lr_note, ""});
    list += (list.empty() ? "" : " vs ") + arm.description;
  }
  p.description = "tiny base, task reverse, 300 steps: " + list + "; adapters on all seven targets";
  return p;
}

std::vector<std::string> comparison_preset_names() { return {"tiny-methods"}; }

}  // namespace lwb

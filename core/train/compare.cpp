#include "core/train/compare.h"

#include <cmath>

#include "core/common/errors.h"

namespace lwb {

ComparisonPreset comparison_preset(const std::string& name) {
  if (name != "tiny-methods")
    throw ConfigError("preset", "unknown comparison preset \"" + name + "\"; known: tiny-methods");
  ComparisonPreset p;
  p.name = name;
  p.description =
      "tiny base, task reverse, 300 steps: LoRA r=8 vs rsLoRA r=8 vs DoRA r=8 vs AdaLoRA 12->8 vs ReLoRA r=8 "
      "(reset every 100) vs full fine-tuning; adapters on all seven targets";
  ExperimentConfig base = experiment_preset("tiny-lora");
  base.data.task = "reverse";
  base.train.steps = 300;
  base.train.eval_every = 100;
  auto entry = [&](const std::string& label, const std::string& lr_note, auto edit) {
    ExperimentConfig c = base;
    c.name = name + "-" + label;
    edit(c);
    p.entries.push_back({label, c, lr_note, ""});
  };
  entry("lora", "the tiny-lora preset's rate, tuned on the tiny base", [](ExperimentConfig&) {});
  entry("rslora",
        "LoRA's rate / sqrt(r) = 1.06e-3: at equal rank and alpha rsLoRA scales the adapter by alpha/sqrt(r), "
        "sqrt(8) times LoRA's alpha/r (Kalajdzievski 2023, arXiv 2312.03732; PEFT LoraConfig.use_rslora), and "
        "under Adam the adapter's output moves by about lr times that scale per step; neither source gives a rate",
        [](ExperimentConfig& c) {
          // Same rank and alpha as LoRA: rsLoRA's s = alpha / sqrt(r) is then
          // sqrt(8) times larger, which is the point of comparing them; the rate
          // is divided by as much so that a step moves the output as LoRA's does.
          c.adapter.use_rslora = true;
          c.optimizer.lr /= std::sqrt(static_cast<double>(c.adapter.r));
        });
  entry("dora",
        "2/3 of LoRA's rate, 2e-3: DoRA's authors suggest \"starting with a slightly lower learning rate than that of "
        "LoRA\" (github.com/NVlabs/DoRA, README, DoRA hyperparameter settings)",
        [](ExperimentConfig& c) {
          c.adapter.method = Method::Dora;
          c.optimizer.lr *= 2.0 / 3.0;
        });
  entry("adalora",
        "LoRA's rate: AdaLoRA's own scripts train DeBERTaV3-base on MNLI at 5e-4 (github.com/QingruZhang/AdaLoRA, "
        "NLU/scripts/run_debertav3_mnli.sh), the rate LoRA used for MNLI (Hu et al. 2021, RoBERTa-base)",
        [](ExperimentConfig& c) {
          // Starts at rank 12 and ends at 8: the budget at the end matches LoRA r = 8.
          c.adapter.method = Method::AdaLora;
          c.adapter.r = 12;
          c.adapter.alpha = 24;  // c = alpha / ranknum = 2, the same scale as LoRA's 16 / 8
          c.adapter.adalora.target_r = 8;
          c.adapter.adalora.tinit = 30;
          c.adapter.adalora.tfinal = 60;
          c.adapter.adalora.delta_t = 5;
        });
  entry("relora",
        "twice full fine-tuning's rate, 2e-3: ReLoRA's README trains the full-rank warm start at 5e-4 and then, "
        "\"Note that we use a larger LR during the ReLoRA stage\", at 1e-3 (github.com/Guitaricet/relora; "
        "Lialin et al. 2023, arXiv 2307.05695)",
        [](ExperimentConfig& c) {
          c.adapter.method = Method::ReLora;
          c.optimizer.lr = 2e-3;
          c.adapter.relora.reset_every = 100;
          c.adapter.relora.restart_warmup = 10;
        });
  entry("full", "the tiny-full preset's rate", [](ExperimentConfig& c) {
    c.adapter.method = Method::Full;
    c.optimizer.lr = 1e-3;
  });
  return p;
}

std::vector<std::string> comparison_preset_names() { return {"tiny-methods"}; }

}  // namespace lwb

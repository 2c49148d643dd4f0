#pragma once
// What to train: full fine-tuning or one of the low-rank variants, with the
// PEFT parameters each one takes. The settings every variant shares are
// fields here; a variant's own settings ("adalora.target_r") are declared by
// its descriptor (core/adapters/descriptor.h) and kept in `options`.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/model/config.h"

namespace lwb {

struct VariantDescriptor;

enum class LoraInit : std::uint8_t { Kaiming, Gaussian };

struct AdapterConfig {
  std::string method = "lora";  // a registered variant's name (core/adapters/registry.cpp)
  int r = 8;
  double alpha = 16;
  double dropout = 0.0;
  bool use_rslora = false;
  LoraInit init = LoraInit::Kaiming;
  std::vector<Target> targets = {Target::Q, Target::V};
  // The variant's own settings by key; a key not set holds its declared default.
  std::map<std::string, double> options;

  // The variant named by `method`; ConfigError("adapter.method") when none is.
  const VariantDescriptor& variant() const;
  bool is_adapter() const;
  // A variant setting ("relora.reset_every"): its value or its default.
  double option(const std::string& key) const;
  void set_option(const std::string& key, double value) { options[key] = value; }
  // The scale of the adapter's update (LoRA: alpha / r, or alpha / sqrt(r)
  // with rsLoRA), as the variant defines it.
  double scaling() const;
  bool targets_contain(Target t) const;
  // Throws ConfigError naming the field ("adapter.r", ...). total_steps and
  // warmup_steps check the variant's schedule (AdaLoRA's budget, ReLoRA's
  // resets); skipped when < 0, as the planner does.
  void validate(const ModelConfig& model, std::int64_t total_steps = -1,
                std::int64_t warmup_steps = -1) const;
  // Trainable parameters this adapter adds (every trainable tensor of the
  // variant's table, over targets and layers), or the whole model's count
  // for full fine-tuning.
  std::int64_t trainable_params(const ModelConfig& model) const;
  // ConfigError("model.frozen_dtype") when the variant cannot train over
  // bf16 frozen projections (model.frozen_dtype), saying why.
  void check_bf16_frozen() const;
};

// Sets method (and what an alias implies, e.g. "rslora": use_rslora) from a
// variant name or alias; ConfigError("adapter.method") listing the names.
void select_method(AdapterConfig& config, const std::string& name);
// The name a config is shown and stored under: its method, or the alias its
// settings make ("rslora" for LoRA with use_rslora).
std::string method_display_name(const AdapterConfig& config);

}  // namespace lwb

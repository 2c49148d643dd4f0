#pragma once
// What to train: full fine-tuning or one of the low-rank variants, with the
// PEFT parameters each one takes.
#include <cstdint>
#include <string>
#include <vector>

#include "core/model/config.h"

namespace lwb {

enum class Method : std::uint8_t { Full, Lora, Dora, AdaLora, ReLora };
const char* method_name(Method m);  // "full", "lora", "dora", "adalora", "relora"
// Accepts the names above and "rslora" (LoRA with use_rslora); ConfigError otherwise.
Method parse_method(const std::string& s, bool* rslora = nullptr);

enum class LoraInit : std::uint8_t { Kaiming, Gaussian };

struct DoraOptions {
  // false: the row norm ||W + sBA|| is a constant in the backward (PEFT, DoRA
  // paper 4.3); true: the gradient flows through it (the paper's full form),
  // which keeps W + sBA of every module for the backward.
  bool norm_grad = false;
};

struct AdaLoraOptions {  // init_r is AdapterConfig::r
  int target_r = 8;
  std::int64_t tinit = 0, tfinal = 0;
  int delta_t = 1;
  double beta1 = 0.85, beta2 = 0.85;
  double orth_reg_weight = 0.5;
};

struct ReLoraOptions {
  std::int64_t reset_every = 100;    // merge and re-initialise every this many steps
  std::int64_t restart_warmup = 10;  // linear LR re-warm-up after each reset
  double prune_ratio = 0.9;          // AdamW moments below this quantile are zeroed
  // The authors prune exp_avg and exp_avg_sq independently. An entry can then
  // keep a large first moment while its second moment is zeroed, and its next
  // update m / (sqrt(v) + eps) explodes: on the tiny model held-out loss goes
  // from 2.0 to 3.7 at the first reset and stays there. By default both
  // moments of an entry are kept or dropped together, ranked by the second
  // moment; `true` restores the authors' exact rule.
  bool prune_independently = false;
};

struct AdapterConfig {
  Method method = Method::Lora;
  int r = 8;
  double alpha = 16;
  double dropout = 0.0;
  bool use_rslora = false;
  LoraInit init = LoraInit::Kaiming;
  std::vector<Target> targets = {Target::Q, Target::V};
  DoraOptions dora;
  AdaLoraOptions adalora;
  ReLoraOptions relora;

  bool is_adapter() const { return method != Method::Full; }
  // s = alpha / r, or alpha / sqrt(r) with rsLoRA; AdaLoRA: alpha / (r + 1e-5).
  double scaling() const;
  bool targets_contain(Target t) const;
  // Throws ConfigError naming the field ("adapter.r", ...). total_steps and
  // warmup_steps check the AdaLoRA and ReLoRA schedules (skipped when < 0).
  void validate(const ModelConfig& model, std::int64_t total_steps = -1,
                std::int64_t warmup_steps = -1) const;
  // Trainable parameters this adapter adds: sum over targets and layers of
  // r * (in + out), plus the DoRA magnitudes (out) or AdaLoRA E vectors (r).
  std::int64_t trainable_params(const ModelConfig& model) const;
  // Whether the method can train over bf16 frozen projections
  // (model.frozen_dtype); throws ConfigError("model.frozen_dtype") for
  // ReLoRA, which merges into them. Full fine-tuning has no frozen weights:
  // the setting does not apply (the trainer says so and keeps fp32).
  void check_bf16_frozen() const;
};

}  // namespace lwb

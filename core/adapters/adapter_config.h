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

struct AdapterConfig {
  Method method = Method::Lora;
  int r = 8;
  double alpha = 16;
  double dropout = 0.0;
  bool use_rslora = false;
  LoraInit init = LoraInit::Kaiming;
  std::vector<Target> targets = {Target::Q, Target::V};

  bool is_adapter() const { return method != Method::Full; }
  // s = alpha / r, or alpha / sqrt(r) with rsLoRA.
  double scaling() const;
  bool targets_contain(Target t) const;
  // Throws ConfigError naming the field ("adapter.r", ...).
  void validate(const ModelConfig& model) const;
  // Trainable parameters this adapter adds: sum over targets of r * (in + out).
  std::int64_t trainable_params(const ModelConfig& model) const;
};

}  // namespace lwb

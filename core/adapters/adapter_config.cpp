#include "core/adapters/adapter_config.h"

#include <algorithm>
#include <cmath>

#include "core/common/errors.h"

namespace lwb {

const char* method_name(Method m) {
  switch (m) {
    case Method::Full: return "full";
    case Method::Lora: return "lora";
    case Method::Dora: return "dora";
    case Method::AdaLora: return "adalora";
    case Method::ReLora: return "relora";
  }
  return "?";
}

Method parse_method(const std::string& s, bool* rslora) {
  if (rslora) *rslora = false;
  if (s == "full") return Method::Full;
  if (s == "lora") return Method::Lora;
  if (s == "rslora") {
    if (rslora) *rslora = true;
    return Method::Lora;
  }
  if (s == "dora") return Method::Dora;
  if (s == "adalora") return Method::AdaLora;
  if (s == "relora") return Method::ReLora;
  throw ConfigError("adapter.method", "unknown method \"" + s +
                                          "\"; expected full, lora, rslora, dora, adalora or relora");
}

double AdapterConfig::scaling() const {
  // PEFT's AdaLoRA divides lora_alpha by ranknum + 1e-5, ranknum = init_r.
  if (method == Method::AdaLora) return alpha / (r + 1e-5);
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / r;
}

bool AdapterConfig::targets_contain(Target t) const {
  return std::find(targets.begin(), targets.end(), t) != targets.end();
}

void AdapterConfig::validate(const ModelConfig& model, std::int64_t total_steps,
                             std::int64_t warmup_steps) const {
  if (!is_adapter()) return;
  if (r <= 0) throw ConfigError("adapter.r", "rank must be positive, got " + std::to_string(r));
  if (targets.empty())
    throw ConfigError("adapter.targets", "choose at least one of q, k, v, o, gate, up, down");
  for (Target t : targets) {
    const LinearShape s = linear_shape(model, t);
    const int limit = std::min(s.in, s.out);
    if (r > limit)
      throw ConfigError("adapter.r", "rank " + std::to_string(r) + " exceeds min(in, out) = " +
                                         std::to_string(limit) + " of " + target_module_name(t) +
                                         " [" + std::to_string(s.out) + " x " +
                                         std::to_string(s.in) + "]");
  }
  for (std::size_t i = 0; i < targets.size(); ++i)
    for (std::size_t j = i + 1; j < targets.size(); ++j)
      if (targets[i] == targets[j])
        throw ConfigError("adapter.targets",
                          std::string("target ") + target_short_name(targets[i]) + " listed twice");
  if (!(alpha > 0)) throw ConfigError("adapter.alpha", "must be positive");
  if (!(dropout >= 0 && dropout < 1))
    throw ConfigError("adapter.dropout", "must be in [0, 1), got " + std::to_string(dropout));
  if (method == Method::AdaLora) {
    const AdaLoraOptions& a = adalora;
    if (a.target_r <= 0)
      throw ConfigError("adapter.adalora.target_r", "must be positive, got " + std::to_string(a.target_r));
    if (a.target_r > r)
      throw ConfigError("adapter.adalora.target_r", "target rank " + std::to_string(a.target_r) +
                                                        " exceeds the initial rank adapter.r = " + std::to_string(r));
    if (a.tinit < 0) throw ConfigError("adapter.adalora.tinit", "must not be negative");
    if (a.tfinal < 0) throw ConfigError("adapter.adalora.tfinal", "must not be negative");
    if (a.delta_t <= 0) throw ConfigError("adapter.adalora.delta_t", "must be positive");
    if (!(a.beta1 >= 0 && a.beta1 < 1)) throw ConfigError("adapter.adalora.beta1", "must be in [0, 1)");
    if (!(a.beta2 >= 0 && a.beta2 < 1)) throw ConfigError("adapter.adalora.beta2", "must be in [0, 1)");
    if (a.orth_reg_weight < 0) throw ConfigError("adapter.adalora.orth_reg_weight", "must not be negative");
    if (total_steps >= 0 && a.tinit >= total_steps - a.tfinal)
      throw ConfigError("adapter.adalora.tinit",
                        "tinit (" + std::to_string(a.tinit) + ") must be below train.steps - tfinal (" +
                            std::to_string(total_steps - a.tfinal) + ") so the budget can shrink");
  }
  if (method == Method::ReLora) {
    const ReLoraOptions& o = relora;
    if (o.reset_every <= 0) throw ConfigError("adapter.relora.reset_every", "must be positive");
    if (o.restart_warmup < 0) throw ConfigError("adapter.relora.restart_warmup", "must not be negative");
    if (o.restart_warmup >= o.reset_every)
      throw ConfigError("adapter.relora.reset_every",
                        "reset interval " + std::to_string(o.reset_every) + " must exceed the restart warm-up (" +
                            std::to_string(o.restart_warmup) + " steps)");
    if (!(o.prune_ratio >= 0 && o.prune_ratio < 1))
      throw ConfigError("adapter.relora.prune_ratio", "must be in [0, 1)");
    if (warmup_steps >= 0 && warmup_steps > o.reset_every)
      throw ConfigError("schedule.warmup_steps", "the first warm-up (" + std::to_string(warmup_steps) +
                                                     " steps) must end before the first reset at step " +
                                                     std::to_string(o.reset_every));
  }
  if (use_rslora && method != Method::Lora && method != Method::Dora && method != Method::ReLora)
    throw ConfigError("adapter.use_rslora", std::string("rsLoRA scaling does not apply to ") + method_name(method));
}

std::int64_t AdapterConfig::trainable_params(const ModelConfig& model) const {
  if (!is_adapter()) return model.param_count();
  std::int64_t n = 0;
  for (Target t : targets) {
    const LinearShape s = linear_shape(model, t);
    n += static_cast<std::int64_t>(r) * (s.in + s.out);
    if (method == Method::Dora) n += s.out;
    if (method == Method::AdaLora) n += r;
  }
  return n * model.layers;
}

void AdapterConfig::check_bf16_frozen() const {
  if (method == Method::ReLora)
    throw ConfigError("model.frozen_dtype",
                      "ReLoRA merges its update into the base weights at every reset; merged into bf16 "
                      "weights, updates below ~0.4% of a weight (2^-8 relative) are rounded away, so "
                      "ReLoRA needs model.frozen_dtype = fp32");
}

}  // namespace lwb

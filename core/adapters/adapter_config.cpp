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
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / r;
}

bool AdapterConfig::targets_contain(Target t) const {
  return std::find(targets.begin(), targets.end(), t) != targets.end();
}

void AdapterConfig::validate(const ModelConfig& model) const {
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
}

std::int64_t AdapterConfig::trainable_params(const ModelConfig& model) const {
  std::int64_t n = 0;
  for (Target t : targets) {
    const LinearShape s = linear_shape(model, t);
    n += static_cast<std::int64_t>(r) * (s.in + s.out);
  }
  return n * model.layers;
}

}  // namespace lwb

#include "core/adapters/adapter_config.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/adapters/descriptor.h"
#include "core/common/errors.h"
#include "core/common/setting_text.h"

namespace lwb {

namespace {

std::string names_text() {
  const std::vector<std::string> names = variant_names();
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i)
    s += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return s;
}

const VariantOption* find_option(const std::string& key) {
  for (const VariantDescriptor* v : variants())
    for (const VariantOption& o : v->options)
      if (o.key == key) return &o;
  return nullptr;
}

// "must be positive", "must not be negative", "must be in [0, 1)".
void check_range(const VariantOption& o, double x) {
  const bool below = o.lo_open ? !(x > o.lo) : !(x >= o.lo);
  const bool above = o.hi_open ? !(x < o.hi) : !(x <= o.hi);
  if (!below && !above) return;
  std::string what;
  if (std::isinf(o.hi)) {
    if (o.lo == 0 && !o.lo_open)
      what = "must not be negative";
    else if ((o.lo == 0 && o.lo_open) || (o.kind == FieldKind::Int && o.lo == 1))
      what = "must be positive";
    else
      what = std::string("must be ") + (o.lo_open ? "above " : "at least ") + format_setting_number(o.lo);
  } else {
    what = std::string("must be in ") + (o.lo_open ? "(" : "[") + format_setting_number(o.lo) + ", " +
           format_setting_number(o.hi) + (o.hi_open ? ")" : "]");
  }
  throw ConfigError("adapter." + o.key, what + ", got " + format_setting_number(x));
}

}  // namespace

const VariantDescriptor& AdapterConfig::variant() const {
  for (const VariantDescriptor* v : variants())
    if (v->name == method) return *v;
  throw ConfigError("adapter.method", "unknown method \"" + method + "\"; expected " + names_text());
}

bool AdapterConfig::is_adapter() const { return variant().is_adapter; }

double AdapterConfig::option(const std::string& key) const {
  if (const auto it = options.find(key); it != options.end()) return it->second;
  const VariantOption* o = find_option(key);
  if (!o) throw std::logic_error("no variant declares the setting \"" + key + "\"");
  return o->fallback;
}

double AdapterConfig::scaling() const {
  // Full fine-tuning and VeRA scale nothing.
  const VariantDescriptor& v = variant();
  return v.scaling ? v.scaling(*this) : 1.0;
}

bool AdapterConfig::targets_contain(Target t) const {
  return std::find(targets.begin(), targets.end(), t) != targets.end();
}

void AdapterConfig::validate(const ModelConfig& model, std::int64_t total_steps,
                             std::int64_t warmup_steps) const {
  const VariantDescriptor& v = variant();
  if (!v.is_adapter) return;
  if (r <= 0) throw ConfigError("adapter.r", "rank must be positive, got " + std::to_string(r));
  if (targets.empty())
    throw ConfigError("adapter.targets", "choose at least one of q, k, v, o, gate, up, down");
  for (Target t : targets) {
    if (!v.caps.rank_within_target_shape) break;
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
  if (v.uses_alpha && !(alpha > 0)) throw ConfigError("adapter.alpha", "must be positive");
  if (!(dropout >= 0 && dropout < 1))
    throw ConfigError("adapter.dropout", "must be in [0, 1), got " + std::to_string(dropout));
  if (use_rslora && !v.uses_rslora)
    throw ConfigError("adapter.use_rslora", "rsLoRA scaling does not apply to " + v.title);
  for (const VariantOption& o : v.options) check_range(o, option(o.key));
  if (v.validate) v.validate(*this, model, total_steps, warmup_steps);
}

std::int64_t AdapterConfig::trainable_params(const ModelConfig& model) const {
  const VariantDescriptor& v = variant();
  if (!v.is_adapter) return model.param_count();
  std::int64_t n = 0;
  for (Target t : targets) {
    const LinearShape s = linear_shape(model, t);
    for (const AdapterTensorSpec& spec : v.tensors) {
      if (!spec.trainable || spec.model_level) continue;
      std::int64_t count = 1;
      for (std::int64_t d : tensor_shape(spec, s.in, s.out, r)) count *= d;
      n += count;
    }
  }
  return n * model.layers;
}

void AdapterConfig::check_bf16_frozen() const {
  const VariantDescriptor& v = variant();
  if (!v.caps.bf16_base) throw ConfigError("model.frozen_dtype", v.caps.not_bf16_why);
}

void select_method(AdapterConfig& config, const std::string& name) {
  const VariantDescriptor* v = find_variant(name);
  if (!v) throw ConfigError("adapter.method", "unknown method \"" + name + "\"; expected " + names_text());
  config.method = v->name;
  if (v->select) v->select(config, name);
}

std::string method_display_name(const AdapterConfig& config) {
  const VariantDescriptor& v = config.variant();
  return v.display_name ? v.display_name(config) : v.name;
}

}  // namespace lwb

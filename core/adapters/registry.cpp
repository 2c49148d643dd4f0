// Every variant, listed once. A variant's descriptor lives in its own file
// as `const VariantDescriptor& <name>_variant()`; this list is the only
// place that names them all, in the order menus show them.
#include <algorithm>
#include <cmath>

#include "core/adapters/descriptor.h"
#include "core/common/errors.h"
#include "core/common/setting_text.h"

#define LWB_EACH_VARIANT(X) \
  X(full)                   \
  X(lora)                   \
  X(dora)                   \
  X(adalora)                \
  X(relora)                 \
  X(pissa)                  \
  X(vera)

namespace lwb {

#define LWB_DECLARE_VARIANT(name) const VariantDescriptor& name##_variant();
LWB_EACH_VARIANT(LWB_DECLARE_VARIANT)
#undef LWB_DECLARE_VARIANT

std::span<const VariantDescriptor* const> variants() {
#define LWB_LIST_VARIANT(name) &name##_variant(),
  static const VariantDescriptor* const all[] = {LWB_EACH_VARIANT(LWB_LIST_VARIANT)};
#undef LWB_LIST_VARIANT
  return all;
}

const VariantDescriptor* find_variant(const std::string& name) {
  for (const VariantDescriptor* v : variants())
    if (v->name == name || std::find(v->aliases.begin(), v->aliases.end(), name) != v->aliases.end()) return v;
  return nullptr;
}

std::vector<std::string> variant_names() {
  std::vector<std::string> names;
  for (const VariantDescriptor* v : variants()) {
    names.push_back(v->name);
    names.insert(names.end(), v->aliases.begin(), v->aliases.end());
  }
  return names;
}

std::string event_marker(const std::string& kind) {
  for (const VariantDescriptor* v : variants())
    for (const EventMarker& m : v->markers)
      if (m.kind == kind) return m.label;
  return {};
}

std::vector<std::int64_t> tensor_shape(const AdapterTensorSpec& spec, std::int64_t in, std::int64_t out,
                                       std::int64_t r) {
  return spec.shape(in, out, r);
}

LinearShape adapted_extent(const AdapterConfig& config, const ModelConfig& model) {
  LinearShape extent{0, 0};
  for (Target t : config.targets) {
    const LinearShape s = linear_shape(model, t);
    extent.in = std::max(extent.in, s.in);
    extent.out = std::max(extent.out, s.out);
  }
  return extent;
}

namespace {

AdapterField option_field(const VariantDescriptor& v, const VariantOption& o) {
  AdapterField f;
  f.key = "adapter." + o.key;
  f.kind = o.kind;
  f.label = o.label;
  f.help = o.help;
  f.max = o.max;
  const std::string key = o.key, name = v.name, field = f.key;
  const FieldKind kind = o.kind;
  const std::int64_t max = o.max;
  f.get = [key, kind](const AdapterConfig& c) {
    const double x = c.option(key);
    if (kind == FieldKind::Bool) return std::string(x != 0 ? "true" : "false");
    if (kind == FieldKind::Int) return std::to_string(static_cast<std::int64_t>(x));
    return format_setting_number(x);
  };
  f.set = [key, kind, field, max](AdapterConfig& c, const std::string& text) {
    if (kind == FieldKind::Bool)
      c.set_option(key, parse_setting_bool(field, text));
    else if (kind == FieldKind::Int)
      c.set_option(key, static_cast<double>(parse_setting_integer<std::int64_t>(field, text, 0, max)));
    else
      c.set_option(key, parse_setting_number(field, text));
  };
  f.applies = [name](const AdapterConfig& c) { return c.method == name; };
  return f;
}

// The method's tooltip: every variant in its own words.
std::string methods_help() {
  std::string help = "what is trained:";
  for (const VariantDescriptor* v : variants()) help += "\n• " + v->title + ": " + v->description;
  return help;
}

const VariantDescriptor* variant_or_null(const AdapterConfig& c) {
  for (const VariantDescriptor* v : variants())
    if (v->name == c.method) return v;
  return nullptr;
}

}  // namespace

const std::vector<AdapterField>& adapter_fields() {
  static const std::vector<AdapterField> fields = [] {
    using C = const AdapterConfig&;
    auto uses = [](bool VariantDescriptor::*flag) {
      return [flag](C c) {
        const VariantDescriptor* v = variant_or_null(c);
        return v && v->is_adapter && v->*flag;
      };
    };
    auto adapter = [](C c) {
      const VariantDescriptor* v = variant_or_null(c);
      return v && v->is_adapter;
    };
    std::vector<AdapterField> f;
    f.push_back({"adapter.method", FieldKind::Choice, "Method", methods_help(), variant_names(), 0,
                 method_display_name, select_method, [](C) { return true; }});
    f.push_back({"adapter.r", FieldKind::Int, "Rank r", "the rank of the update B·A: its trainable parameters grow as r·(in + out) per module; 8 to 16 is usual, "
                 "more for tasks far from the base (AdaLoRA: the initial rank init_r each module starts from)", {},
                 4096, [](C c) { return std::to_string(c.r); },
                 [](AdapterConfig& c, const std::string& v) {
                   c.r = parse_setting_integer<int>("adapter.r", v, 0, std::numeric_limits<int>::max());
                 },
                 adapter});
    f.push_back({"adapter.alpha", FieldKind::Float, "Alpha", "the update B·A is scaled by alpha / r (alpha / sqrt(r) with rsLoRA), so changing r does not rescale the "
                 "learning rate; alpha = 2·r is a common choice", {}, 0,
                 [](C c) { return format_setting_number(c.alpha); },
                 [](AdapterConfig& c, const std::string& v) { c.alpha = parse_setting_number("adapter.alpha", v); },
                 uses(&VariantDescriptor::uses_alpha)});
    f.push_back({"adapter.dropout", FieldKind::Float, "Dropout", "probability of zeroing each input of the adapter's B·A path during training (the frozen path sees the "
                 "whole input); 0.05 to 0.1 regularises small data sets, 0 is off and fastest", {}, 0,
                 [](C c) { return format_setting_number(c.dropout); },
                 [](AdapterConfig& c, const std::string& v) { c.dropout = parse_setting_number("adapter.dropout", v); },
                 uses(&VariantDescriptor::uses_dropout)});
    f.push_back({"adapter.use_rslora", FieldKind::Bool, "rsLoRA scaling", "rank-stabilised LoRA (Kalajdzievski 2023): scale by alpha / sqrt(r) instead of alpha / r, so high ranks "
                 "still learn (alpha / r shrinks their updates)", {},
                 1, [](C c) { return std::string(c.use_rslora ? "true" : "false"); },
                 [](AdapterConfig& c, const std::string& v) {
                   c.use_rslora = parse_setting_bool("adapter.use_rslora", v);
                 },
                 uses(&VariantDescriptor::uses_rslora)});
    f.push_back({"adapter.init", FieldKind::Choice, "Init of A",
                 "kaiming-uniform (PEFT's default) or gaussian N(0, 1/r²); B starts at zero", {"kaiming", "gaussian"},
                 0, [](C c) { return std::string(c.init == LoraInit::Kaiming ? "kaiming" : "gaussian"); },
                 [](AdapterConfig& c, const std::string& v) {
                   if (v == "kaiming" || v == "true")
                     c.init = LoraInit::Kaiming;
                   else if (v == "gaussian")
                     c.init = LoraInit::Gaussian;
                   else
                     throw ConfigError("adapter.init", "expected kaiming or gaussian, got \"" + v + "\"");
                 },
                 uses(&VariantDescriptor::uses_init)});
    f.push_back({"adapter.targets", FieldKind::Targets, "Targets",
                 "the linear projections that get an adapter in every layer: attention q, k, v, o and MLP gate, up, down "
                 "(shortcuts: all, attention, mlp). The LoRA paper adapted q and v; QLoRA found all of them works "
                 "best at the same budget", {}, 0,
                 [](C c) {
                   std::string s;
                   for (Target t : c.targets) {
                     if (!s.empty()) s += ',';
                     s += target_short_name(t);
                   }
                   return s;
                 },
                 [](AdapterConfig& c, const std::string& v) { c.targets = parse_targets(v, "adapter.targets"); },
                 adapter});
    for (const VariantDescriptor* v : variants())
      for (const VariantOption& o : v->options) f.push_back(option_field(*v, o));
    return f;
  }();
  return fields;
}

}  // namespace lwb

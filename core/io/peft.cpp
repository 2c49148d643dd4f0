#include "core/io/peft.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "core/common/errors.h"
#include "core/common/integers.h"
#include "core/common/json_depth.h"
#include "core/common/json_integer.h"
#include "core/adapters/descriptor.h"
#include "core/adapters/peft_config.h"
#include "core/format/atomic_file.h"
#include "core/format/safetensors.h"
#include "core/model/checkpoint.h"

namespace lwb::io {

namespace {
using json = nlohmann::json;

// PEFT's wrapper around the model, in front of every module name it writes.
constexpr std::string_view kKeyPrefix = "base_model.model.";

std::vector<Target> parse_targets(const PeftConfigReader& c) {
  if (!c.has("target_modules"))
    c.fail("target_modules", "is missing; expected a list such as [\"q_proj\", \"v_proj\"]");
  const json& v = c.at("target_modules");
  if (v.is_string()) {
    if (v.get<std::string>() == "all-linear") return {kAllTargets.begin(), kAllTargets.end()};
    c.fail("target_modules", "is the string " + v.dump() +
                                 " (a regular expression); expected a list of module names such as "
                                 "[\"q_proj\", \"v_proj\"]");
  }
  if (!v.is_array() || v.empty()) c.fail("target_modules", "must be a non-empty list of module names");
  std::vector<bool> wanted(kTargetCount, false);
  // PEFT lists full module names ("model.layers.0.self_attn.o_proj") instead
  // of short ones when fewer than 20 modules are targeted (all-linear on a
  // small model): they must name the same layers for every module type, as
  // this program adapts a type in every layer (the tensors are then checked
  // against the model's layer count).
  std::map<Target, std::set<int>> layers;
  for (const json& m : v) {
    if (!m.is_string()) c.fail("target_modules", "holds " + m.dump() + "; expected module names");
    std::string name = m.get<std::string>();
    if (name.starts_with(kKeyPrefix)) name.erase(0, kKeyPrefix.size());
    if (const std::optional<ModuleId> id = parse_module_hf_name(name)) {
      wanted[static_cast<int>(id->target)] = true;
      layers[id->target].insert(id->layer);
      continue;
    }
    try {
      wanted[static_cast<int>(parse_target(name, "target_modules"))] = true;
    } catch (const ConfigError&) {
      c.fail("target_modules", "holds \"" + name +
                                   "\"; expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj, "
                                   "or full names such as model.layers.0.self_attn.q_proj");
    }
  }
  if (!layers.empty()) {
    const std::set<int>& first = layers.begin()->second;
    auto list = [](const std::set<int>& in) {
      std::string l;
      for (int i : in) l += (l.empty() ? "" : ", ") + std::to_string(i);
      return l.empty() ? std::string("every layer (a short name)") : "layers " + l;
    };
    for (Target t : kAllTargets) {
      if (!wanted[static_cast<int>(t)]) continue;
      const auto it = layers.find(t);
      const std::set<int> in = it == layers.end() ? std::set<int>{} : it->second;
      if (in != first)
        c.fail("target_modules", std::string("names ") + target_module_name(t) + " in " + list(in) + " but " +
                                     target_module_name(layers.begin()->first) + " in " + list(first) +
                                     "; this program adapts each targeted module type in the same layers, all of them");
    }
  }
  std::vector<Target> targets;
  for (Target t : kAllTargets)
    if (wanted[static_cast<int>(t)]) targets.push_back(t);
  return targets;
}

// The text as a JSON object, FormatError naming `source` otherwise. A number
// beyond double's range (1e400) is refused by nlohmann with out_of_range,
// not parse_error; the top-level field being read names where it is.
json parse_json_object(const std::string& text, const std::string& source) {
  std::string field;
  const auto track = [&](int depth, json::parse_event_t event, const json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) field = parsed.get<std::string>();
    return true;
  };
  check_json_depth(text, source);
  json j;
  try {
    j = json::parse(text, track);
  } catch (const json::parse_error& e) {
    throw FormatError(source, std::string("is not valid JSON: ") + e.what());
  } catch (const json::out_of_range& e) {
    throw FormatError(source, (field.empty() ? std::string("holds") : "field \"" + field + "\" holds") +
                                  " a number out of range (" + e.what() + "); expected a finite double");
  }
  if (!j.is_object()) throw FormatError(source, "is not a JSON object");
  return j;
}

// The variant a config of this peft_type is: the one the file's lwb.method
// names (ReLoRA is a LoRA on disk), else the one that claims it, else the
// type's fallback (LoRA for LORA). A variant without a PEFT form (full
// fine-tuning) is never one, even named with the peft_type missing.
const VariantDescriptor& variant_of(const PeftConfigReader& c, const std::string& type, const std::string& lwb_method) {
  if (const VariantDescriptor* v = find_variant(lwb_method); v && !v->peft.type.empty() && v->peft.type == type)
    return *v;
  const VariantDescriptor* fallback = nullptr;
  std::vector<std::string> types;
  for (const VariantDescriptor* v : variants()) {
    if (v->peft.type.empty()) continue;
    if (std::find(types.begin(), types.end(), v->peft.type) == types.end()) types.push_back(v->peft.type);
    if (v->peft.type != type) continue;
    if (v->peft.claims(c) && !v->peft.fallback) return *v;
    if (v->peft.fallback) fallback = v;
  }
  if (fallback) return *fallback;
  std::string list;
  for (std::size_t i = 0; i < types.size(); ++i)
    list += (i == 0 ? "" : i + 1 == types.size() ? " and " : ", ") + types[i];
  c.fail("peft_type", (type.empty() ? std::string("is missing") : "is \"" + type + "\"") + "; only " + list +
                          " adapters are supported");
}

}  // namespace

PeftAdapterFields parse_peft_config(const std::string& text, const std::string& source,
                                    const std::string& lwb_method) {
  const json j = parse_json_object(text, source);
  const PeftConfigReader c(j, source);
  PeftAdapterFields p;

  const VariantDescriptor& v = variant_of(c, c.string("peft_type", ""), lwb_method);
  // What this program cannot reproduce, so loading would silently change the adapter.
  if (c.boolean("fan_in_fan_out", false))
    c.fail("fan_in_fan_out", "is true (Conv1D-style [in, out] weights); expected false for LLaMA linears");
  if (const std::string bias = c.string("bias", "none"); bias != "none")
    c.fail("bias", "is \"" + bias + "\"; only \"none\" is supported (the adapter would carry trained biases)");
  c.require_unset("layers_to_transform", "adapters on a subset of layers are not supported; expected null");
  c.require_unset("modules_to_save", "fully trained extra modules are not supported; expected null");
  c.require_unset("exclude_modules", "excluded modules are not supported; expected null");
  c.require_unset("layer_replication", "replicated layers are not supported; expected null");
  c.require_unset("lora_bias", "a bias on lora_B is not supported; expected false");
  c.require_unset("use_qalora", "QA-LoRA's pooled inputs are not supported; expected false");
  c.require_unset("trainable_token_indices", "trainable token embeddings are not supported; expected null");
  c.require_unset("alora_invocation_tokens", "activated LoRA is not supported; expected null");
  c.require_unset("target_parameters", "adapters on raw parameters are not supported; expected null");
  c.require_unset("alpha_pattern", "per-module lora_alpha is not supported; expected {}");

  p.config.method = v.name;
  p.config.targets = parse_targets(c);
  p.base_model = c.string("base_model_name_or_path", "");
  v.peft.read(c, p);
  return p;
}

namespace {

// ---- lwb.trained_as: the variant a converted adapter trained as ---------------

std::string trained_as_to_json(const AdapterConfig& c) {
  return json{{"method", c.method}, {"r", c.r}, {"alpha", c.alpha}, {"use_rslora", c.use_rslora},
              {"options", c.options}}
      .dump();
}

AdapterConfig trained_as_from_json(const std::string& text, const std::string& source) {
  const std::string label = source + " (metadata lwb.trained_as)";
  const json j = parse_json_object(text, label);
  const PeftConfigReader c(j, label);
  AdapterConfig a;
  a.method = c.string("method", "");
  if (!find_variant(a.method)) c.fail("method", "names no variant (\"" + a.method + "\")");
  a.r = c.integer("r", 0, 1);
  a.alpha = c.number("alpha", 0);
  a.use_rslora = c.boolean("use_rslora", false);
  if (!c.has("options") || !c.at("options").is_object()) c.fail("options", "must be an object of numbers");
  for (const auto& [key, value] : c.at("options").items()) {
    if (!value.is_number()) c.fail("options", "holds \"" + key + "\": " + value.dump() + "; expected a number");
    a.set_option(key, value.get<double>());
  }
  return a;
}

// ---- reading adapter_model.safetensors ---------------------------------------

// PEFT's key for a tensor of this variant without the adapter name segment
// ("...q_proj.lora_A.default.weight" -> "...q_proj.lora_A.weight",
// "base_model.vera_A.default" -> "base_model.vera_A"), or the key unchanged
// when it is none of the variant's tensors.
std::string canonical_key(const std::string& key, const VariantDescriptor& v) {
  constexpr std::string_view module_prefix = "base_model.model.", model_prefix = "base_model.";
  const bool module_level = key.starts_with(module_prefix);
  if (!module_level && !key.starts_with(model_prefix)) return key;
  std::vector<std::string> parts;
  std::stringstream in(key.substr(module_level ? module_prefix.size() : model_prefix.size()));
  for (std::string part; std::getline(in, part, '.');) parts.push_back(part);
  std::string module;
  if (module_level) {
    if (parts.size() < 6) return key;
    module = parts[0];
    for (int i = 1; i < 5; ++i) module += "." + parts[i];
    if (!parse_module_hf_name(module)) return key;
    parts.erase(parts.begin(), parts.begin() + 5);
  }
  if (parts.size() > 1 && parts.back() == "weight") parts.pop_back();
  if (parts.size() == 2) parts.pop_back();  // the adapter name, e.g. "default"
  if (parts.size() != 1) return key;
  for (const AdapterTensorSpec& spec : v.tensors)
    if (spec.model_level != module_level && spec.suffix.substr(0, spec.suffix.find('.')) == parts[0])
      return module_level ? peft_key(module, spec.suffix) : model_level_key(spec.suffix);
  return key;
}

AdapterState read_peft(const std::string& config_text, const std::string& config_source, const SafetensorsFile& st,
                       const ModelConfig* base) {
  const std::string& source = st.source();
  const auto& meta = st.metadata();
  const auto method = meta.find("lwb.method");
  PeftAdapterFields parsed =
      parse_peft_config(config_text, config_source, method == meta.end() ? "" : method->second);
  AdapterState s;
  s.config = parsed.config;
  s.base_model = parsed.base_model;
  s.rank_pattern = std::move(parsed.rank_pattern);
  s.total_step = parsed.total_step;
  const VariantDescriptor& v = s.config.variant();

  if (const auto it = meta.find("lwb.trained_as"); it != meta.end()) s.trained_as = trained_as_from_json(it->second, source);
  if (const auto it = meta.find("lwb.base_fingerprint"); it != meta.end()) s.base_fingerprint = it->second;
  if (const auto it = meta.find("lwb.base_model"); it != meta.end()) s.base_model = it->second;
  // Checked against a base, the adapter belongs to that base, whatever the
  // file's metadata claims (a claim its tensors need not fit).
  if (base) {
    s.model = *base;
  } else if (const auto it = meta.find("lwb.model_config"); it != meta.end()) {
    s.model = model_config_from_json(it->second, source);
  } else {
    s.model.name.clear();
    s.model.layers = 0;
  }

  std::map<std::string, std::string> original;  // canonical key -> key in the file
  for (const StTensorInfo& info : st.tensors()) {
    const std::string key = canonical_key(info.name, v);
    if (const auto [it, fresh] = original.emplace(key, info.name); !fresh)
      throw FormatError(source, "tensors \"" + it->second + "\" and \"" + info.name +
                                    "\" are the same parameter; expected one adapter per file");
    s.tensors.emplace(key, HostTensor{info.shape, st.read_f32(info.name)});
  }

  if (v.peft.from_file) v.peft.from_file(s, original, source);

  if (base)
    check_adapter_fits(s, *base, source);
  else if (s.model_known())
    check_adapter_fits(s, s.model, source);
  // Checked above as the tensors they are; applied only once rewritten
  // against the original base (to_kept_form).
  s.needs_original_base = static_cast<bool>(v.peft.to_kept_form);
  return s;
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw FormatError(file.string(), "cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string peft_config_json(const AdapterState& s, const std::string& base_model_name_or_path) {
  const AdapterConfig& c = s.config;
  const VariantDescriptor& v = c.variant();
  if (v.peft.type.empty()) throw ConfigError("adapter.method", v.title + " has no PEFT adapter form");
  std::set<std::string> modules;
  for (Target t : c.targets) modules.insert(target_module_name(t));
  json j = {
      {"peft_type", v.peft.type},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", base_model_name_or_path.empty() ? s.base_model : base_model_name_or_path},
      {"target_modules", std::vector<std::string>(modules.begin(), modules.end())},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"inference_mode", true},
  };
  v.peft.write(s, j);
  return j.dump();
}

std::vector<std::uint8_t> peft_safetensors_bytes(const AdapterState& s) {
  std::map<std::string, HostTensor> tensors = s.tensors;
  if (const VariantDescriptor& v = s.config.variant(); v.peft.to_file) v.peft.to_file(s, tensors);
  std::vector<StTensorWrite> writes;
  for (const auto& [key, t] : tensors)
    writes.push_back({key, StDType::F32, t.shape, std::as_bytes(std::span<const float>(t.values))});
  std::map<std::string, std::string> meta = {{"format", "pt"},
                                             {"lwb.base_fingerprint", s.base_fingerprint},
                                             {"lwb.base_model", s.base_model},
                                             {"lwb.method", s.config.method}};
  if (s.model_known()) meta["lwb.model_config"] = model_config_to_json(s.model);
  if (s.trained_as) meta["lwb.trained_as"] = trained_as_to_json(*s.trained_as);
  return serialize_safetensors(std::move(writes), meta);
}

void write_peft_folder(const std::filesystem::path& dir, const AdapterState& s,
                       const std::string& base_model_name_or_path) {
  std::filesystem::create_directories(dir);
  const std::vector<std::uint8_t> weights = peft_safetensors_bytes(s);
  write_file_atomically(dir / "adapter_model.safetensors", std::as_bytes(std::span(weights)));
  write_file_atomically(dir / "adapter_config.json", peft_config_json(s, base_model_name_or_path) + "\n");
}

AdapterState read_peft_folder(const std::filesystem::path& dir, const ModelConfig* base) {
  const std::filesystem::path config = dir / "adapter_config.json";
  const std::filesystem::path weights = dir / "adapter_model.safetensors";
  if (!std::filesystem::exists(config))
    throw FormatError(config.string(),
                      "is missing; a PEFT adapter folder holds adapter_config.json and "
                      "adapter_model.safetensors");
  if (!std::filesystem::exists(weights)) {
    const std::filesystem::path bin = dir / "adapter_model.bin";
    if (std::filesystem::exists(bin))
      throw FormatError(bin.string(),
                        "only safetensors is supported; convert with: python -c \"import torch, "
                        "safetensors.torch as st; st.save_file(torch.load('adapter_model.bin'), "
                        "'adapter_model.safetensors', metadata={'format': 'pt'})\"");
    throw FormatError(weights.string(), "is missing");
  }
  AdapterState s = read_peft(read_text(config), config.string(), SafetensorsFile::open(weights), base);
  // A file from elsewhere may hold what no training here would keep.
  if (const std::string bad = non_finite_tensors(s); !bad.empty())
    throw FormatError(weights.string(), bad + "; an adapter with such weights cannot be used");
  return s;
}

AdapterState read_peft_blobs(const std::string& config_json, std::vector<std::uint8_t> safetensors,
                             const std::string& label, const ModelConfig* base) {
  return read_peft(config_json, label + " (adapter_config.json)",
                   SafetensorsFile::from_bytes(std::move(safetensors), label + " (adapter_model.safetensors)"),
                   base);
}

}  // namespace lwb::io

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
#include "core/common/json_integer.h"
#include "core/format/atomic_file.h"
#include "core/format/safetensors.h"
#include "core/model/checkpoint.h"

namespace lwb::io {

namespace {
using json = nlohmann::json;

constexpr std::string_view kKeyPrefix = "base_model.model.";

// PEFT's rank_pattern names the E vector as the allocator saw it inside the
// wrapped transformers model: "model.layers.0.self_attn.q_proj.lora_E".
std::string rank_pattern_key(const std::string& module) { return module + ".lora_E"; }

std::vector<std::size_t> kept_indices(const std::vector<bool>& keep) {
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < keep.size(); ++i)
    if (keep[i]) idx.push_back(i);
  return idx;
}

// Rows (axis 0) or columns (axis 1) `idx` of a 2-D tensor.
HostTensor select(const HostTensor& t, const std::vector<std::size_t>& idx, int axis) {
  const std::int64_t rows = t.shape[0], cols = t.shape[1];
  const auto k = static_cast<std::int64_t>(idx.size());
  HostTensor out;
  out.shape = axis == 0 ? std::vector<std::int64_t>{k, cols} : std::vector<std::int64_t>{rows, k};
  out.values.reserve(static_cast<std::size_t>(out.numel()));
  if (axis == 0) {
    for (std::size_t i : idx)
      out.values.insert(out.values.end(), t.values.begin() + i * cols, t.values.begin() + (i + 1) * cols);
  } else {
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::size_t i : idx) out.values.push_back(t.values[r * cols + i]);
  }
  return out;
}

// The inverse of select: a tensor of `full` along `axis`, zero elsewhere.
HostTensor spread(const HostTensor& t, const std::vector<std::size_t>& idx, int axis, std::int64_t full) {
  const std::int64_t rows = t.shape[0], cols = t.shape[1];
  HostTensor out;
  out.shape = axis == 0 ? std::vector<std::int64_t>{full, cols} : std::vector<std::int64_t>{rows, full};
  out.values.assign(static_cast<std::size_t>(out.numel()), 0.0f);
  for (std::size_t j = 0; j < idx.size(); ++j) {
    if (axis == 0)
      std::copy_n(t.values.begin() + j * cols, cols, out.values.begin() + idx[j] * cols);
    else
      for (std::int64_t r = 0; r < rows; ++r) out.values[r * full + idx[j]] = t.values[r * cols + j];
  }
  return out;
}

// The tensors as PEFT saves them: AdaLoRA sliced to the kept triplets.
std::map<std::string, HostTensor> tensors_on_disk(const AdapterState& s) {
  std::map<std::string, HostTensor> out = s.tensors;
  for (const auto& [module, keep] : s.rank_pattern) {
    const std::vector<std::size_t> idx = kept_indices(keep);
    for (const auto& [suffix, axis] : {std::pair{"lora_A", 0}, {"lora_E", 0}, {"lora_B", 1}}) {
      const std::string key = peft_key(module, suffix);
      const auto it = s.tensors.find(key);
      if (it == s.tensors.end() || it->second.shape.size() != 2 ||
          it->second.shape[axis] != static_cast<std::int64_t>(keep.size()))
        throw ConfigError("rank_pattern", "\"" + module + "\" needs a tensor " + key + " with init_r = " +
                                              std::to_string(keep.size()) + (axis == 0 ? " rows" : " columns"));
      out[key] = select(it->second, idx, axis);
    }
  }
  return out;
}

// ---- reading adapter_config.json ---------------------------------------------

class ConfigReader {
 public:
  ConfigReader(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& msg) const {
    throw FormatError(source_, "field \"" + field + "\" " + msg);
  }
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  const json& at(const char* key) const { return j_[key]; }

  double number(const char* key, double fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_number()) fail(key, "must be a number, got " + j_[key].dump());
    return j_[key].get<double>();
  }
  // Read into its real type, refused outside [lo, hi] (never wrapped).
  template <class T>
  T integer(const char* key, T fallback, T lo, T hi = std::numeric_limits<T>::max()) const {
    if (!has(key)) return fallback;
    const std::optional<T> v = json_integer<T>(j_[key], lo, hi);
    if (!v) fail(key, "must be " + integer_range_text(lo, hi) + ", got " + j_[key].dump());
    return *v;
  }
  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_boolean()) fail(key, "must be true or false, got " + j_[key].dump());
    return j_[key].get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!j_[key].is_string()) fail(key, "must be a string, got " + j_[key].dump());
    return j_[key].get<std::string>();
  }
  // Refuses a field unless it is absent, null, false or empty.
  void require_unset(const char* key, const std::string& why) const {
    if (!has(key)) return;
    const json& v = j_[key];
    if ((v.is_boolean() && !v.get<bool>()) || ((v.is_array() || v.is_object()) && v.empty())) return;
    fail(key, "is " + v.dump() + ": " + why);
  }

 private:
  const json& j_;
  std::string source_;
};

std::vector<Target> parse_targets(const ConfigReader& c) {
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

// "model.layers.0.self_attn.q_proj.lora_E" (PEFT), also with the adapter name
// or the "base_model.model." prefix -> the module's hf name.
std::string rank_pattern_module(const ConfigReader& c, std::string key) {
  if (key.starts_with(kKeyPrefix)) key.erase(0, kKeyPrefix.size());
  constexpr std::string_view tail = ".lora_E";
  if (const std::size_t pos = key.rfind(tail);
      pos != std::string::npos && (pos + tail.size() == key.size() || key[pos + tail.size()] == '.')) {
    const std::string module = key.substr(0, pos);
    if (parse_module_hf_name(module)) return module;
  }
  c.fail("rank_pattern",
         "has the key \"" + key +
             "\"; expected a module's E vector such as \"model.layers.0.self_attn.q_proj.lora_E\"");
}

struct ParsedConfig {
  AdapterConfig config;
  std::string base_model;
  std::map<std::string, std::vector<bool>> rank_pattern;
  std::int64_t total_step = 0;
};

ParsedConfig parse_config(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw FormatError(source, std::string("is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw FormatError(source, "is not a JSON object");
  const ConfigReader c(j, source);
  ParsedConfig p;
  AdapterConfig& a = p.config;

  const std::string type = c.string("peft_type", "");
  if (type != "LORA" && type != "ADALORA")
    c.fail("peft_type", (type.empty() ? std::string("is missing") : "is \"" + type + "\"") +
                            "; only LORA and ADALORA adapters are supported");
  const bool adalora = type == "ADALORA";

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
  if (!adalora) c.require_unset("rank_pattern", "per-module ranks are not supported; expected {}");

  if (c.has("init_lora_weights")) {
    const json& init = c.at("init_lora_weights");
    if (init.is_string()) {
      const std::string v = init.get<std::string>();
      if (v == "gaussian")
        a.init = LoraInit::Gaussian;
      else if (v != "eva" && v != "orthogonal")
        c.fail("init_lora_weights",
               "is \"" + v +
                   "\": this initialisation changes the base weights; save the adapter "
                   "with PEFT's path_initial_model_for_weight_conversion to get a plain LoRA");
    } else if (!init.is_boolean()) {
      c.fail("init_lora_weights", "must be true, false or a string, got " + init.dump());
    }
  }

  a.targets = parse_targets(c);
  p.base_model = c.string("base_model_name_or_path", "");
  a.alpha = c.number("lora_alpha", 8);
  a.dropout = c.number("lora_dropout", 0);
  if (adalora) {
    if (c.boolean("use_dora", false)) c.fail("use_dora", "is true, but AdaLoRA has no DoRA form");
    a.method = Method::AdaLora;
    a.r = c.integer("init_r", 12, 1);  // AdaLoRA's rank; its "r" is unused
    a.adalora.target_r = c.integer("target_r", a.adalora.target_r, 0);
    a.adalora.tinit = c.integer("tinit", a.adalora.tinit, std::int64_t{0});
    a.adalora.tfinal = c.integer("tfinal", a.adalora.tfinal, std::int64_t{0});
    a.adalora.delta_t = c.integer("deltaT", a.adalora.delta_t, 1);
    a.adalora.beta1 = c.number("beta1", a.adalora.beta1);
    a.adalora.beta2 = c.number("beta2", a.adalora.beta2);
    a.adalora.orth_reg_weight = c.number("orth_reg_weight", a.adalora.orth_reg_weight);
    p.total_step = c.integer("total_step", std::int64_t{0}, std::int64_t{0});
    if (c.has("rank_pattern")) {
      if (!c.at("rank_pattern").is_object()) c.fail("rank_pattern", "must be an object or null");
      for (const auto& [key, flags] : c.at("rank_pattern").items()) {
        const std::string module = rank_pattern_module(c, key);
        if (!flags.is_array() || flags.size() != static_cast<std::size_t>(a.r))
          c.fail("rank_pattern",
                 "entry \"" + key + "\" must be a list of init_r = " + std::to_string(a.r) + " booleans");
        std::vector<bool> keep;
        for (const json& f : flags) {
          if (!f.is_boolean())
            c.fail("rank_pattern", "entry \"" + key + "\" holds " + f.dump() + "; expected booleans");
          keep.push_back(f.get<bool>());
        }
        p.rank_pattern[module] = std::move(keep);
      }
    }
  } else {
    a.r = c.integer("r", 8, 1);
    a.method = c.boolean("use_dora", false) ? Method::Dora : Method::Lora;
    a.use_rslora = c.boolean("use_rslora", false);
  }
  return p;
}

// ---- reading adapter_model.safetensors ---------------------------------------

// PEFT's key for a tensor of this method without the adapter name segment
// ("...q_proj.lora_A.default.weight" -> "...q_proj.lora_A.weight"), or the
// key unchanged when it is not an adapter tensor of a LLaMA module.
std::string canonical_key(const std::string& key, Method method) {
  if (!key.starts_with(kKeyPrefix)) return key;
  std::vector<std::string> parts;
  std::stringstream in(key.substr(kKeyPrefix.size()));
  for (std::string part; std::getline(in, part, '.');) parts.push_back(part);
  if (parts.size() < 6) return key;
  std::string module = parts[0];
  for (int i = 1; i < 5; ++i) module += "." + parts[i];
  if (!parse_module_hf_name(module)) return key;
  std::vector<std::string> tail(parts.begin() + 5, parts.end());
  if (tail.size() > 1 && tail.back() == "weight") tail.pop_back();
  if (tail.size() == 2) tail.pop_back();  // the adapter name, e.g. "default"
  if (tail.size() != 1) return key;
  const std::string& name = tail[0];
  if (name == "lora_magnitude_vector") return peft_key(module, name);
  if (name != "lora_A" && name != "lora_B" && name != "lora_E") return key;
  return peft_key(module, method == Method::AdaLora ? name : name + ".weight");
}

AdapterState read_peft(const std::string& config_text, const std::string& config_source, const SafetensorsFile& st,
                       const ModelConfig* base) {
  const std::string& source = st.source();
  ParsedConfig parsed = parse_config(config_text, config_source);
  AdapterState s;
  s.config = parsed.config;
  s.base_model = parsed.base_model;
  s.rank_pattern = std::move(parsed.rank_pattern);
  s.total_step = parsed.total_step;

  const auto& meta = st.metadata();
  if (const auto it = meta.find("lwb.base_fingerprint"); it != meta.end()) s.base_fingerprint = it->second;
  if (const auto it = meta.find("lwb.method");
      it != meta.end() && it->second == "relora" && s.config.method == Method::Lora)
    s.config.method = Method::ReLora;
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
    const std::string key = canonical_key(info.name, s.config.method);
    if (const auto [it, fresh] = original.emplace(key, info.name); !fresh)
      throw FormatError(source, "tensors \"" + it->second + "\" and \"" + info.name +
                                    "\" are the same parameter; expected one adapter per file");
    s.tensors.emplace(key, HostTensor{info.shape, st.read_f32(info.name)});
  }

  for (const auto& [module, keep] : s.rank_pattern) {
    const std::vector<std::size_t> idx = kept_indices(keep);
    for (const auto& [suffix, axis] : {std::pair{"lora_A", 0}, {"lora_E", 0}, {"lora_B", 1}}) {
      const auto it = s.tensors.find(peft_key(module, suffix));
      if (it == s.tensors.end()) continue;  // reported as missing by the fit check
      HostTensor& t = it->second;
      if (t.shape.size() != 2 || t.shape[axis] != static_cast<std::int64_t>(idx.size()))
        throw FormatError(source, "tensor \"" + original.at(it->first) + "\" has " +
                                      (t.shape.size() == 2 ? std::to_string(t.shape[axis]) : std::string("no")) +
                                      (axis == 0 ? " rows" : " columns") + " but rank_pattern keeps " +
                                      std::to_string(idx.size()) + " of init_r = " + std::to_string(s.config.r) +
                                      " triplets");
      t = spread(t, idx, axis, s.config.r);
    }
  }

  if (base)
    check_adapter_fits(s, *base, source);
  else if (s.model_known())
    check_adapter_fits(s, s.model, source);
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

std::string peft_config_json(const AdapterState& s) {
  const AdapterConfig& c = s.config;
  std::set<std::string> modules;
  for (Target t : c.targets) modules.insert(target_module_name(t));
  const bool adalora = c.method == Method::AdaLora;
  json j = {
      {"peft_type", adalora ? "ADALORA" : "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", s.base_model},
      {"lora_alpha", c.alpha},
      {"lora_dropout", c.dropout},
      {"target_modules", std::vector<std::string>(modules.begin(), modules.end())},
      {"use_rslora", !adalora && c.use_rslora},
      {"use_dora", c.method == Method::Dora},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"init_lora_weights", c.init == LoraInit::Gaussian && !adalora ? json("gaussian") : json(true)},
      {"rank_pattern", json::object()},
      {"alpha_pattern", json::object()},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"inference_mode", true},
  };
  if (!adalora) {
    j["r"] = c.r;
  } else {
    // AdaLoRA's rank is init_r; PEFT warns when its unused "r" differs from the default, so it is left out.
    const AdaLoraOptions& o = c.adalora;
    j["init_r"] = c.r;
    j["target_r"] = o.target_r;
    j["tinit"] = o.tinit;
    j["tfinal"] = o.tfinal;
    j["deltaT"] = o.delta_t;
    j["beta1"] = o.beta1;
    j["beta2"] = o.beta2;
    j["orth_reg_weight"] = o.orth_reg_weight;
    // total_step only shapes the training schedule, but PEFT refuses a config
    // whose total_step does not exceed tinit + tfinal; an unknown count is
    // written as the smallest value it accepts.
    j["total_step"] = s.total_step > 0 ? s.total_step : o.tinit + o.tfinal + 1;
    if (s.rank_pattern.empty()) {
      j["rank_pattern"] = nullptr;  // PEFT's value before the mask is fixed: nothing is sliced
    } else {
      for (const auto& [module, keep] : s.rank_pattern) j["rank_pattern"][rank_pattern_key(module)] = keep;
    }
  }
  return j.dump();
}

std::vector<std::uint8_t> peft_safetensors_bytes(const AdapterState& s) {
  const std::map<std::string, HostTensor> tensors = tensors_on_disk(s);
  std::vector<StTensorWrite> writes;
  for (const auto& [key, t] : tensors)
    writes.push_back({key, StDType::F32, t.shape, std::as_bytes(std::span<const float>(t.values))});
  std::map<std::string, std::string> meta = {{"format", "pt"},
                                             {"lwb.base_fingerprint", s.base_fingerprint},
                                             {"lwb.method", method_name(s.config.method)}};
  if (s.model_known()) meta["lwb.model_config"] = model_config_to_json(s.model);
  return serialize_safetensors(std::move(writes), meta);
}

void write_peft_folder(const std::filesystem::path& dir, const AdapterState& s) {
  std::filesystem::create_directories(dir);
  const std::vector<std::uint8_t> weights = peft_safetensors_bytes(s);
  write_file_atomically(dir / "adapter_model.safetensors", std::as_bytes(std::span(weights)));
  write_file_atomically(dir / "adapter_config.json", peft_config_json(s) + "\n");
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

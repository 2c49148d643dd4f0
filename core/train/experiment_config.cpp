#include "core/train/experiment_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/common/errors.h"
#include "core/common/integers.h"
#include "core/common/json_depth.h"
#include "core/common/json_integer.h"
#include "core/adapters/descriptor.h"
#include "core/common/setting_text.h"
#include "core/data/instruction_data.h"
#include "core/model/config.h"
#include "core/source/downloads.h"

namespace lwb {

namespace {

using json = nlohmann::json;
using EC = ExperimentConfig;

enum class Kind { Int, Float, Bool, String, List };

struct Field {
  std::string key;
  Kind kind;
  std::function<std::string(const EC&)> get;
  std::function<void(EC&, const std::string&)> set;
};

// Counts, steps, sizes and seeds: none is negative, and each must fit its type.
template <class T, class Access>
Field int_field(std::string key, Access access) {
  return {key, Kind::Int, [access](const EC& c) { return std::to_string(access(const_cast<EC&>(c))); },
          [key, access](EC& c, const std::string& v) {
            access(c) = parse_setting_integer<T>(key, v, T{0}, std::numeric_limits<T>::max());
          }};
}

template <class Access>
Field float_field(std::string key, Access access) {
  return {key, Kind::Float, [access](const EC& c) { return format_setting_number(access(const_cast<EC&>(c))); },
          [key, access](EC& c, const std::string& v) { access(c) = parse_setting_number(key, v); }};
}

template <class Access>
Field bool_field(std::string key, Access access) {
  return {key, Kind::Bool,
          [access](const EC& c) { return std::string(access(const_cast<EC&>(c)) ? "true" : "false"); },
          [key, access](EC& c, const std::string& v) { access(c) = parse_setting_bool(key, v); }};
}

template <class Access>
Field string_field(std::string key, Access access) {
  return {key, Kind::String, [access](const EC& c) { return access(const_cast<EC&>(c)); },
          [access](EC& c, const std::string& v) { access(c) = v; }};
}

// The adapter's settings are its variants' (core/adapters/descriptor.h).
Field adapter_field(const AdapterField& f) {
  const Kind kind = f.kind == FieldKind::Int     ? Kind::Int
                    : f.kind == FieldKind::Float ? Kind::Float
                    : f.kind == FieldKind::Bool  ? Kind::Bool
                    : f.kind == FieldKind::Targets ? Kind::List
                                                   : Kind::String;
  return {f.key, kind, [get = f.get](const EC& c) { return get(c.adapter); },
          [set = f.set](EC& c, const std::string& v) { set(c.adapter, v); }};
}

const std::vector<Field>& fields() {
  static const std::vector<Field> table = [] {
    std::vector<Field> t = {
      string_field("name", [](EC& c) -> std::string& { return c.name; }),
      string_field("model.preset", [](EC& c) -> std::string& { return c.model.preset; }),
      string_field("model.base", [](EC& c) -> std::string& { return c.model.base; }),
      {"model.frozen_dtype", Kind::String, [](const EC& c) { return c.model.frozen_dtype; },
       [](EC& c, const std::string& v) {
         if (v != "fp32" && v != "bf16")
           throw ConfigError("model.frozen_dtype", "expected fp32 or bf16, got \"" + v + "\"");
         c.model.frozen_dtype = v;
       }},
      string_field("model.tokenizer", [](EC& c) -> std::string& { return c.model.tokenizer; }),
      string_field("model.chat_template", [](EC& c) -> std::string& { return c.model.chat_template; }),
      string_field("data.kind", [](EC& c) -> std::string& { return c.data.kind; }),
      string_field("data.task", [](EC& c) -> std::string& { return c.data.task; }),
      string_field("data.path", [](EC& c) -> std::string& { return c.data.path; }),
      {"data.format", Kind::String, [](const EC& c) { return c.data.format; },
       [](EC& c, const std::string& v) {
         data::parse_jsonl_format(v);
         c.data.format = v;
       }},
      string_field("data.prompt_field", [](EC& c) -> std::string& { return c.data.prompt_field; }),
      string_field("data.completion_field",
                   [](EC& c) -> std::string& { return c.data.completion_field; }),
      {"data.loss_on", Kind::String, [](const EC& c) { return c.data.loss_on; },
       [](EC& c, const std::string& v) {
         if (v != "assistant" && v != "all")
           throw ConfigError("data.loss_on", "expected assistant (the completion or the assistant's turns) or all, got \"" +
                                                 v + "\"");
         c.data.loss_on = v;
       }},
      {"data.overlong", Kind::String, [](const EC& c) { return c.data.overlong; },
       [](EC& c, const std::string& v) {
         if (v != "drop" && v != "truncate")
           throw ConfigError("data.overlong", "expected drop or truncate, got \"" + v + "\"");
         c.data.overlong = v;
       }},
      int_field<int>("data.n_train", [](EC& c) -> int& { return c.data.n_train; }),
      int_field<int>("data.n_heldout", [](EC& c) -> int& { return c.data.n_heldout; }),
      int_field<int>("data.n_validation", [](EC& c) -> int& { return c.data.n_validation; }),
      float_field("data.heldout_fraction", [](EC& c) -> double& { return c.data.heldout_fraction; }),
      int_field<std::int64_t>("data.corpus_bytes",
                              [](EC& c) -> std::int64_t& { return c.data.corpus_bytes; }),
      int_field<std::uint64_t>("data.seed", [](EC& c) -> std::uint64_t& { return c.data.seed; }),
      float_field("optimizer.lr", [](EC& c) -> double& { return c.optimizer.lr; }),
      float_field("optimizer.beta1", [](EC& c) -> double& { return c.optimizer.beta1; }),
      float_field("optimizer.beta2", [](EC& c) -> double& { return c.optimizer.beta2; }),
      float_field("optimizer.eps", [](EC& c) -> double& { return c.optimizer.eps; }),
      float_field("optimizer.weight_decay", [](EC& c) -> double& { return c.optimizer.weight_decay; }),
      float_field("optimizer.grad_clip", [](EC& c) -> double& { return c.optimizer.grad_clip; }),
      {"schedule.kind", Kind::String,
       [](const EC& c) { return std::string(schedule_name(c.schedule.kind)); },
       [](EC& c, const std::string& v) { c.schedule.kind = parse_schedule(v); }},
      int_field<std::int64_t>("schedule.warmup_steps",
                              [](EC& c) -> std::int64_t& { return c.schedule.warmup_steps; }),
      float_field("schedule.min_lr_ratio", [](EC& c) -> double& { return c.schedule.min_lr_ratio; }),
      int_field<std::int64_t>("train.steps", [](EC& c) -> std::int64_t& { return c.train.steps; }),
      int_field<int>("train.batch", [](EC& c) -> int& { return c.train.batch; }),
      int_field<int>("train.seq_len", [](EC& c) -> int& { return c.train.seq_len; }),
      int_field<std::uint64_t>("train.seed", [](EC& c) -> std::uint64_t& { return c.train.seed; }),
      int_field<int>("train.eval_every", [](EC& c) -> int& { return c.train.eval_every; }),
      int_field<int>("train.eval_examples", [](EC& c) -> int& { return c.train.eval_examples; }),
      {"train.eval_split", Kind::String, [](const EC& c) { return c.train.eval_split; },
       [](EC& c, const std::string& v) {
         if (v != "test" && v != "validation")
           throw ConfigError("train.eval_split", "expected test or validation, got \"" + v + "\"");
         c.train.eval_split = v;
       }},
      string_field("train.device", [](EC& c) -> std::string& { return c.train.device; }),
      int_field<int>("train.threads", [](EC& c) -> int& { return c.train.threads; }),
      int_field<std::int64_t>("train.state_every_steps",
                              [](EC& c) -> std::int64_t& { return c.train.state_every_steps; }),
      float_field("train.state_every_minutes", [](EC& c) -> double& { return c.train.state_every_minutes; }),
      float_field("train.divergence_factor", [](EC& c) -> double& { return c.train.divergence_factor; }),
      int_field<int>("train.collapse_steps", [](EC& c) -> int& { return c.train.collapse_steps; }),
      int_field<int>("train.samples", [](EC& c) -> int& { return c.train.samples; }),
      int_field<int>("train.sample_every", [](EC& c) -> int& { return c.train.sample_every; }),
      int_field<int>("train.sample_max_new", [](EC& c) -> int& { return c.train.sample_max_new; }),
      bool_field("train.sample_greedy", [](EC& c) -> bool& { return c.train.sample_greedy; }),
    };
    const auto at = std::find_if(t.begin(), t.end(), [](const Field& f) { return f.key == "optimizer.lr"; });
    std::vector<Field> adapter;
    for (const AdapterField& f : adapter_fields()) adapter.push_back(adapter_field(f));
    t.insert(at, adapter.begin(), adapter.end());
    return t;
  }();
  return table;
}

const Field& find_field(const std::string& key) {
  for (const Field& f : fields())
    if (f.key == key) return f;
  throw ConfigError(key, "unknown setting; known settings: " + [] {
    std::string s;
    for (const Field& f : fields()) s += (s.empty() ? "" : ", ") + f.key;
    return s;
  }());
}

json typed_value(const Field& f, const std::string& v) {
  switch (f.kind) {
    case Kind::Int:
      return v.starts_with('-') ? json(parse_setting_integer<std::int64_t>(f.key, v, std::numeric_limits<std::int64_t>::min(), 0))
                                : json(parse_setting_integer<std::uint64_t>(f.key, v, 0, std::numeric_limits<std::uint64_t>::max()));
    case Kind::Float: return json(parse_setting_number(f.key, v));
    case Kind::Bool: return json(parse_setting_bool(f.key, v));
    case Kind::String: return json(v);
    case Kind::List: return json(split_setting_list(v));
  }
  return json();
}

std::string string_value(const Field& f, const json& v) {
  auto expected = [&](const char* what) {
    return ConfigError(f.key, std::string("expected ") + what + ", got " + v.dump());
  };
  switch (f.kind) {
    case Kind::Int:
      if (!v.is_number_integer()) throw expected("an integer");
      return v.is_number_unsigned() ? std::to_string(v.get<std::uint64_t>())
                                    : std::to_string(v.get<std::int64_t>());
    case Kind::Float:
      if (!v.is_number()) throw expected("a number");
      return format_setting_number(v.get<double>());
    case Kind::Bool:
      if (!v.is_boolean()) throw expected("true or false");
      return v.get<bool>() ? "true" : "false";
    case Kind::String:
      if (!v.is_string()) throw expected("a string");
      return v.get<std::string>();
    case Kind::List: {
      if (!v.is_array()) throw expected("a list of strings");
      std::string s;
      for (const json& e : v) {
        if (!e.is_string()) throw expected("a list of strings");
        s += (s.empty() ? "" : ",") + e.get<std::string>();
      }
      return s;
    }
  }
  return {};
}

void flatten(const json& j, const std::string& prefix, std::map<std::string, json>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object())
      flatten(*it, key, out);
    else
      out[key] = *it;
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ExperimentConfig::problems() const {
  std::vector<std::pair<std::string, std::string>> out;
  auto check = [&](auto&& fn) {
    try {
      fn();
    } catch (const ConfigError& e) {
      out.emplace_back(e.field(), e.what());
    }
  };
  auto require = [](bool ok, const char* field, const std::string& msg) {
    if (!ok) throw ConfigError(field, msg);
  };
  check([&] {
    require(!name.empty(), "name", "an experiment needs a name");
    for (unsigned char ch : name)
      require(ch >= 0x20 && ch != 0x7f, "name", "must not contain control characters");
  });
  // The shape a preset names is known here; a downloaded model's or a path's
  // is read from its file, so the checks against it wait for the run.
  ModelConfig mc;
  bool model_ok = false;
  check([&] {
    if (const DownloadableModel* d = find_downloadable(model.preset); d && d->preset == model.preset) return;
    const auto builtin = model_preset_names();
    if (std::find(builtin.begin(), builtin.end(), model.preset) == builtin.end())
      throw ConfigError("model.preset", "unknown model preset \"" + model.preset + "\"; known: " + known_model_presets());
    mc = model_preset(model.preset);
    model_ok = model.base == "pretrained" || model.base == "random";
  });
  check([&] {
    require(!model.base.empty(), "model.base",
            "expected \"pretrained\", \"random\" or a checkpoint path");
  });
  check([&] {
    require(data.kind == "task" || data.kind == "jsonl" || data.kind == "text" ||
                data.kind == "pretrain",
            "data.kind", "expected task, jsonl, text or pretrain, got \"" + data.kind + "\"");
  });
  check([&] {
    require((data.kind != "jsonl" && data.kind != "text") || !data.path.empty(), "data.path",
            "a " + data.kind + " dataset needs a file path");
  });
  check([&] {
    require(data.kind != "task" || (data.n_train > 0 && data.n_heldout > 0), "data.n_train",
            "a task dataset needs positive data.n_train and data.n_heldout");
  });
  check([&] {
    require(data.heldout_fraction > 0 && data.heldout_fraction < 1, "data.heldout_fraction",
            "must be in (0, 1)");
  });
  if (model_ok) check([&] { adapter.validate(mc, train.steps, schedule.warmup_steps); });
  check([&] {
    require(model.frozen_dtype == "fp32" || model.frozen_dtype == "bf16", "model.frozen_dtype",
            "expected fp32 or bf16, got \"" + model.frozen_dtype + "\"");
    if (model.frozen_dtype == "bf16") adapter.check_bf16_frozen();
  });
  check([&] { require(optimizer.lr > 0, "optimizer.lr", "must be positive"); });
  check([&] {
    require(optimizer.beta1 >= 0 && optimizer.beta1 < 1, "optimizer.beta1", "must be in [0, 1)");
  });
  check([&] {
    require(optimizer.beta2 >= 0 && optimizer.beta2 < 1, "optimizer.beta2", "must be in [0, 1)");
  });
  check([&] { require(optimizer.eps > 0, "optimizer.eps", "must be positive"); });
  check([&] {
    require(optimizer.weight_decay >= 0, "optimizer.weight_decay", "must not be negative");
  });
  check([&] {
    require(schedule.warmup_steps >= 0 && schedule.warmup_steps <= train.steps,
            "schedule.warmup_steps", "must be between 0 and train.steps");
  });
  check([&] {
    require(schedule.min_lr_ratio >= 0 && schedule.min_lr_ratio <= 1, "schedule.min_lr_ratio",
            "must be in [0, 1]");
  });
  check([&] { require(train.steps > 0, "train.steps", "must be positive"); });
  check([&] { require(train.batch > 0, "train.batch", "must be positive"); });
  check([&] {
    require(train.seq_len >= 2, "train.seq_len", "must be at least 2");
    if (model_ok)
      require(train.seq_len <= mc.max_seq, "train.seq_len",
              "sequence length " + std::to_string(train.seq_len) +
                  " exceeds the model's maximum of " + std::to_string(mc.max_seq));
  });
  check([&] { require(train.eval_every >= 0, "train.eval_every", "must not be negative"); });
  check([&] { require(train.eval_examples > 0, "train.eval_examples", "must be positive"); });
  check([&] {
    require(train.eval_split == "test" || train.eval_split == "validation", "train.eval_split",
            "expected test or validation, got \"" + train.eval_split + "\"");
    require(train.eval_split != "validation" || data.n_validation > 0, "train.eval_split",
            "evaluating on the validation split needs data.n_validation > 0");
  });
  check([&] {
    require(train.state_every_minutes >= 0, "train.state_every_minutes", "must not be negative (0: off)");
  });
  check([&] {
    require(train.divergence_factor == 0 || train.divergence_factor > 1, "train.divergence_factor",
            "must be above 1 (0: off)");
  });
  check([&] {
    require(train.samples >= 0 && train.samples <= kMaxTrainingSamples, "train.samples",
            "must be between 0 (no samples) and " + std::to_string(kMaxTrainingSamples) + " prompts, not " +
                std::to_string(train.samples));
  });
  check([&] {
    require(train.sample_every >= 1, "train.sample_every", "must be at least 1 step, not " + std::to_string(train.sample_every));
  });
  check([&] {
    require(train.sample_max_new >= 1 && train.sample_max_new <= 4096, "train.sample_max_new",
            "must be between 1 and 4096 new tokens, not " + std::to_string(train.sample_max_new));
    if (model_ok && train.samples > 0)
      require(train.sample_max_new < mc.max_seq, "train.sample_max_new",
              std::to_string(train.sample_max_new) + " new tokens leave no room for a prompt in the model's context of " +
                  std::to_string(mc.max_seq));
  });
  check([&] {
    const std::string& d = train.device;
    require(d == "cpu" || d == "auto" || d.rfind("cuda", 0) == 0, "train.device",
            "expected auto, cpu or cuda:N, got \"" + d + "\"");
  });
  return out;
}

void ExperimentConfig::validate() const {
  const auto p = problems();
  if (!p.empty()) throw ConfigError(p.front().first, p.front().second.substr(p.front().first.size() + 2));
}

std::string ExperimentConfig::to_json(int indent) const {
  json root;
  root["version"] = kVersion;
  for (const Field& f : fields()) {
    std::string pointer = "/" + f.key;  // "adapter.r" -> "/adapter/r"
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    root[json::json_pointer(pointer)] = typed_value(f, f.get(*this));
  }
  return root.dump(indent);
}

ExperimentConfig ExperimentConfig::from_json(const std::string& text, const std::string& source) {
  check_json_depth(text, source);
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double's range
    throw FormatError(source, std::string("not valid JSON: ") + e.what());
  }
  if (!root.is_object()) throw FormatError(source, "expected a JSON object");
  std::map<std::string, json> flat;
  flatten(root, "", flat);
  ExperimentConfig c;
  if (auto it = flat.find("version"); it != flat.end()) {
    const std::optional<int> version = json_integer<int>(it->second, 0, std::numeric_limits<int>::max());
    if (!version)
      throw FormatError(source, "\"version\" must be " + integer_range_text(0, std::numeric_limits<int>::max()) + ", got " +
                                    it->second.dump());
    const int v = *version;
    if (v > kVersion)
      throw FormatError(source, "config version " + std::to_string(v) +
                                    " is newer than this program understands (" +
                                    std::to_string(kVersion) + ")");
    flat.erase(it);
  }
  // The method first: choosing it sets what its name implies ("rslora":
  // use_rslora), and the settings the document holds then override that.
  if (const auto it = flat.find("adapter.method"); it != flat.end()) {
    const Field& f = find_field(it->first);
    f.set(c, string_value(f, it->second));
    flat.erase(it);
  }
  for (const auto& [key, value] : flat) {
    const Field& f = find_field(key);
    f.set(c, string_value(f, value));
  }
  return c;
}

ExperimentConfig ExperimentConfig::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path, "cannot open the config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str(), path);
}

void ExperimentConfig::save(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw FormatError(path, "cannot write the config file");
  out << to_json() << "\n";
}

void ExperimentConfig::set(const std::string& key, const std::string& value) {
  find_field(key).set(*this, value);
}

std::string ExperimentConfig::get(const std::string& key) const { return find_field(key).get(*this); }

std::vector<std::string> ExperimentConfig::keys() {
  std::vector<std::string> k;
  for (const Field& f : fields()) k.push_back(f.key);
  return k;
}

ExperimentConfig experiment_preset(const std::string& name) {
  ExperimentConfig c;
  c.name = name;
  auto lora_all = [&] {
    c.adapter.method = "lora";
    c.adapter.r = 8;
    c.adapter.alpha = 16;
    c.adapter.targets.assign(kAllTargets.begin(), kAllTargets.end());
    c.optimizer.lr = 3e-3;
  };
  if (name == "demo" || name == "tiny-lora") {
    lora_all();
    c.train.steps = 300;
    c.schedule.warmup_steps = 20;
    return c;
  }
  if (name == "tiny-full") {
    c.adapter.method = "full";
    c.optimizer.lr = 1e-3;
    c.train.steps = 300;
    c.schedule.warmup_steps = 20;
    return c;
  }
  if (name == "small-lora" || name == "small-full") {
    c.model.preset = "small";
    if (name == "small-lora") {
      lora_all();
      c.optimizer.lr = 1e-3;
    } else {
      c.adapter.method = "full";
      c.optimizer.lr = 3e-4;
    }
    c.train.steps = 200;
    c.train.batch = 8;
    c.schedule.warmup_steps = 20;
    return c;
  }
  if (name == "smollm2-lora") {
    // SmolLM2-135M-Instruct learning the person-json chat task (loss on the
    // assistant's answer) on two CPU cores: the examples are under 100
    // tokens, the answer's shape is all there is to learn, and on a shared
    // machine a step of batch 4 took 14 s (docs/demo-smollm2.md), so a short
    // run of small batches. 1e-3: the usual LoRA rate for a run this short.
    c.model.preset = "smollm2-135m";
    c.data.task = "person-json";
    c.data.n_train = 1000;
    c.data.n_heldout = 100;
    lora_all();
    c.optimizer.lr = 1e-3;
    c.train.steps = 70;
    c.train.batch = 4;
    c.train.seq_len = 112;
    c.train.eval_every = 35;
    c.train.eval_examples = 50;
    c.schedule.warmup_steps = 5;
    return c;
  }
  if (name == "pretrain-tiny" || name == "pretrain-small") {
    const bool tiny = name == "pretrain-tiny";
    c.model.preset = tiny ? "tiny" : "small";
    c.model.base = "random";
    c.data.kind = "pretrain";
    c.data.corpus_bytes = tiny ? 3'000'000 : 12'000'000;
    c.adapter.method = "full";
    c.optimizer.lr = tiny ? 3e-3 : 1e-3;
    c.optimizer.weight_decay = 0.1;
    c.schedule.warmup_steps = 50;
    c.train.steps = tiny ? 1500 : 3000;
    c.train.batch = tiny ? 32 : 16;
    c.train.seq_len = tiny ? 64 : 128;
    c.train.eval_every = tiny ? 250 : 500;
    return c;
  }
  throw ConfigError("preset", "unknown preset \"" + name + "\"; known: " + [] {
    std::string s;
    for (const auto& n : experiment_preset_names()) s += (s.empty() ? "" : ", ") + n;
    return s;
  }());
}

std::vector<std::string> experiment_preset_names() {
  return {"demo", "tiny-lora", "tiny-full", "small-lora", "small-full", "smollm2-lora", "pretrain-tiny",
          "pretrain-small"};
}

}  // namespace lwb

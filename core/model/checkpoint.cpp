#include "core/model/checkpoint.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/common/errors.h"
#include "core/common/integers.h"
#include "core/common/json_integer.h"
#include "core/common/json_depth.h"
#include "core/format/safetensors.h"
#include "core/model/weights_init.h"

namespace lwb {

namespace {

using json = nlohmann::json;

std::vector<float> as_f32(Backend& be, const Tensor& t) {
  const std::vector<double> v = download_values(be, t);
  return std::vector<float>(v.begin(), v.end());
}

}  // namespace

std::string model_config_to_json(const ModelConfig& c) {
  json j = {{"name", c.name},
            {"hidden_size", c.hidden},
            {"intermediate_size", c.intermediate},
            {"num_hidden_layers", c.layers},
            {"num_attention_heads", c.heads},
            {"num_key_value_heads", c.kv_heads},
            {"vocab_size", c.vocab},
            {"max_position_embeddings", c.max_seq},
            {"rope_theta", c.rope_theta},
            {"rms_norm_eps", c.norm_eps},
            {"tie_word_embeddings", c.tie_embeddings},
            {"tokenizer", c.tokenizer}};
  // Written only when scaled, so unscaled configs (and the hashes of recipes
  // that embed them) stay as they were.
  if (c.rope_type != "default")
    j["rope_scaling"] = {{"rope_type", c.rope_type},
                         {"factor", c.rope_factor},
                         {"low_freq_factor", c.rope_low_freq_factor},
                         {"high_freq_factor", c.rope_high_freq_factor},
                         {"original_max_position_embeddings", c.rope_original_max_pos}};
  return j.dump();
}

ModelConfig model_config_from_json(const std::string& text, const std::string& source) {
  check_json_depth(text, source);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double's range
    throw FormatError(source, std::string("model config is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw FormatError(source, "model config is not a JSON object");
  ModelConfig c;
  auto get_int = [&](const char* key, int& out, bool required) {
    if (!j.contains(key)) {
      if (required) throw FormatError(source, std::string("model config lacks \"") + key + "\"");
      return;
    }
    const std::optional<int> v = json_integer<int>(j[key], 1);
    if (!v)
      throw FormatError(source, std::string("model config field \"") + key + "\" must be " +
                                    integer_range_text(1, std::numeric_limits<int>::max()) + ", got " + j[key].dump());
    out = *v;
  };
  get_int("hidden_size", c.hidden, true);
  get_int("intermediate_size", c.intermediate, true);
  get_int("num_hidden_layers", c.layers, true);
  get_int("num_attention_heads", c.heads, true);
  c.kv_heads = c.heads;
  get_int("num_key_value_heads", c.kv_heads, false);
  get_int("vocab_size", c.vocab, true);
  get_int("max_position_embeddings", c.max_seq, false);
  if (j.contains("rope_theta") && j["rope_theta"].is_number()) c.rope_theta = j["rope_theta"].get<double>();
  if (j.contains("rms_norm_eps") && j["rms_norm_eps"].is_number()) c.norm_eps = j["rms_norm_eps"].get<double>();
  if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"].is_boolean())
    c.tie_embeddings = j["tie_word_embeddings"].get<bool>();
  if (j.contains("name") && j["name"].is_string()) c.name = j["name"].get<std::string>();
  if (j.contains("tokenizer") && j["tokenizer"].is_string()) c.tokenizer = j["tokenizer"].get<std::string>();
  // transformers writes "rope_scaling": null for models without scaling.
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& r = j["rope_scaling"];
    if (!r.is_object() || !r.value("rope_type", json()).is_string() || !r.value("factor", json()).is_number() ||
        !r.value("low_freq_factor", json()).is_number() || !r.value("high_freq_factor", json()).is_number() ||
        !r.value("original_max_position_embeddings", json()).is_number_integer())
      throw FormatError(source, "model config field \"rope_scaling\" must be an object with rope_type, factor, "
                                "low_freq_factor, high_freq_factor and original_max_position_embeddings");
    c.rope_type = r["rope_type"].get<std::string>();
    c.rope_factor = r["factor"].get<double>();
    c.rope_low_freq_factor = r["low_freq_factor"].get<double>();
    c.rope_high_freq_factor = r["high_freq_factor"].get<double>();
    c.rope_original_max_pos = r["original_max_position_embeddings"].get<int>();
  }
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw FormatError(source, std::string("model config: ") + e.what());
  }
  return c;
}

std::string base_fingerprint(const Model& model) {
  std::uint64_t h = 1469598103934665603ull;
  for (const auto& [name, t] : model.named_base_weights()) {
    for (char ch : name) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
    const std::vector<float> v = as_f32(model.backend(), t);
    const auto* bytes = reinterpret_cast<const unsigned char*>(v.data());
    for (std::size_t i = 0; i < v.size() * sizeof(float); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void copy_base_weights(const Model& from, Model& to) {
  const auto src = from.named_base_weights();
  const auto dst = to.named_base_weights();
  for (std::size_t i = 0; i < src.size(); ++i) {
    if (!(src[i].second.shape == dst[i].second.shape))
      throw ConfigError("model", "tensor " + src[i].first + " is " + src[i].second.shape.str() +
                                     " in the source model but " + dst[i].second.shape.str() + " in the target");
    upload_values(to.backend(), dst[i].second, download_values(from.backend(), src[i].second));
  }
}

void save_base_checkpoint(const Model& model, const std::filesystem::path& file,
                          const std::map<std::string, std::string>& extra_metadata) {
  const auto named = model.named_base_weights();
  std::vector<std::vector<float>> host;
  host.reserve(named.size());
  std::vector<io::StTensorWrite> tensors;
  for (const auto& [name, t] : named) {
    host.push_back(as_f32(model.backend(), t));
    std::vector<std::int64_t> shape(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.ndim);
    tensors.push_back({name, io::StDType::F32, shape,
                       std::as_bytes(std::span<const float>(host.back()))});
  }
  std::map<std::string, std::string> meta = extra_metadata;
  meta["format"] = "pt";
  meta["lwb.model_config"] = model_config_to_json(model.config());
  meta["lwb.fingerprint"] = base_fingerprint(model);
  io::write_safetensors(file, std::move(tensors), meta);
}

void load_base_checkpoint(Model& model, const std::filesystem::path& file) {
  const io::SafetensorsFile st = io::SafetensorsFile::open(file);
  for (const auto& [name, t] : model.named_base_weights()) {
    const io::StTensorInfo* info = st.find(name);
    if (!info) throw FormatError(file.string(), "tensor \"" + name + "\" is missing");
    std::vector<std::int64_t> shape(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.ndim);
    if (info->shape != shape)
      throw FormatError(file.string(), "tensor \"" + name + "\" has shape " + [&] {
        std::string s = "[";
        for (std::size_t i = 0; i < info->shape.size(); ++i) s += (i ? ", " : "") + std::to_string(info->shape[i]);
        return s + "]";
      }() + " but the model expects " + t.shape.str());
    upload_floats(model.backend(), t, read_finite_weight(st, name));
  }
}

std::size_t count_non_finite(std::span<const float> values) {
  std::size_t n = 0;
  for (float v : values) n += !std::isfinite(v);
  return n;
}

std::vector<float> read_finite_weight(const io::SafetensorsFile& st, const std::string& name) {
  std::vector<float> v = st.read_f32(name);
  if (const std::size_t bad = count_non_finite(v); bad > 0)
    throw FormatError(st.source(), "tensor \"" + name + "\" holds " + std::to_string(bad) + " NaN or infinite value(s) of " +
                                       std::to_string(v.size()) + "; a base with such weights cannot be used");
  return v;
}

std::string checkpoint_metadata(const std::filesystem::path& file, const std::string& key) {
  const io::SafetensorsFile st = io::SafetensorsFile::open(file);
  const auto it = st.metadata().find(key);
  return it == st.metadata().end() ? std::string() : it->second;
}

ModelConfig checkpoint_model_config(const std::filesystem::path& file) {
  const io::SafetensorsFile st = io::SafetensorsFile::open(file);
  const auto it = st.metadata().find("lwb.model_config");
  if (it == st.metadata().end())
    throw FormatError(file.string(), "no model config in the metadata (key lwb.model_config)");
  return model_config_from_json(it->second, file.string());
}

}  // namespace lwb

#include "core/io/hf_checkpoint.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <vector>

#include "core/common/errors.h"
#include "core/common/half.h"
#include "core/common/integers.h"
#include "core/common/json_depth.h"
#include "core/common/json_integer.h"
#include "core/data/tokenizer.h"
#include "core/format/atomic_file.h"
#include "core/format/safetensors.h"
#include "core/model/checkpoint.h"
#include "core/model/weights_init.h"

namespace lwb::io {

namespace {
using json = nlohmann::json;
using Shape64 = std::vector<std::int64_t>;

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw FormatError(file.string(), "cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

json parse_json_object(const std::string& text, const std::string& source) {
  check_json_depth(text, source);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double's range
    throw FormatError(source, std::string("is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw FormatError(source, "is not a JSON object");
  return j;
}

json read_json(const std::filesystem::path& file) { return parse_json_object(read_text(file), file.string()); }

// Where each tensor of a checkpoint lives.
struct Weights {
  std::string source;  // the file messages name: model.safetensors or the index
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, const SafetensorsFile*> where;
  std::vector<std::string> problems;
};

Weights open_weights(const std::filesystem::path& dir) {
  Weights w;
  const std::filesystem::path single = dir / "model.safetensors";
  const std::filesystem::path index = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(single)) {
    w.source = single.string();
    w.files.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(single)));
    for (const StTensorInfo& t : w.files[0]->tensors()) w.where[t.name] = w.files[0].get();
    return w;
  }
  if (!std::filesystem::exists(index)) {
    for (const char* bin : {"pytorch_model.bin", "pytorch_model.bin.index.json"})
      if (std::filesystem::exists(dir / bin))
        throw FormatError((dir / bin).string(),
                          "only safetensors checkpoints are supported; re-save the model with "
                          "save_pretrained(..., safe_serialization=True)");
    throw FormatError(dir.string(), "holds neither model.safetensors nor model.safetensors.index.json");
  }

  w.source = index.string();
  const json j = read_json(index);
  if (!j.contains("weight_map") || !j["weight_map"].is_object())
    throw FormatError(w.source,
                      "field \"weight_map\" is missing; expected an object of tensor name -> shard file");
  std::map<std::string, const SafetensorsFile*> shards;
  for (const auto& [name, shard_json] : j["weight_map"].items()) {
    if (!shard_json.is_string())
      throw FormatError(w.source,
                        "weight_map entry \"" + name + "\" is " + shard_json.dump() + "; expected a file name");
    const std::string shard = shard_json.get<std::string>();
    // The index is untrusted: shards must be files beside it.
    if (shard.empty() || shard == "." || shard == ".." || shard.find_first_of("/\\") != std::string::npos)
      throw FormatError(w.source, "weight_map entry \"" + name + "\" names the shard \"" + shard +
                                      "\"; expected a file name in the same folder");
    auto it = shards.find(shard);
    if (it == shards.end()) {
      if (!std::filesystem::exists(dir / shard))
        throw FormatError(w.source, "shard \"" + shard + "\" (holding \"" + name + "\") is missing");
      w.files.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(dir / shard)));
      it = shards.emplace(shard, w.files.back().get()).first;
    }
    if (!it->second->find(name))
      w.problems.push_back("weight_map puts \"" + name + "\" in \"" + shard + "\", which does not hold it");
    else
      w.where[name] = it->second;
  }
  for (const auto& [shard, file] : shards)
    for (const StTensorInfo& t : file->tensors())
      if (!j["weight_map"].contains(t.name))
        w.problems.push_back("tensor \"" + t.name + "\" of \"" + shard + "\" is not listed in weight_map");
  return w;
}

}  // namespace

namespace {

const char* torch_dtype_name(StDType t) {
  switch (t) {
    case StDType::F16: return "float16";
    case StDType::BF16: return "bfloat16";
    default: return "float32";
  }
}

// The weights in `dtype`, as bytes.
std::vector<std::uint8_t> weight_bytes(const Model& model, const Tensor& t, StDType dtype) {
  const std::vector<double> values = download_values(model.backend(), t);
  std::vector<std::uint8_t> out(values.size() * st_dtype_size(dtype));
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto v = static_cast<float>(values[i]);
    if (dtype == StDType::F32) {
      std::memcpy(out.data() + 4 * i, &v, 4);
      continue;
    }
    const std::uint16_t h = dtype == StDType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

bool is_weight_file(const std::string& name) {
  return name == "model.safetensors" || name == "model.safetensors.index.json" ||
         (name.starts_with("model-") && name.ends_with(".safetensors"));
}

}  // namespace

void export_hf_checkpoint(const Model& model, const std::filesystem::path& dir, const HfExport& options) {
  const ModelConfig& c = model.config();
  if (options.dtype != StDType::F32 && options.dtype != StDType::F16 && options.dtype != StDType::BF16)
    throw std::invalid_argument("export_hf_checkpoint: weights are written as F32, F16 or BF16");
  json j = {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"hidden_act", "silu"},
      {"hidden_size", c.hidden},
      {"intermediate_size", c.intermediate},
      {"num_hidden_layers", c.layers},
      {"num_attention_heads", c.heads},
      {"num_key_value_heads", c.kv_heads},
      {"head_dim", c.head_dim()},
      {"vocab_size", c.vocab},
      {"max_position_embeddings", c.max_seq},
      {"rms_norm_eps", c.norm_eps},
      {"rope_theta", c.rope_theta},
      {"rope_scaling", nullptr},
      {"tie_word_embeddings", c.tie_embeddings},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"mlp_bias", false},
      {"initializer_range", 0.02},
      {"torch_dtype", torch_dtype_name(options.dtype)},
      {"use_cache", true},
      {"lwb_name", c.name},
  };
  if (c.tokenizer == "byte") j["lwb_tokenizer"] = c.tokenizer;
  if (c.rope_type == "llama3")
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope_factor},
                         {"low_freq_factor", c.rope_low_freq_factor},
                         {"high_freq_factor", c.rope_high_freq_factor},
                         {"original_max_position_embeddings", c.rope_original_max_pos}};
  const data::ByteTokenizer bytes;
  const data::Tokenizer* tok = options.tokenizer ? options.tokenizer : c.tokenizer == "byte" ? &bytes : nullptr;
  json generation = {{"_from_model_config", true}};
  if (tok) {
    auto id = [](std::int32_t v) { return v >= 0 ? json(v) : json(nullptr); };
    j["bos_token_id"] = id(tok->bos());
    j["eos_token_id"] = id(tok->eos());
    j["pad_token_id"] = id(tok->pad());
    const std::vector<std::int32_t> stops = tok->stop_ids();
    generation["bos_token_id"] = j["bos_token_id"];
    generation["eos_token_id"] = stops.size() > 1 ? json(stops) : j["eos_token_id"];
    generation["pad_token_id"] = j["pad_token_id"];
  }

  // Shards, as huggingface_hub's split_state_dict_into_shards_factory cuts them.
  const auto named = model.named_base_weights();
  std::vector<std::vector<std::size_t>> shards(1);
  std::uint64_t current = 0, total = 0;
  std::int64_t parameters = 0;
  for (std::size_t i = 0; i < named.size(); ++i) {
    const Tensor& t = named[i].second;
    const std::uint64_t size = static_cast<std::uint64_t>(t.numel()) * st_dtype_size(options.dtype);
    parameters += t.numel();
    total += size;
    if (size > options.max_shard_bytes) {
      if (!shards.back().empty()) shards.emplace_back();
      shards.back().push_back(i);
      shards.emplace_back();
      current = 0;
      continue;
    }
    if (current + size > options.max_shard_bytes && !shards.back().empty()) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(i);
    current += size;
  }
  if (shards.back().empty()) shards.pop_back();

  std::filesystem::create_directories(dir);
  const std::size_t n = shards.size();
  auto shard_name = [&](std::size_t k) {
    if (n == 1) return std::string("model.safetensors");
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k + 1, n);
    return std::string(buf);
  };
  std::set<std::string> written;
  json weight_map = json::object();
  for (std::size_t k = 0; k < n; ++k) {
    std::vector<std::vector<std::uint8_t>> data;  // owns the bytes the writes point at
    data.reserve(shards[k].size());
    std::vector<StTensorWrite> tensors;
    for (std::size_t i : shards[k]) {
      const auto& [name, t] = named[i];
      data.push_back(weight_bytes(model, t, options.dtype));
      tensors.push_back({name, options.dtype, Shape64(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.ndim),
                         std::as_bytes(std::span<const std::uint8_t>(data.back()))});
      weight_map[name] = shard_name(k);
    }
    std::map<std::string, std::string> meta = {{"format", "pt"}};
    if (n == 1) meta["lwb.model_config"] = model_config_to_json(c);
    write_safetensors(dir / shard_name(k), std::move(tensors), meta);
    written.insert(shard_name(k));
  }
  if (n > 1) {
    const json index = {{"metadata", {{"total_parameters", parameters}, {"total_size", total}}},
                        {"weight_map", weight_map}};
    write_file_atomically(dir / "model.safetensors.index.json", index.dump(2) + "\n");
    written.insert("model.safetensors.index.json");
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (is_weight_file(name) && !written.contains(name)) std::filesystem::remove(e.path(), ec);
  }
  write_file_atomically(dir / "config.json", j.dump(2) + "\n");
  write_file_atomically(dir / "generation_config.json", generation.dump(2) + "\n");
}

ModelConfig read_hf_config(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "config.json";
  if (!std::filesystem::exists(file)) throw FormatError(file.string(), "is missing");
  // Without our own name field the folder names the model ("dir/" has no filename, hence the parent).
  const std::filesystem::path folder = std::filesystem::absolute(dir).lexically_normal();
  return parse_hf_config(read_text(file), file.string(),
                         (folder.has_filename() ? folder : folder.parent_path()).filename().string());
}

ModelConfig parse_hf_config(const std::string& text, const std::string& source, const std::string& folder_name) {
  const json j = parse_json_object(text, source);
  auto fail = [&](const std::string& field, const std::string& msg) -> void {
    throw FormatError(source, "field \"" + field + "\" " + msg);
  };
  auto has = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  auto get_int = [&](const char* key, int fallback, bool required) {
    if (!has(key)) {
      if (required) fail(key, "is missing");
      return fallback;
    }
    const std::optional<int> v = json_integer<int>(j[key], 1);
    if (!v) fail(key, "must be " + integer_range_text(1, std::numeric_limits<int>::max()) + ", got " + j[key].dump());
    return *v;
  };
  auto get_number = [&](const json& obj, const char* key, double fallback) {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    if (!obj[key].is_number()) fail(key, "must be a number, got " + obj[key].dump());
    return obj[key].get<double>();
  };
  auto get_bool = [&](const char* key, bool fallback) {
    if (!has(key)) return fallback;
    if (!j[key].is_boolean()) fail(key, "must be true or false, got " + j[key].dump());
    return j[key].get<bool>();
  };

  const std::string type =
      has("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  if (type != "llama" && type != "mistral")
    fail("model_type", (type.empty() ? std::string("is missing") : "is \"" + type + "\"") +
                           "; expected \"llama\" (or a mistral-compatible config)");
  if (const std::string act = has("hidden_act") ? j["hidden_act"].dump() : "\"silu\""; act != "\"silu\"")
    fail("hidden_act", "is " + act + "; the MLP here is down(silu(gate(x)) * up(x)), expected \"silu\"");
  if (get_bool("attention_bias", false)) fail("attention_bias", "is true; projections without bias are expected");
  if (get_bool("mlp_bias", false)) fail("mlp_bias", "is true; projections without bias are expected");

  ModelConfig c;
  c.hidden = get_int("hidden_size", 0, true);
  c.intermediate = get_int("intermediate_size", 0, true);
  c.layers = get_int("num_hidden_layers", 0, true);
  c.heads = get_int("num_attention_heads", 0, true);
  c.kv_heads = get_int("num_key_value_heads", c.heads, false);
  c.vocab = get_int("vocab_size", 0, true);
  c.max_seq = get_int("max_position_embeddings", 2048, false);  // LlamaConfig's defaults from here on
  c.norm_eps = get_number(j, "rms_norm_eps", 1e-6);
  c.rope_theta = get_number(j, "rope_theta", 10000.0);
  c.tie_embeddings = get_bool("tie_word_embeddings", false);
  // The rotary settings: transformers 4 writes rope_theta and rope_scaling
  // at the top level, transformers 5 both inside rope_parameters. Either
  // holds no scaling ("default", or null) or Llama-3's.
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    if (!has(key)) continue;
    const json& rope = j[key];
    const std::string field = key;
    if (!rope.is_object()) fail(field, "must be an object or null, got " + rope.dump());
    // transformers 4.x before 4.45 spelled rope_type "type".
    const json kind_json = rope.contains("rope_type") ? rope["rope_type"] : rope.value("type", json("default"));
    if (!kind_json.is_string()) fail(field + ".rope_type", "must be a string, got " + kind_json.dump());
    const std::string kind = kind_json.get<std::string>();
    c.rope_theta = get_number(rope, "rope_theta", c.rope_theta);
    if (kind == "default") continue;
    if (kind != "llama3")
      fail(field, "has rope_type \"" + kind + "\", which is not supported: this engine computes the default "
                  "rotary embedding and Llama-3's scaling (\"llama3\")");
    c.rope_type = "llama3";
    c.rope_factor = get_number(rope, "factor", 0);
    c.rope_low_freq_factor = get_number(rope, "low_freq_factor", 0);
    c.rope_high_freq_factor = get_number(rope, "high_freq_factor", 0);
    if (!rope.contains("original_max_position_embeddings"))
      fail(field + ".original_max_position_embeddings", "is missing; llama3 scaling needs it");
    const std::optional<int> original = json_integer<int>(rope["original_max_position_embeddings"], 1);
    if (!original)
      fail(field + ".original_max_position_embeddings", "must be a positive whole number, got " +
                                                            rope["original_max_position_embeddings"].dump());
    c.rope_original_max_pos = *original;
  }
  if (type == "mistral" && has("sliding_window")) {
    const int window = get_int("sliding_window", 0, false);
    if (window < c.max_seq)
      fail("sliding_window", "is " + std::to_string(window) +
                                 "; sliding-window attention is not supported (expected null or at least "
                                 "max_position_embeddings)");
  }
  if (has("head_dim") && c.heads > 0 && get_int("head_dim", 0, false) != c.hidden / c.heads)
    fail("head_dim", "is " + j["head_dim"].dump() +
                         "; expected hidden_size / num_attention_heads = " + std::to_string(c.hidden / c.heads));
  c.name = has("lwb_name") && j["lwb_name"].is_string() ? j["lwb_name"].get<std::string>() : folder_name;
  c.tokenizer =
      has("lwb_tokenizer") && j["lwb_tokenizer"].is_string() ? j["lwb_tokenizer"].get<std::string>() : "hf";
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw FormatError(source, e.what());
  }
  return c;
}

StDType read_hf_dtype(const std::filesystem::path& dir) {
  const json j = read_json(dir / "config.json");
  for (const char* key : {"dtype", "torch_dtype"}) {
    if (!j.contains(key) || !j[key].is_string()) continue;
    const std::string name = j[key].get<std::string>();
    if (name == "float32") return StDType::F32;
    if (name == "float16") return StDType::F16;
    if (name == "bfloat16") return StDType::BF16;
  }
  const Weights w = open_weights(dir);
  if (!w.where.empty()) {
    const StDType t = w.where.begin()->second->find(w.where.begin()->first)->dtype;
    if (t == StDType::F16 || t == StDType::BF16) return t;
  }
  return StDType::F32;
}

void import_hf_weights(Model& model, const std::filesystem::path& dir) {
  Weights w = open_weights(dir);
  const auto named = model.named_base_weights();
  std::set<std::string> expected;
  for (const auto& [name, t] : named) {
    expected.insert(name);
    const auto it = w.where.find(name);
    const Shape64 shape(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.ndim);
    if (it == w.where.end()) {
      w.problems.push_back("missing tensor \"" + name + "\" (expected shape " + shape_str(shape) + ")");
      continue;
    }
    const StTensorInfo& info = *it->second->find(name);
    if (info.shape != shape)
      w.problems.push_back("tensor \"" + name + "\" has shape " + shape_str(info.shape) + " vs expected " +
                           shape_str(shape));
    if (info.dtype != StDType::F32 && info.dtype != StDType::F16 && info.dtype != StDType::BF16 &&
        info.dtype != StDType::F64)
      w.problems.push_back("tensor \"" + name + "\" has dtype " + st_dtype_name(info.dtype) +
                           "; expected F32, F16, BF16 or F64");
  }
  for (const auto& [name, file] : w.where) {
    if (expected.contains(name)) continue;
    // Old checkpoints store the rotary frequencies, which are recomputed here;
    // a tied model's lm_head is the embedding, as transformers ties it on load.
    if (name.ends_with("rotary_emb.inv_freq")) continue;
    if (name == "lm_head.weight" && model.config().tie_embeddings) continue;
    w.problems.push_back("unexpected tensor \"" + name + "\"");
  }
  if (!w.problems.empty()) {
    std::string msg = "the checkpoint does not fit the model \"" + model.config().name + "\":";
    for (const std::string& p : w.problems) msg += "\n  - " + p;
    throw FormatError(w.source, msg);
  }
  for (const auto& [name, t] : named) upload_floats(model.backend(), t, read_finite_weight(*w.where.at(name), name));
}

}  // namespace lwb::io

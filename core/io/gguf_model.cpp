#include "core/io/gguf_model.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/common/errors.h"
#include "core/data/gguf_to_hf.h"
#include "core/format/atomic_file.h"
#include "core/model/weights_init.h"

namespace lwb::io {

namespace {

constexpr const char* kLwbTokenizerKey = "lwb.tokenizer";

using format::GgmlType;
using format::GgufFile;
using format::GgufTensorInfo;
using format::GgufValue;
using Shape64 = std::vector<std::int64_t>;

std::string shape_str(const Shape64& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

Shape64 shape_of(const Tensor& t) { return Shape64(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.ndim); }

bool is_q(const std::string& hf_name) { return hf_name.ends_with("self_attn.q_proj.weight"); }
bool is_k(const std::string& hf_name) { return hf_name.ends_with("self_attn.k_proj.weight"); }

void permute_rows(std::span<float> w, int heads, std::int64_t cols, bool to_gguf) {
  const auto rows = cols > 0 ? static_cast<std::int64_t>(w.size()) / cols : 0;
  if (heads <= 0 || cols <= 0 || rows * cols != static_cast<std::int64_t>(w.size()) || rows % (2 * heads) != 0)
    throw std::invalid_argument("qk rows: a [" + std::to_string(rows) + ", " + std::to_string(cols) +
                                "] weight does not split into " + std::to_string(heads) + " heads of even size");
  const std::vector<float> from(w.begin(), w.end());
  for (std::int64_t hf = 0; hf < rows; ++hf) {
    const std::int64_t gguf = gguf_qk_row(hf, rows / heads);
    const std::int64_t src = to_gguf ? hf : gguf, dst = to_gguf ? gguf : hf;
    std::copy_n(from.begin() + src * cols, cols, w.begin() + dst * cols);
  }
}

// Llama 3.1/3.2 files carry their rotary scaling as rope_freqs.weight: the
// divisor of each pair's frequency (convert_hf_to_gguf.py computes it from
// the HF rope_scaling). Within the interpolated band the divisors give the
// smoothing s = a / wavelength - b with a = original / (high - low) and
// b = low / (high - low). Dividing high and original by low gives the same
// divisors with low_freq_factor 1 (Llama 3's own value), so two interpolated
// entries fix the parameters; every entry is then checked against them.
void recover_llama3_scaling(ModelConfig& c, const GgufFile& f) {
  const std::string& src = f.source();
  const char* name = "rope_freqs.weight";
  const GgufTensorInfo& t = f.tensor(name);
  const int half = c.head_dim() / 2;
  if (t.shape() != Shape64{half})
    throw FormatError(src, std::string("tensor \"") + name + "\" has shape " + shape_str(t.shape()) +
                               "; expected [" + std::to_string(half) + "] (head dimension / 2)");
  const std::vector<float> factors = f.read_f32(name);
  const float factor = *std::max_element(factors.begin(), factors.end());
  if (factor == 1.0f && *std::min_element(factors.begin(), factors.end()) == 1.0f) return;  // no scaling
  ModelConfig plain = c;
  auto wavelength = [&](int j) { return 2 * M_PI / rope_inv_freq(plain, j); };
  std::vector<int> band;  // pairs strictly between kept and divided by the factor
  for (int j = 0; j < half; ++j)
    if (factors[j] > 1.0f + 1e-6f && factors[j] < factor * (1 - 1e-6f)) band.push_back(j);
  const std::string llama3 = std::string("tensor \"") + name + "\" is not Llama-3 rotary scaling: ";
  if (band.size() < 2)
    throw FormatError(src, llama3 + "it interpolates " + std::to_string(band.size()) +
                               " frequencies, and two are needed to recover its parameters");
  auto s = [&](int j) { return (1.0 / factors[j] - 1.0 / factor) / (1.0 - 1.0 / factor); };
  const int j1 = band.front(), j2 = band.back();
  const double a = (s(j1) - s(j2)) / (1 / wavelength(j1) - 1 / wavelength(j2));
  const double b = a / wavelength(j1) - s(j1);
  if (!(a > 0) || !(b > 0)) throw FormatError(src, llama3 + "its interpolated factors do not fall with wavelength");
  c.rope_type = "llama3";
  c.rope_factor = factor;
  c.rope_low_freq_factor = 1.0;
  // The recovered values carry the float rounding of the stored factors;
  // the original context is an integer, and three decimals hold any
  // published high_freq_factor.
  c.rope_high_freq_factor = std::round((1 + 1 / b) * 1000) / 1000;
  c.rope_original_max_pos = static_cast<int>(std::lround(a / b));
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw FormatError(src, llama3 + e.what());
  }
  for (int j = 0; j < half; ++j) {
    const double want = rope_inv_freq(plain, j) / rope_inv_freq(c, j);
    if (std::abs(factors[j] - want) > 1e-4 * want)
      throw FormatError(src, llama3 + "entry " + std::to_string(j) + " is " + std::to_string(factors[j]) +
                                 " where factor " + std::to_string(c.rope_factor) + ", high_freq_factor " +
                                 std::to_string(c.rope_high_freq_factor) + " and original context " +
                                 std::to_string(c.rope_original_max_pos) + " give " + std::to_string(want));
  }
}

}  // namespace

std::string gguf_tensor_name(const std::string& hf_name) {
  if (hf_name == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf_name == "model.norm.weight") return "output_norm.weight";
  if (hf_name == "lm_head.weight") return "output.weight";
  static const std::pair<const char*, const char*> kLayer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},   {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},     {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  const std::string prefix = "model.layers.";
  if (hf_name.starts_with(prefix)) {
    const std::size_t dot = hf_name.find('.', prefix.size());
    if (dot != std::string::npos) {
      const std::string rest = hf_name.substr(dot + 1);
      for (const auto& [hf, gguf] : kLayer)
        if (rest == hf) return "blk." + hf_name.substr(prefix.size(), dot - prefix.size()) + "." + gguf;
    }
  }
  throw std::invalid_argument("gguf_tensor_name: no GGUF name for \"" + hf_name + "\"");
}

std::int64_t gguf_qk_row(std::int64_t hf_row, std::int64_t head_dim) {
  const std::int64_t head = hf_row / head_dim, r = hf_row % head_dim, half = head_dim / 2;
  return head * head_dim + 2 * (r % half) + r / half;
}

void qk_rows_to_gguf(std::span<float> weight, int heads, std::int64_t cols) { permute_rows(weight, heads, cols, true); }
void qk_rows_from_gguf(std::span<float> weight, int heads, std::int64_t cols) {
  permute_rows(weight, heads, cols, false);
}

ModelConfig read_gguf_config(const GgufFile& f) {
  const std::string& src = f.source();
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama")
    throw FormatError(src, "architecture \"" + arch +
                               "\" is not supported; this engine runs the \"llama\" architecture "
                               "(LLaMA, Mistral, SmolLM, TinyLlama)");
  auto key = [](const char* k) { return std::string("llama.") + k; };
  auto get_int = [&](const char* k) {
    const std::uint32_t v = f.get_u32(key(k));
    if (v > INT_MAX) throw FormatError(src, "key \"" + key(k) + "\": " + std::to_string(v) + " is too large");
    return static_cast<int>(v);
  };
  if (f.find(key("expert_count")) && f.get_u32(key("expert_count")) > 0)
    throw FormatError(src, "architecture \"llama\" with " + std::to_string(f.get_u32(key("expert_count"))) +
                               " experts (llama.expert_count) is not supported: this engine runs dense models");
  for (const GgufTensorInfo& t : f.tensors())
    if (t.name.ends_with(".bias"))
      throw FormatError(src, "architecture \"llama\" with bias tensors (\"" + t.name +
                                 "\") is not supported: the projections here have no bias");
  if (!f.find(key("attention.layer_norm_rms_epsilon")) && f.find(key("attention.layer_norm_epsilon")))
    throw FormatError(src, "architecture \"llama\" with LayerNorm (llama.attention.layer_norm_epsilon) is not "
                           "supported: this engine normalises with RMSNorm");
  if (const GgufValue* v = f.find(key("rope.scaling.type"));
      v && !(v->type == format::GgufType::String && std::get<std::string>(v->data) == "none"))
    throw FormatError(src, "key \"llama.rope.scaling.type\" is " +
                               (v->type == format::GgufType::String ? "\"" + std::get<std::string>(v->data) + "\""
                                                                    : v->type_text()) +
                               ": only Llama-3 rotary scaling (a rope_freqs.weight tensor) is supported");

  ModelConfig c;
  c.layers = get_int("block_count");
  c.hidden = get_int("embedding_length");
  c.intermediate = get_int("feed_forward_length");
  c.heads = get_int("attention.head_count");
  c.kv_heads = f.find(key("attention.head_count_kv")) ? get_int("attention.head_count_kv") : c.heads;
  c.max_seq = get_int("context_length");
  c.norm_eps = f.get_f32(key("attention.layer_norm_rms_epsilon"));
  if (f.find(key("rope.freq_base"))) c.rope_theta = f.get_f32(key("rope.freq_base"));  // else llama.cpp's 10000
  if (f.find(key("vocab_size")))
    c.vocab = get_int("vocab_size");
  else if (f.find("tokenizer.ggml.tokens"))
    c.vocab = static_cast<int>(std::min<std::size_t>(
        f.get_array("tokenizer.ggml.tokens", format::GgufType::String).size(), INT_MAX));
  else
    throw FormatError(src, "neither llama.vocab_size nor tokenizer.ggml.tokens gives the vocabulary size");
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  c.name = f.find("general.name") ? f.get_string("general.name")
                                  : std::filesystem::path(src).stem().string();
  c.tokenizer = f.find(kLwbTokenizerKey) ? f.get_string(kLwbTokenizerKey) : "gguf";
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw FormatError(src, e.what());
  }
  for (const char* k : {"rope.dimension_count", "attention.key_length", "attention.value_length"})
    if (f.find(key(k)) && get_int(k) != c.head_dim())
      throw FormatError(src, "key \"" + key(k) + "\" is " + std::to_string(get_int(k)) +
                                 "; this engine needs the head dimension embedding_length / head_count = " +
                                 std::to_string(c.head_dim()));
  if (f.find_tensor("rope_freqs.weight")) recover_llama3_scaling(c, f);
  return c;
}

void import_gguf_weights(Model& model, const GgufFile& f) {
  const auto named = model.named_base_weights();
  std::vector<std::string> problems;
  std::set<std::string> expected = {"rope_freqs.weight"};  // read by read_gguf_config
  for (const auto& [hf, t] : named) {
    const std::string name = gguf_tensor_name(hf);
    expected.insert(name);
    const GgufTensorInfo* info = f.find_tensor(name);
    const Shape64 shape = shape_of(t);
    if (!info) {
      problems.push_back("missing tensor \"" + name + "\" (expected shape " + shape_str(shape) + ")");
      continue;
    }
    if (info->shape() != shape)
      problems.push_back("tensor \"" + name + "\" has shape " + shape_str(info->shape()) + " vs expected " +
                         shape_str(shape));
    if (!format::can_dequantize(info->type))
      problems.push_back("tensor \"" + name + "\" has type " + format::ggml_type_name(info->type) +
                         ", which cannot be converted to float here (supported: " +
                         format::dequantizable_type_names() + ")");
  }
  for (const GgufTensorInfo& t : f.tensors())
    if (!expected.contains(t.name)) problems.push_back("unexpected tensor \"" + t.name + "\"");
  if (!problems.empty()) {
    std::string msg = "the file does not fit the model \"" + model.config().name + "\":";
    for (const std::string& p : problems) msg += "\n  - " + p;
    throw FormatError(f.source(), msg);
  }
  const ModelConfig& c = model.config();
  for (const auto& [hf, t] : named) {
    std::vector<float> values = f.read_f32(gguf_tensor_name(hf));
    if (is_q(hf)) qk_rows_from_gguf(values, c.heads, c.hidden);
    if (is_k(hf)) qk_rows_from_gguf(values, c.kv_heads, c.hidden);
    upload_floats(model.backend(), t, values);
  }
}

void export_gguf(const Model& model, const std::filesystem::path& file, GgufExportType type,
                 const format::GgufMetadata& extra) {
  const ModelConfig& c = model.config();
  // llama.cpp's LlamaFileType: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0.
  const std::uint32_t file_type = type == GgufExportType::F32 ? 0 : type == GgufExportType::F16 ? 1 : 7;
  auto u32 = [](int v) { return GgufValue::u32(static_cast<std::uint32_t>(v)); };
  format::GgufMetadata meta = {
      {"general.architecture", GgufValue::string("llama")},
      {"general.name", GgufValue::string(c.name)},
      {"llama.block_count", u32(c.layers)},
      {"llama.context_length", u32(c.max_seq)},
      {"llama.embedding_length", u32(c.hidden)},
      {"llama.feed_forward_length", u32(c.intermediate)},
      {"llama.attention.head_count", u32(c.heads)},
      {"llama.attention.head_count_kv", u32(c.kv_heads)},
      {"llama.rope.freq_base", GgufValue::f32(static_cast<float>(c.rope_theta))},
      {"llama.attention.layer_norm_rms_epsilon", GgufValue::f32(static_cast<float>(c.norm_eps))},
      {"llama.vocab_size", u32(c.vocab)},
      {"llama.rope.dimension_count", u32(c.head_dim())},
      {"general.file_type", GgufValue::u32(file_type)},
      {"general.quantization_version", GgufValue::u32(2)},  // ggml's GGML_QNT_VERSION
  };
  // This program's byte-level models have no GGUF vocabulary; the key lets
  // read_gguf_config say which tokenizer they take.
  if (c.tokenizer == "byte") meta.emplace_back(kLwbTokenizerKey, GgufValue::string(c.tokenizer));
  meta.insert(meta.end(), extra.begin(), extra.end());

  const auto named = model.named_base_weights();
  std::vector<std::vector<std::uint8_t>> data;  // owns the bytes the writes point at
  data.reserve(named.size() + 1);
  std::vector<format::GgufTensorWrite> tensors;
  auto add = [&](std::string name, GgmlType gt, const Shape64& shape, std::span<const float> values) {
    data.push_back(format::quantize(gt, values));
    tensors.push_back({std::move(name), gt, std::vector<std::uint64_t>(shape.rbegin(), shape.rend()),
                       std::as_bytes(std::span<const std::uint8_t>(data.back()))});
  };
  if (c.rope_type == "llama3") {  // as convert_hf_to_gguf.py writes it, first
    ModelConfig plain = c;
    plain.rope_type = "default";
    std::vector<float> factors(static_cast<std::size_t>(c.head_dim() / 2));
    for (int j = 0; j < c.head_dim() / 2; ++j)
      factors[j] = static_cast<float>(rope_inv_freq(plain, j) / rope_inv_freq(c, j));
    add("rope_freqs.weight", GgmlType::F32, {c.head_dim() / 2}, factors);
  }
  for (const auto& [hf, t] : named) {
    const std::vector<double> host = download_values(model.backend(), t);
    std::vector<float> values(host.begin(), host.end());
    if (is_q(hf)) qk_rows_to_gguf(values, c.heads, c.hidden);
    if (is_k(hf)) qk_rows_to_gguf(values, c.kv_heads, c.hidden);
    const Shape64 shape = shape_of(t);
    GgmlType gt = GgmlType::F32;  // norms stay F32, as llama.cpp keeps 1-D tensors
    if (shape.size() == 2 && type == GgufExportType::F16) gt = GgmlType::F16;
    if (shape.size() == 2 && type == GgufExportType::Q8_0) gt = shape[1] % 32 == 0 ? GgmlType::Q8_0 : GgmlType::F16;
    add(gguf_tensor_name(hf), gt, shape, values);
  }
  format::write_gguf(file, meta, tensors);
}

void export_merged_gguf(const Model& base, const AdapterState& adapter, const std::filesystem::path& file,
                        GgufExportType type, const format::GgufMetadata& extra) {
  MemoryLedger ledger;  // declared first: it outlives the model's arenas
  Model merged(base.config(), Model::Mode::Frozen);
  merged.materialize(base.backend(), ledger, 1, 1);
  merge_adapter_into_base(base, adapter, merged);
  export_gguf(merged, file, type, extra);
}

format::GgufMetadata gguf_tokenizer_metadata(const GgufFile& file) {
  format::GgufMetadata out;
  for (const auto& entry : file.metadata())
    if (entry.first.starts_with("tokenizer.")) out.push_back(entry);
  return out;
}

std::optional<data::GgufVocab> read_gguf_vocab(const GgufFile& f) {
  if (!f.find("tokenizer.ggml.model")) return std::nullopt;
  data::GgufVocab v;
  v.source = f.source();
  v.model = f.get_string("tokenizer.ggml.model");
  if (f.find("tokenizer.ggml.pre")) v.pre = f.get_string("tokenizer.ggml.pre");
  v.tokens = f.get_strings("tokenizer.ggml.tokens");
  if (f.find("tokenizer.ggml.token_type")) v.token_types = f.get_i32s("tokenizer.ggml.token_type");
  if (f.find("tokenizer.ggml.scores")) v.scores = f.get_f32s("tokenizer.ggml.scores");
  if (f.find("tokenizer.ggml.merges")) v.merges = f.get_strings("tokenizer.ggml.merges");
  auto id = [&](const char* key, std::int32_t& out) {
    if (!f.find(key)) return;
    const std::uint32_t value = f.get_u32(key);
    if (value >= v.tokens.size())
      throw FormatError(f.source(), std::string("key \"") + key + "\" is " + std::to_string(value) + "; the vocabulary has " +
                                        std::to_string(v.tokens.size()) + " tokens");
    out = static_cast<std::int32_t>(value);
  };
  id("tokenizer.ggml.bos_token_id", v.bos);
  id("tokenizer.ggml.eos_token_id", v.eos);
  id("tokenizer.ggml.padding_token_id", v.pad);
  id("tokenizer.ggml.unknown_token_id", v.unk);
  id("tokenizer.ggml.eot_token_id", v.eot);
  id("tokenizer.ggml.eom_token_id", v.eom);
  auto flag = [&](const char* key, std::optional<bool>& out) {
    if (f.find(key)) out = f.get_bool(key);
  };
  flag("tokenizer.ggml.add_bos_token", v.add_bos);
  flag("tokenizer.ggml.add_eos_token", v.add_eos);
  flag("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  return v;
}

std::optional<std::string> gguf_chat_template(const GgufFile& f) {
  if (!f.find("tokenizer.chat_template")) return std::nullopt;
  return f.get_string("tokenizer.chat_template");
}

bool write_gguf_tokenizer_as_hf(const GgufFile& f, const std::filesystem::path& dir, std::int64_t model_max_length) {
  const std::optional<data::GgufVocab> vocab = read_gguf_vocab(f);
  if (!vocab) return false;
  const data::HfTokenizerFiles files = data::gguf_to_hf_tokenizer(*vocab, gguf_chat_template(f), model_max_length);
  write_file_atomically(dir / "tokenizer.json", files.tokenizer_json);
  write_file_atomically(dir / "tokenizer_config.json", files.tokenizer_config_json);
  write_file_atomically(dir / "special_tokens_map.json", files.special_tokens_map_json);
  return true;
}

namespace {

// "org/name" of a hub id or of a https://huggingface.co/org/name[/...] URL.
std::optional<std::string> hub_repository(std::string_view text) {
  for (std::string_view host : {"https://huggingface.co/", "http://huggingface.co/", "https://hf.co/"})
    if (text.starts_with(host)) {
      text.remove_prefix(host.size());
      const std::size_t slash = text.find('/');
      const std::size_t end = slash == std::string_view::npos ? slash : text.find_first_of("/?#", slash + 1);
      text = text.substr(0, end);
      break;
    }
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size() ||
      text.find('/', slash + 1) != std::string_view::npos)
    return std::nullopt;
  const std::string_view owner = text.substr(0, slash);
  if (owner == "datasets" || owner == "spaces") return std::nullopt;
  for (char c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '-' && c != '_' && c != '.')
      return std::nullopt;
  return std::string(text);
}

}  // namespace

std::optional<std::string> gguf_hub_repository(const GgufFile& f) {
  for (const char* key : {"general.source.huggingface.repository", "general.source.repo_url", "general.source.url"}) {
    const GgufValue* value = f.find(key);
    if (!value || value->type != format::GgufType::String) continue;
    if (std::optional<std::string> repo = hub_repository(std::get<std::string>(value->data))) return repo;
  }
  return std::nullopt;
}

}  // namespace lwb::io

#include "core/model/config.h"

#include <cmath>

#include "core/common/errors.h"
#include "core/common/integers.h"
#include "core/common/setting_text.h"

namespace lwb {

std::int64_t ModelConfig::param_count() const {
  const std::int64_t C = hidden, I = intermediate, hd = head_dim();
  const std::int64_t attn = C * heads * hd * 2 + C * kv_heads * hd * 2;
  const std::int64_t mlp = 3 * C * I;
  const std::int64_t per_layer = attn + mlp + 2 * C;
  const std::int64_t embed = static_cast<std::int64_t>(vocab) * C;
  return embed + (tie_embeddings ? 0 : embed) + layers * per_layer + C;
}

void ModelConfig::validate() const {
  // The sizes come from files (config.json, GGUF metadata) and the model is
  // built from them before any weight is read, so a corrupt one must not ask
  // for a billion layers or overflow param_count(). The bounds are far past
  // the largest LLaMA-family models (Llama 3.1 405B: hidden 16384,
  // intermediate 53248, 126 layers; vocabularies of 256k; contexts of 10M),
  // and keep every count in int64.
  auto size = [](int v, int most, const char* field) {
    if (v <= 0 || v > most)
      throw ConfigError(field, "must be " + integer_range_text(1, most) + ", got " + std::to_string(v));
  };
  size(hidden, 1 << 16, "model.hidden");
  size(intermediate, 1 << 20, "model.intermediate");
  size(layers, 1 << 12, "model.layers");
  size(heads, hidden, "model.heads");
  size(kv_heads, heads, "model.kv_heads");
  size(vocab, 1 << 22, "model.vocab");
  size(max_seq, 1 << 24, "model.max_seq");
  if (hidden % heads != 0)
    throw ConfigError("model.heads", "hidden size " + std::to_string(hidden) +
                                         " is not divisible by " + std::to_string(heads) +
                                         " heads");
  if (head_dim() % 2 != 0)
    throw ConfigError("model.heads", "head dimension " + std::to_string(head_dim()) +
                                         " must be even for rotary embeddings");
  if (heads % kv_heads != 0)
    throw ConfigError("model.kv_heads", std::to_string(heads) + " heads are not divisible by " +
                                            std::to_string(kv_heads) + " kv heads");
  if (!(rope_theta > 0)) throw ConfigError("model.rope_theta", "must be positive");
  if (!(norm_eps > 0)) throw ConfigError("model.norm_eps", "must be positive");
  if (rope_type != "default" && rope_type != "llama3")
    throw ConfigError("model.rope_type", "unknown rotary scaling \"" + rope_type + "\"; expected default or llama3");
  if (rope_type == "llama3") {
    if (!(rope_factor >= 1)) throw ConfigError("model.rope_factor", "must be at least 1");
    if (!(rope_low_freq_factor > 0) || !(rope_high_freq_factor > rope_low_freq_factor))
      throw ConfigError("model.rope_high_freq_factor", "must exceed rope_low_freq_factor, which must be positive");
    if (rope_original_max_pos <= 0) throw ConfigError("model.rope_original_max_pos", "must be positive");
  }
}

double rope_inv_freq(const ModelConfig& c, int j) {
  const double inv_freq = std::pow(c.rope_theta, -2.0 * j / c.head_dim());
  if (c.rope_type != "llama3") return inv_freq;
  const double wavelen = 2 * M_PI / inv_freq;
  const double low_freq_wavelen = c.rope_original_max_pos / c.rope_low_freq_factor;
  const double high_freq_wavelen = c.rope_original_max_pos / c.rope_high_freq_factor;
  if (wavelen < high_freq_wavelen) return inv_freq;
  if (wavelen > low_freq_wavelen) return inv_freq / c.rope_factor;
  const double smooth = (c.rope_original_max_pos / wavelen - c.rope_low_freq_factor) /
                        (c.rope_high_freq_factor - c.rope_low_freq_factor);
  return (1 - smooth) * inv_freq / c.rope_factor + smooth * inv_freq;
}

ModelConfig model_preset(const std::string& name) {
  ModelConfig c;
  if (name == "tiny") {
    c.name = "tiny";
    c.hidden = 128;
    c.intermediate = 448;
    c.layers = 4;
    c.heads = 4;
    c.kv_heads = 2;
    c.max_seq = 128;
    return c;
  }
  if (name == "small") {
    c.name = "small";
    c.hidden = 512;
    c.intermediate = 1536;
    c.layers = 8;
    c.heads = 8;
    c.kv_heads = 4;
    c.max_seq = 512;
    return c;
  }
  throw ConfigError("model.preset", "unknown model preset \"" + name + "\"; known: tiny, small");
}

std::vector<std::string> model_preset_names() { return {"tiny", "small"}; }

const char* target_short_name(Target t) {
  static const char* names[] = {"q", "k", "v", "o", "gate", "up", "down"};
  return names[static_cast<int>(t)];
}

const char* target_module_name(Target t) {
  static const char* names[] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                "gate_proj", "up_proj", "down_proj"};
  return names[static_cast<int>(t)];
}

const char* target_hf_path(Target t) {
  static const char* names[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                "mlp.down_proj"};
  return names[static_cast<int>(t)];
}

Target parse_target(const std::string& s, const std::string& field) {
  for (Target t : kAllTargets)
    if (s == target_short_name(t) || s == target_module_name(t) || s == target_hf_path(t))
      return t;
  throw ConfigError(field, "unknown target module \"" + s +
                               "\"; expected one of q, k, v, o, gate, up, down (or q_proj, ...)");
}

std::vector<Target> parse_targets(const std::string& list, const std::string& field) {
  const std::vector<std::string> names = split_setting_list(list);
  if (names.size() == 1 && names[0] == "all") return {kAllTargets.begin(), kAllTargets.end()};
  if (names.size() == 1 && names[0] == "attention") return {Target::Q, Target::K, Target::V, Target::O};
  if (names.size() == 1 && names[0] == "mlp") return {Target::Gate, Target::Up, Target::Down};
  std::vector<Target> targets;
  for (const std::string& n : names) targets.push_back(parse_target(n, field));
  return targets;
}

LinearShape linear_shape(const ModelConfig& c, Target t) {
  const int C = c.hidden, I = c.intermediate, hd = c.head_dim();
  switch (t) {
    case Target::Q: return {C, c.heads * hd};
    case Target::K:
    case Target::V: return {C, c.kv_heads * hd};
    case Target::O: return {c.heads * hd, C};
    case Target::Gate:
    case Target::Up: return {C, I};
    case Target::Down: return {I, C};
  }
  return {};
}

}  // namespace lwb

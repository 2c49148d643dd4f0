#pragma once
// Model configuration in LLaMA terms (HF config.json field names in comments),
// the built-in presets, and the seven linear modules adapters can target.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace lwb {

struct ModelConfig {
  std::string name = "tiny";
  int hidden = 128;        // hidden_size
  int intermediate = 352;  // intermediate_size
  int layers = 4;          // num_hidden_layers
  int heads = 4;           // num_attention_heads
  int kv_heads = 2;        // num_key_value_heads
  int vocab = 260;         // vocab_size
  int max_seq = 128;       // max_position_embeddings
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;  // rms_norm_eps
  bool tie_embeddings = false;
  std::string tokenizer = "byte";
  // Rotary scaling (HF rope_scaling / rope_parameters): "default" (none) or
  // "llama3" (Llama 3.1/3.2), whose parameters below are ignored otherwise.
  std::string rope_type = "default";
  double rope_factor = 1.0;             // factor
  double rope_low_freq_factor = 1.0;    // low_freq_factor
  double rope_high_freq_factor = 4.0;   // high_freq_factor
  int rope_original_max_pos = 8192;     // original_max_position_embeddings

  int head_dim() const { return hidden / heads; }
  std::int64_t param_count() const;
  // Throws ConfigError naming the field ("model.heads", ...).
  void validate() const;
  bool operator==(const ModelConfig&) const = default;
};

// The rotary inverse frequency of dimension pair j < head_dim / 2:
// rope_theta^(-2j / head_dim), rescaled for rope_type "llama3" as
// transformers' _compute_llama3_parameters does (long wavelengths divided by
// rope_factor, short ones kept, those between interpolated smoothly).
double rope_inv_freq(const ModelConfig& c, int j);

// "tiny" (~1 M parameters, trains in seconds) and "small" (~25 M).
ModelConfig model_preset(const std::string& name);
std::vector<std::string> model_preset_names();

enum class Target : std::uint8_t { Q, K, V, O, Gate, Up, Down };
inline constexpr int kTargetCount = 7;
inline constexpr std::array<Target, kTargetCount> kAllTargets = {
    Target::Q, Target::K, Target::V, Target::O, Target::Gate, Target::Up, Target::Down};

const char* target_short_name(Target t);  // "q"
const char* target_module_name(Target t);  // "q_proj"
const char* target_hf_path(Target t);      // "self_attn.q_proj", "mlp.gate_proj"
// Accepts "q", "q_proj", "self_attn.q_proj"; throws ConfigError(field, ...) otherwise.
Target parse_target(const std::string& s, const std::string& field);
// A comma-separated list of targets, or "all", "attention" (q, k, v, o) or
// "mlp" (gate, up, down); ConfigError(field, ...) for an unknown name.
std::vector<Target> parse_targets(const std::string& list, const std::string& field);

struct LinearShape {
  int in = 0, out = 0;
};
LinearShape linear_shape(const ModelConfig& c, Target t);

}  // namespace lwb

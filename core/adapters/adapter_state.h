#pragma once
// An adapter lifted off the device: its config, lineage and tensors under PEFT
// key names. This is what the store keeps, PEFT folders hold, and LoRAHub
// composes. Tensors always have the full trained shape (AdaLoRA: init_r), so a
// state loads into a model built from its config; slicing to the kept AdaLoRA
// ranks happens only in the PEFT files (core/io/peft.h).
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/adapters/adapter_config.h"
#include "core/model/model.h"

namespace lwb {

struct HostTensor {
  std::vector<std::int64_t> shape;
  std::vector<float> values;
  std::int64_t numel() const;
};

struct AdapterState {
  AdapterConfig config;
  std::string base_model;        // base_model_name_or_path, e.g. "lora-workbench/tiny"
  std::string base_fingerprint;  // of the base weights it was trained on
  // The base model's shape; layers == 0 when unknown (a PEFT folder written
  // elsewhere carries no lwb.model_config).
  ModelConfig model;
  // "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" -> tensor
  std::map<std::string, HostTensor> tensors;
  // AdaLoRA: module hf name ("model.layers.0.self_attn.q_proj") -> kept flag
  // per triplet (init_r entries). Empty when the mask was never fixed.
  std::map<std::string, std::vector<bool>> rank_pattern;
  // AdaLoRA's total_step (the schedule's length); 0 when unknown.
  std::int64_t total_step = 0;
  // Kept in another variant's form after training (PiSSA: converted to a plain
  // LoRA of the original base): the config it trained with (method, r, alpha,
  // use_rslora, options), so that its own form can be written again
  // (own_form_of). None when the state is in its own form.
  std::optional<AdapterConfig> trained_as;
  // Read from PEFT's files in a variant's own form that is relative to a base
  // derived from the original (PiSSA's residual): applying it to the original
  // base as it is would be wrong, so every use refuses it (adapter_mismatches)
  // until to_kept_form() rewrote it against the original base's weights.
  bool needs_original_base = false;

  bool model_known() const { return model.layers > 0; }
};

// "base_model.model." + module name + "." + suffix, as PEFT saves them.
std::string peft_key(const std::string& module_hf_name, const std::string& suffix);
// "base_model." + suffix: a tensor of the whole adapter (VeRA's "vera_A").
std::string model_level_key(const std::string& suffix);
// "model.layers.3.mlp.down_proj"
std::string module_hf_name(int layer, Target target);
struct ModuleId {
  int layer = 0;
  Target target = Target::Q;
};
// The inverse of module_hf_name (any layer index); nullopt for other names.
std::optional<ModuleId> parse_module_hf_name(std::string_view name);

// rank_pattern is the frozen mask of a variant that masks ranks (AdaLoRA);
// every entry must name an adapted module and hold r flags (ConfigError).
AdapterState extract_adapter(const Model& model, const AdapterConfig& config, const std::string& base_model,
                             const std::string& base_fingerprint,
                             const std::map<std::string, std::vector<bool>>& rank_pattern = {},
                             std::int64_t total_step = 0);
// Uploads an adapter into a model built with the same config; every key and
// shape must match (FormatError naming the key otherwise).
void load_adapter(Model& model, const AdapterState& state, const std::string& source);

// Everything that keeps `state` from fitting a base model of shape `base`,
// one message per problem, each naming the key or module: missing and
// unexpected keys, wrong shapes, layers beyond the model, a rank above
// min(in, out), AdaLoRA rank_pattern entries that do not fit.
std::vector<std::string> adapter_mismatches(const AdapterState& state, const ModelConfig& base);
// FormatError(source, ...) listing the mismatches (the first kMaxListedMismatches
// and how many more); returns when there is none.
constexpr std::size_t kMaxListedMismatches = 20;
void check_adapter_fits(const AdapterState& state, const ModelConfig& base, const std::string& source);

// "" when every value is finite, else which tensor holds NaN or infinite
// values, how many, and how many other tensors do too.
std::string non_finite_tensors(const AdapterState& state);

// ---- a variant's own and kept forms (VariantDescriptor::PeftForm) -------------

// Rewrites a state marked needs_original_base as its variant's kept form
// (PiSSA: the plain LoRA of the original base) from the original base's
// weights; nothing for any other state. FormatError naming `source` when its
// variant cannot reproduce the derived base from `original`.
void to_kept_form(AdapterState& state, const Model& original, const std::string& source);
// The kept adapter in the own form of the variant it trained as (PiSSA's A
// and B of rank r, relative to the residual base), or with on_derived_base as
// the plain LoRA of that derived base; ConfigError("export.form") naming the
// adapter's variant when it has no other form.
AdapterState own_form_of(const AdapterState& kept, const std::string& label, bool on_derived_base = false);
// The base the own form is relative to (PiSSA's residual): `base` with each
// adapted linear's weight replaced by the variant's residual. `derived` is a
// materialised fp32 model of base's config.
void derive_base_of(const Model& base, const AdapterState& kept, Model& derived);

// ---- merged and re-factored exports -----------------------------------------

// Fills `merged` (materialised, same config as `base`, no adapters) with the
// base weights of `base` plus the adapter merged in by the modules' own
// merge_into_base (W + sBA; DoRA (m/n)(W + sBA); AdaLoRA W + cB(E*A)), after
// their initialisation from the base, whose tensors the file's then replace.
// `base` may be a plain model or the adapted model itself (its base weights are used
// either way, bf16 frozen weights widened to fp32) and is left untouched: the
// merge runs in an fp32 scratch model.
void merge_adapter_into_base(const Model& base, const AdapterState& adapter, Model& merged);

// W_now - W_start [out, in] for every module of `targets`, with W_start read
// by HF name from `start_checkpoint` (a base checkpoint or HF model.safetensors)
// and W_now from `now` (a full fine-tuning's model, for extracting a LoRA).
// Keyed by module hf name.
std::map<std::string, HostTensor> module_deltas(const Model& now, const std::filesystem::path& start_checkpoint,
                                                const std::vector<Target>& targets);

struct LoraFromDelta {
  AdapterState state;
  // Module hf name -> ||dW - BA||_F / ||dW||_F of the truncated SVD (0 for a
  // zero dW).
  std::map<std::string, double> relative_error;
};
// A plain LoRA of rank `rank` approximating per-module updates dW [out, in]
// (keyed by module hf name, every layer with the same targets) by truncated
// SVD: B = U sqrt(S), A = sqrt(S) V^T, lora_alpha = rank so the scaling is 1.
// ConfigError when the modules do not form a PEFT target set or the rank does
// not fit a module.
LoraFromDelta lora_from_delta(const std::map<std::string, HostTensor>& deltas, int rank, const ModelConfig& model,
                              const std::string& base_model, const std::string& base_fingerprint);

}  // namespace lwb

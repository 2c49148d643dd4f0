#pragma once
// A variant (LoRA, DoRA, AdaLoRA, ReLoRA, full fine-tuning, ...) is one
// descriptor: its names, its settings with their checks and the form's text,
// the tensors each adapted module holds, the modules and the step-level
// controller it builds, how PEFT files hold it, what it can do, the events it
// reports and its arm of the method comparison. Code outside core/adapters
// never switches on a variant; it asks the descriptor. Each variant defines
// its descriptor in its own file and is listed once in registry.cpp.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/adapters/adapter_config.h"
#include "core/model/config.h"

namespace lwb {

class AdapterLinear;
class Model;
class VariantController;
class PeftConfigReader;
struct AdapterState;
struct HostTensor;
struct ScheduleConfig;

// ---- settings ------------------------------------------------------------

enum class FieldKind : std::uint8_t { Int, Float, Bool, Choice, Targets };

// One adapter setting as the config, `--set` and the window's form see it.
struct AdapterField {
  std::string key;  // "adapter.r", "adapter.adalora.target_r"
  FieldKind kind = FieldKind::Int;
  std::string label;                 // the form's row label
  std::string help;                  // the form's tooltip
  std::vector<std::string> choices;  // Choice: what the form lists
  std::int64_t max = 0;              // Int: the largest value the text may hold
  std::function<std::string(const AdapterConfig&)> get;
  // Reads the text (ConfigError naming the key for text of the wrong kind);
  // ranges are checked by AdapterConfig::validate, so a form can show them.
  std::function<void(AdapterConfig&, const std::string&)> set;
  // Whether the setting means anything for this config (the form hides it otherwise).
  std::function<bool(const AdapterConfig&)> applies;
};

// Bounds for option declarations: no upper bound, and the largest step
// count an Int option may hold (exact in the double that options are kept in).
inline constexpr double kUnbounded = std::numeric_limits<double>::infinity();
inline constexpr std::int64_t kMaxStepCount = std::int64_t{1} << 53;

// A setting of one variant, kept in AdapterConfig::options under `key`
// ("adalora.target_r"; the config key is "adapter." + key).
struct VariantOption {
  std::string key;
  FieldKind kind = FieldKind::Int;  // Int, Float or Bool
  double fallback = 0;              // the default
  // Accepted values: from lo to hi, each end open or closed. The message says
  // "must be positive", "must not be negative" or "must be in [lo, hi)".
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  std::int64_t max = std::numeric_limits<std::int32_t>::max();  // Int: the largest the text may hold
  std::string label, help;
};

// ---- tensors ---------------------------------------------------------------

// One tensor of the adapter under its PEFT key suffix ("lora_A.weight" of
// every adapted module; model_level: one for the whole model under
// "base_model." + suffix). Its shape is a function of the module's in and out
// features and the rank; a model-level tensor gets the largest in and out
// over the adapted modules (VeRA's shared projections, sliced per module).
struct AdapterTensorSpec {
  std::string suffix;
  std::function<std::vector<std::int64_t>(std::int64_t in, std::int64_t out, std::int64_t r)> shape;
  bool trainable = true;
  bool model_level = false;
};

// ΔW = scaling · B · A of one module, in double.
struct LoraFactors {
  int rank = 0;
  double scaling = 0;
  std::vector<double> A, B;  // [rank, in], [out, rank]
};
// Reads a tensor of the adapter being converted: (suffix, model_level, the
// shape the config implies); throws FormatError naming the adapter and key.
using AdapterTensorReader =
    std::function<std::vector<double>(const std::string& suffix, bool model_level, std::vector<std::int64_t> shape)>;

// ---- what it can do --------------------------------------------------------

struct VariantCapabilities {
  // A stopped or killed run continues from its saved state (parameters, AdamW
  // moments, data position): nothing else of the run's state is lost.
  bool resumable = true;
  std::string not_resumable_why;
  // The adapter alone is a LoRA (A, B, s) of its base, so LoRAHub and the
  // linear / cat / svd merges take it (lora_form below).
  bool composable = true;
  std::string not_composable_why;
  // Trains over bf16 frozen projections (model.frozen_dtype = bf16).
  bool bf16_base = true;
  std::string not_bf16_why;
  // r ≤ min(in, out) of every target: a per-module factor pair has no rank
  // beyond it. VeRA's projections are shared and sized by the model's largest
  // in and out, so any r is a real shape there (PEFT's default r = 256 exceeds
  // small models' k and v projections).
  bool rank_within_target_shape = true;
};

// ---- PEFT files ------------------------------------------------------------

// What adapter_config.json says beyond the AdapterConfig.
struct PeftAdapterFields {
  AdapterConfig config;
  std::string base_model;  // base_model_name_or_path
  std::map<std::string, std::vector<bool>> rank_pattern;
  std::int64_t total_step = 0;
};

struct PeftForm {
  std::string type;  // peft_type: "LORA", "ADALORA", "VERA"; empty: no PEFT form
  // Among configs of `type`, whether this variant reads it (LoRA vs DoRA:
  // use_dora). A variant that never claims one is read only when the file's
  // lwb.method metadata names it (ReLoRA: a LoRA on disk).
  std::function<bool(const PeftConfigReader&)> claims;
  // Reads what no other variant of `type` claims (LoRA for peft_type LORA),
  // refusing what it cannot reproduce.
  bool fallback = false;
  // Fills the fields (FormatError naming the file and field for anything
  // this program cannot reproduce).
  std::function<void(const PeftConfigReader&, PeftAdapterFields&)> read;
  std::function<void(const AdapterState&, nlohmann::json&)> write;
  // Optional: the tensors as the file holds them (AdaLoRA: sliced to the kept
  // ranks), and back to the state's full shapes after reading.
  std::function<void(const AdapterState&, std::map<std::string, HostTensor>&)> to_file;
  std::function<void(AdapterState&, const std::map<std::string, std::string>& key_in_file, const std::string& source)>
      from_file;
  // A variant whose trained adapter is kept in another form (PiSSA: the plain
  // LoRA of the original base that PEFT's path_initial_model_for_weight_conversion
  // writes, AdapterState::trained_as naming it) and whose own form is relative
  // to a base derived from the original (PiSSA's residual W - s B0 A0):
  //  - own_form: the kept adapter back in the variant's own form, as PEFT's
  //    plain save_pretrained writes it, or (on_derived_base) as the plain LoRA
  //    of the derived base that PEFT's example saves beside it;
  //  - residual: the derived base's weight of one module [out, in] from the
  //    original W and the kept adapter's tensors;
  //  - to_kept_form: its own form read from PEFT's files rewritten as the kept
  //    form, given the original base (FormatError naming `source` when the
  //    derived base cannot be reproduced from it).
  // A state read in the own form is marked (AdapterState::needs_original_base)
  // and refused wherever it would be applied before to_kept_form ran.
  std::function<AdapterState(const AdapterState& kept, bool on_derived_base)> own_form;
  std::function<std::vector<double>(const AdapterState& kept, const std::string& module, std::vector<double> w,
                                    int in, int out)>
      residual;
  std::function<void(AdapterState&, const Model& original, const std::string& source)> to_kept_form;
};

// ---- the planner's pytorch-eager profile ------------------------------------

// What autograd keeps for one adapted module of PEFT's implementation.
struct EagerModule {
  std::int64_t in = 0, out = 0, r = 0, N = 0;  // N = batch · sequence
  std::size_t activation_bytes = 2;             // per element
  std::size_t adapter_bytes = 2;
};
struct EagerTerm {
  std::string what;
  // Per adapted module; the planner sums it over the targets.
  std::function<std::string(const EagerModule&)> formula;
  // 0 where the term does not apply to this config.
  std::function<std::size_t(const AdapterConfig&, const EagerModule&)> bytes;
};

// ---- the comparison ---------------------------------------------------------

// One run of `compare tiny-methods`: settings over the tiny-lora preset.
struct ComparisonArm {
  std::string label;        // "rslora"
  std::string description;  // "rsLoRA r=8"
  std::vector<std::pair<std::string, std::string>> settings;  // config key, value
  // The preset's learning rate (or the one the settings give) times this.
  double lr_factor = 1;
  // Where the arm's learning rate comes from (a paper, a README, how it was
  // derived), for the comparison's report.
  std::string lr_note;
};

// A step the loss plot marks, by event kind ("relora.reset" -> "ReLoRA reset").
struct EventMarker {
  std::string kind, label;
};

struct ControllerContext {
  const AdapterConfig& adapter;
  const ScheduleConfig& schedule;
  double max_lr;
  std::int64_t total_steps;
  std::uint64_t seed;
};

// ---- the descriptor ----------------------------------------------------------

struct VariantDescriptor {
  std::string name;   // "lora": adapter.method, the store, lwb.method metadata
  std::string title;  // "LoRA": menus and messages
  // What it trains and why one would pick it, for a researcher choosing a
  // method (the form's tooltip on adapter.method).
  std::string description;
  // Other names selecting it, with what they set ("rslora": use_rslora).
  // Choosing any of them sets adapter.method to `name`, then calls select
  // (when set) with the name chosen (the variant's own or an alias).
  std::vector<std::string> aliases;
  std::function<void(AdapterConfig&, const std::string& chosen)> select;
  // The name a config of this variant goes by (an alias its settings make);
  // unset: `name`.
  std::function<std::string(const AdapterConfig&)> display_name;
  bool is_adapter = true;

  // Which shared settings apply, the variant's own, and the checks across
  // them (ranges of options are checked from their declarations).
  bool uses_alpha = true, uses_dropout = true, uses_init = false, uses_rslora = false;
  std::vector<VariantOption> options;
  std::function<void(const AdapterConfig&, const ModelConfig&, std::int64_t total_steps, std::int64_t warmup_steps)>
      validate;
  std::function<double(const AdapterConfig&)> scaling;

  // The tensors: the modules declare them from this table, and the state's
  // expected shapes, the trainable-parameter count and the PEFT keys come
  // from it too.
  std::vector<AdapterTensorSpec> tensors;

  // Replaces the targeted linears of a model (before materialisation).
  std::function<void(Model&, const AdapterConfig&)> attach;
  // The module of one targeted linear on its own (the inference engine's
  // adapter sets over a shared base); empty for a variant without one.
  std::function<std::unique_ptr<AdapterLinear>(int layer, Target, const ModelConfig&, const AdapterConfig&)> module;
  // What happens around each optimiser step; empty or returning nullptr: nothing.
  std::function<std::unique_ptr<VariantController>(const ControllerContext&)> controller;

  PeftForm peft;
  // Keeps a rank pattern: per module, which of its r rank-1 components
  // survived (AdaLoRA's mask; AdapterState::rank_pattern).
  bool has_rank_pattern = false;
  // The adapter as LoRA factors of one module from its own tensors (empty
  // when it is not composable).
  std::function<LoraFactors(const AdapterConfig&, int in, int out, const AdapterTensorReader&)> lora_form;
  // Members of a lorahub or linear merge add their factors only within one
  // family (AdaLoRA's B·diag(E)·A beside AdaLoRA, LoRA beside rsLoRA and ReLoRA).
  std::string factor_family;

  VariantCapabilities caps;
  std::vector<EventMarker> markers;
  std::vector<ComparisonArm> compare_arms;

  // pytorch-eager planner: per adapted module, what PEFT's forward keeps
  // beyond the shared LoRA-style terms, and how many parameter-sized
  // averages its training keeps (AdaLoRA's RankAllocator: 3).
  std::vector<EagerTerm> eager_terms;
  int eager_state_mirrors = 0;
  std::string eager_state_what;
};

// ---- the registry -------------------------------------------------------------

// Every variant, in the order menus list them.
std::span<const VariantDescriptor* const> variants();
// By name or alias; nullptr when none.
const VariantDescriptor* find_variant(const std::string& name_or_alias);
// Names and aliases, for menus and messages ("full, lora, rslora, ...").
std::vector<std::string> variant_names();
// Every adapter setting: the shared ones, then each variant's own.
const std::vector<AdapterField>& adapter_fields();
// The variant whose markers name this event kind; "" when none marks it.
std::string event_marker(const std::string& event_kind);

// ---- helpers for descriptors ----------------------------------------------------

// attach and module for variants with one module per targeted linear.
template <class Module>
void attach_each(Model& model, const AdapterConfig& config);
template <class Module>
std::unique_ptr<AdapterLinear> module_of(int layer, Target t, const ModelConfig& model, const AdapterConfig& config);
// The shape of a table entry for a module of this size.
std::vector<std::int64_t> tensor_shape(const AdapterTensorSpec& spec, std::int64_t in, std::int64_t out, std::int64_t r);
// The largest in and out over the targeted linears: what a model-level
// entry of the table is sized by.
LinearShape adapted_extent(const AdapterConfig& config, const ModelConfig& model);

}  // namespace lwb

#include "core/model/model.h"

namespace lwb {

template <class Module>
std::unique_ptr<AdapterLinear> module_of(int layer, Target t, const ModelConfig& model, const AdapterConfig& config) {
  return std::make_unique<Module>(layer, t, linear_shape(model, t), config);
}

template <class Module>
void attach_each(Model& model, const AdapterConfig& config) {
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : config.targets) model.replace_linear(module_of<Module>(l, t, model.config(), config));
}

}  // namespace lwb

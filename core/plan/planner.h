#pragma once
// Memory planner: where the memory of a training run goes, before it starts.
// Analytic: every term is a formula in the model's dimensions (documented next
// to its code and returned with it), in the ledger's six categories, per layer
// and at model level. Two implementation profiles:
//
//  * workbench: this engine's own buffers, counted from the engine's own
//    declarations (the model's and the adapters' declare(), AdamW's mirrors,
//    the variant controller's buffers) with nothing allocated, 256-byte slot
//    alignment included, the CPU attention scratch for a given thread count.
//    Matches the MemoryLedger of a built run exactly (tests/core/test_planner).
//  * pytorch-eager: what HF transformers (LlamaForCausalLM, eager attention)
//    with PEFT and torch.optim.AdamW keep alive at the start of the backward,
//    for real model sizes. Checked against the LISA paper's LLaMA-2-7B figures
//    (see lisa_llama2_7b_input()).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/adapters/adapter_config.h"
#include "core/tensor/ledger.h"
#include "core/model/config.h"

namespace lwb {

enum class PlanProfile : std::uint8_t { Workbench, PytorchEager };
const char* plan_profile_name(PlanProfile p);  // "workbench", "pytorch-eager"
PlanProfile parse_plan_profile(const std::string& s);

enum class NumberFormat : std::uint8_t { F32, BF16, F16 };
std::size_t number_format_bytes(NumberFormat f);
const char* number_format_name(NumberFormat f);  // "fp32", "bf16", "fp16"

struct PlanPrecision {
  NumberFormat weights = NumberFormat::F32;      // base weights (frozen or trained)
  NumberFormat activations = NumberFormat::F32;  // what the forward keeps
  NumberFormat adapter = NumberFormat::F32;      // adapter parameters and gradients
  bool master_weights = false;                   // 16-bit trainable tensors also kept as an fp32 master copy
};
// "fp32", "bf16", "fp16" (everything in that format), "mixed" (bf16 weights
// and activations, fp32 master copies of trained weights, fp32 adapters) or
// "bf16-frozen" (bf16 frozen base weights, everything else fp32: the engine's
// model.frozen_dtype = bf16, where the workbench profile keeps norms,
// embeddings and lm_head in fp32 as the engine does).
PlanPrecision parse_plan_precision(const std::string& s);
std::string plan_precision_name(const PlanPrecision& p);

// AdamW's two moments: fp32, 16-bit (what torch.optim.AdamW keeps for bf16
// parameters) or bitsandbytes' blockwise 8-bit.
enum class OptimizerStates : std::uint8_t { F32, BF16, Int8 };
const char* optimizer_states_name(OptimizerStates s);  // "fp32", "bf16", "8bit"
OptimizerStates parse_optimizer_states(const std::string& s);
// PyTorch's default: moments in the dtype of the tensor they update (fp32 for
// mixed precision, whose optimiser updates the fp32 masters).
OptimizerStates default_optimizer_states(const PlanPrecision& p);

struct PlanInput {
  ModelConfig model;
  AdapterConfig adapter;  // method and its settings, r (AdaLoRA: init_r), targets, dropout
  std::int64_t batch = 1;
  std::int64_t seq = 512;
  PlanPrecision precision;
  OptimizerStates optimizer = OptimizerStates::F32;
  bool checkpointing = false;  // pytorch-eager only: the engine keeps every activation
  PlanProfile profile = PlanProfile::Workbench;
  int threads = 1;  // workbench: OpenMP threads, which size the CPU attention scratch
};

// Layer value of a term that every transformer layer has once.
inline constexpr int kEveryLayer = -2;

struct PlanTerm {
  int layer = kModelLevel;  // kModelLevel, kEveryLayer or one layer index
  MemCategory category = MemCategory::Workspace;
  std::string what;       // "q, k, v after rotary"
  std::string formula;    // "3 · N·qd · 2 B"
  std::size_t bytes = 0;  // for one layer when layer == kEveryLayer
};

struct MemoryPlan {
  PlanInput input;
  std::vector<PlanTerm> terms;
  std::vector<LedgerSnapshot::Row> rows;  // kModelLevel first, then every layer (as the ledger)
  CategoryBytes totals{};
  std::size_t total = 0;
  std::int64_t trainable_params = 0;
  std::int64_t total_params = 0;  // base model plus adapter parameters
};

// Throws ConfigError naming the setting ("plan.profile", "adapter.r", ...).
MemoryPlan plan_memory(const PlanInput& input);

// A plan's method: every variant name and alias ("rslora",
// "dora-norm-grad"; core/adapters/descriptor.h).
std::string plan_method_name(const AdapterConfig& a);
// Selects the method (and what its alias sets) on `a`.
void set_plan_method(AdapterConfig& a, const std::string& name);
std::vector<std::string> plan_method_names();

// Text for the terminal and the window. Sizes in binary units, as every view
// shows them (GiB = 2^30 bytes); the window's labels take one decimal.
std::string format_plan_bytes(double bytes, int decimals = 2);             // "12.55 GiB", "1.47 MiB", "512 B"
std::string describe_plan_input(const PlanInput& in);                      // one line of the knobs
std::string format_plan_table(const MemoryPlan& plan);                     // per category, every term with its formula
std::string format_plan_layers(const MemoryPlan& plan);                    // per layer (equal neighbours merged)
std::string format_plan_comparison(const std::vector<MemoryPlan>& plans);  // methods side by side

// ---- model configs ----------------------------------------------------------
// Names of the HF config.json files in <resources>/models ("llama-2-7b", ...).
std::vector<std::string> shipped_model_names(const std::filesystem::path& resources);
// A built-in preset ("tiny", "small"), a shipped config name, or the path of an
// HF config.json (LLaMA family). The name is the preset, shipped name or file stem.
ModelConfig load_plan_model(const std::string& name_or_path, const std::filesystem::path& resources);

// Defaults shared by the plan command and the planner window. The workbench
// profile for the built-in presets (the engine's own buffers), pytorch-eager
// for every other model; fp32 for the workbench (the engine's dtype), bf16 for
// pytorch-eager; 512 tokens or the model's maximum if smaller; the OpenMP
// threads the CPU backend runs with.
PlanProfile default_plan_profile(const std::string& model_name);
std::string default_plan_precision(PlanProfile p);
std::int64_t default_plan_seq(const ModelConfig& model);
int default_plan_threads();

// The LISA paper's memory comparison (Pan et al. 2024, Figure 3: LLaMA-2-7B,
// batch 1, weights / activations / gradients / optimiser state): full fine-
// tuning ≈ 60 GB, LoRA ≈ 23 GB, LoRA saves ≈ 25 GB of optimiser state and
// ≈ 14 GB of gradients (GB = 10^9 B). The pytorch-eager profile reproduces
// these within 10% under the assumptions this input encodes; see planner.cpp.
PlanInput lisa_llama2_7b_input(const ModelConfig& llama2_7b, const std::string& method);
// The two methods the paper compares: full fine-tuning and LoRA.
std::vector<std::string> lisa_methods();

}  // namespace lwb

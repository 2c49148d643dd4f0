#pragma once
// kohya_ss-style adapter tools, the numerical part (core/compose/library_jobs.h
// runs them against the store and records their lineage):
//  - resize: every module's update ΔW = s·B·A re-factored at a new rank by
//    truncated SVD (B' = U_r·√S_r, A' = √S_r·V_rᵀ, lora_alpha = r so the
//    scaling is 1), as kohya's resize_lora.py does. The energy a rank keeps,
//    Σ_{i≤r} σᵢ² / Σ σᵢ², is the squared relative Frobenius accuracy of the
//    result (Eckart–Young: ‖ΔW − ΔW_r‖²_F = Σ_{i>r} σᵢ²).
//  - extract: a LoRA of rank r from a full fine-tuning, the same SVD of
//    W_ft − W_base (extract_lora_from_models.py).
//  - merge: a base with Σ rᵢ·ΔWᵢ of several adapters added in (merge_lora.py):
//    the members are concatenated (exactly that sum, any targets and ranks)
//    and merged by each module's own rule; one adapter at ratio 1 merges
//    as itself, so a DoRA adapter can be merged alone.
//  - verify: whether an adapter fits a base, was trained on it, holds only
//    finite values and merges into finite weights, with the size of its
//    update against each weight.
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/compose/merge.h"
#include "core/model/model.h"

namespace lwb::compose {

// Called after each module; a callback that throws ends the tool.
using ToolProgress = std::function<void(int done, int total)>;

struct ModuleSpectrum {
  std::string module;            // "model.layers.0.self_attn.q_proj"
  std::vector<double> singular;  // of the module's ΔW, largest first
  double retained = 1;           // Σ_{i≤r} σᵢ² / Σ σᵢ² (1 for a zero ΔW)
};

struct Refactored {
  AdapterState state;  // a plain LoRA of `rank`
  int rank = 0;
  std::vector<ModuleSpectrum> modules;
  double retained = 1;      // over all modules: Σ kept σ² / Σ σ²
  double min_retained = 1;  // of the worst module
};

// The energy the first `rank` singular values hold (1 when all are zero).
double retained_energy(std::span<const double> singular, int rank);

// ConfigError("resize.rank", ...) for a rank below 1 or above a module's
// min(in, out); IncompatibleMemberError for a DoRA adapter (its magnitude
// vectors are not a low-rank update).
Refactored resize_adapter(const AdapterState& adapter, int rank, const ToolProgress& progress = {});

// W_ft − W_base of `targets` in every layer, at `rank`; `base_checkpoint`
// holds the weights the fine-tuning started from.
Refactored extract_lora(const Model& fine_tuned, const std::filesystem::path& base_checkpoint,
                        const std::vector<Target>& targets, int rank, const std::string& base_model,
                        const std::string& base_fingerprint, const ToolProgress& progress = {});

// Fills `merged` (materialised, with base's config) with base + Σ ratios[i]·ΔWᵢ.
// ConfigError("merge.ratios", ...) when the counts differ or nothing is given;
// IncompatibleMemberError for members that cannot be concatenated.
void merge_into_base(const Model& base, std::span<const Member> adapters, std::span<const double> ratios,
                     Model& merged);

struct Verification {
  std::vector<std::string> problems;  // each a sentence naming the key, module or tensor
  std::vector<std::string> notes;
  // ‖W_merged − W‖_F / ‖W‖_F per module, in module order.
  std::vector<std::pair<std::string, double>> update_ratio;
  bool ok() const { return problems.empty(); }
};
Verification verify_adapter(const AdapterState& adapter, const Model& base, const std::string& base_fingerprint);

}  // namespace lwb::compose

#pragma once
// AdaLoRA's training-time machinery, as PEFT's RankAllocator and
// AdaLoraModel.update_and_allocate: importance EMAs of every A, E, B entry,
// triplet scores, the cubic budget schedule, masking E, freezing the mask
// into rank_pattern after T - tfinal, and the orthogonal regulariser.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/adapters/adalora.h"
#include "core/adapters/variant.h"

namespace lwb {

// The allocator's report of the kept ranks: after each mask update (kind
// "adalora.ranks") and as the run's final fact ("adalora.final_ranks").
struct AdaLoraRanksEvent {
  static constexpr const char* kKind = "adalora.ranks";
  static constexpr const char* kFinalKind = "adalora.final_ranks";
  bool final_summary = false;          // the run's final fact (no step or budget)
  std::optional<std::int64_t> step;    // 0-based step of the mask update
  std::int64_t budget = 0;
  bool frozen = false;                 // the mask is final (after T - tfinal)
  std::map<std::string, int> ranks;    // module hf name -> kept rank
  std::map<std::string, std::vector<bool>> rank_pattern;  // final summary only
  std::int64_t kept_total() const;
  VariantEvent encode() const;
  // nullopt for an event of another kind.
  static std::optional<AdaLoraRanksEvent> decode(const VariantEvent& e);
};

struct AdaLoraBudget {
  std::int64_t budget = 0;
  bool mask = false;
};
// PEFT's budget_schedule at 0-based step `step`.
AdaLoraBudget adalora_budget(const AdaLoraOptions& o, std::int64_t init_bgt, std::int64_t target_bgt,
                             std::int64_t step, std::int64_t total_steps);

class AdaLoraController : public VariantController {
 public:
  AdaLoraController(const AdapterConfig& config, std::int64_t total_steps);
  std::vector<const TensorArena*> declare(Model& model) override;
  void attach(Model& model, AdamW& optimizer, MemoryLedger& ledger) override;
  double regularize() override;
  void after_step(std::int64_t step, double grad_scale, std::vector<VariantEvent>& events) override;
  std::vector<VariantEvent> summary() override;
  // Only a final mask slices the export: an earlier one may hide regrown
  // triplets. total_step is the schedule's length.
  void finish_adapter_state(AdapterState& state) const override;

  // Kept rank per module, "model.layers.0.self_attn.q_proj" -> rank.
  std::map<std::string, int> kept_ranks() const;
  const std::map<std::string, std::vector<bool>>& rank_pattern() const { return rank_pattern_; }
  // True once the mask is final (after T - tfinal); before that masked
  // triplets may have regrown since the last mask update.
  bool mask_frozen() const { return frozen_; }
  std::int64_t init_budget() const { return init_bgt_; }
  std::int64_t target_budget() const { return target_bgt_; }
  // Triplet scores of every module in order (for tests and the UI).
  std::vector<std::vector<double>> triplet_scores() const;
  const TensorArena& importance() const { return *ipt_; }
  const TensorArena& uncertainty() const { return *unc_; }

 private:
  void update_importance(double grad_scale);
  void mask_to_budget(std::int64_t budget);
  void apply_rank_pattern();
  VariantEvent ranks_event(std::int64_t step, std::int64_t budget) const;

  AdapterConfig config_;
  AdaLoraOptions options_;
  std::int64_t total_steps_;
  Model* model_ = nullptr;
  Backend* backend_ = nullptr;
  ParameterSet* params_ = nullptr;
  std::vector<AdaLoraLinear*> modules_;
  std::int64_t init_bgt_ = 0, target_bgt_ = 0;
  std::unique_ptr<TensorArena> ipt_, unc_;  // EMAs of sensitivity and uncertainty
  std::unique_ptr<TensorArena> work_;
  Tensor orth_cov_;  // [r, r] scratch for A A^T and B^T B
  std::map<std::string, std::vector<bool>> rank_pattern_;
  bool frozen_ = false;
};

}  // namespace lwb

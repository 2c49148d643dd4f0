#pragma once
// AdaLoRA's training-time machinery, as PEFT's RankAllocator and
// AdaLoraModel.update_and_allocate: importance EMAs of every A, E, B entry,
// triplet scores, the cubic budget schedule, masking E, freezing the mask
// into rank_pattern after T - tfinal, and the orthogonal regulariser.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/adapters/adalora.h"
#include "core/adapters/variant.h"

namespace lwb {

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
  void attach(Model& model, AdamW& optimizer, MemoryLedger& ledger) override;
  double regularize() override;
  void after_step(std::int64_t step, double grad_scale, std::vector<VariantEvent>& events) override;
  std::vector<VariantEvent> summary() override;

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

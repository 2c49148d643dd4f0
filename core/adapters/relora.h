#pragma once
// ReLoRA (Lialin et al. 2023): LoRA whose update is merged into W and
// restarted every reset_every steps, so a sequence of rank-r steps builds an
// update of rank up to k r. At each reset: W += s B A, A re-drawn
// kaiming-uniform, B = 0, and the AdamW moments of A and B are magnitude-
// pruned per tensor: entries at or below the prune_ratio quantile are zeroed
// (jointly for both moments by default, see ReLoraOptions). The learning rate
// follows the jagged cosine schedule (core/optim/schedule.h).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/adapters/lora.h"
#include "core/adapters/variant.h"

namespace lwb {

// torch.quantile's default (linear interpolation between order statistics).
double quantile_linear(std::vector<double> values, double q);

class ReLoraController : public VariantController {
 public:
  // Rank of the accumulated update W_now - W_start is counted at this
  // tolerance relative to its largest singular value.
  static constexpr double kRankTolerance = 1e-4;

  ReLoraController(const AdapterConfig& config, const ScheduleConfig& schedule, double max_lr,
                   std::int64_t total_steps, std::uint64_t seed);
  void attach(Model& model, AdamW& optimizer, MemoryLedger& ledger) override;
  void before_step(std::int64_t step, std::vector<VariantEvent>& events) override;
  double learning_rate(std::int64_t step, double scheduled) const override;
  std::vector<VariantEvent> summary() override;

  // Numerical rank of W_now (+ s B A when include_adapter) - W_start for the
  // tracked modules (every target of the first and the last layer).
  std::map<std::string, int> update_ranks(bool include_adapter) const;
  int resets() const { return resets_; }
  // Fraction of moment entries kept by the last pruning.
  double last_kept_fraction() const { return last_kept_; }

 private:
  void reset(std::int64_t step, std::vector<VariantEvent>& events);

  AdapterConfig config_;
  ScheduleConfig schedule_;
  double max_lr_;
  std::int64_t total_steps_;
  std::uint64_t seed_;
  Model* model_ = nullptr;
  AdamW* optimizer_ = nullptr;
  std::vector<LoraLinear*> modules_;
  std::vector<LoraLinear*> tracked_;
  std::vector<Tensor> w_start_;  // device copies of the tracked modules' starting W
  std::unique_ptr<TensorArena> workspace_;
  int resets_ = 0;
  double last_kept_ = 1.0;
};

}  // namespace lwb

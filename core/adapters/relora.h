#pragma once
// ReLoRA (Lialin et al. 2023): LoRA whose update is merged into W and
// restarted every reset_every steps, so a sequence of rank-r steps builds an
// update of rank up to k r. At each reset: W += s B A, A re-drawn
// kaiming-uniform, B = 0, and the AdamW moments of A and B are magnitude-
// pruned per tensor: entries at or below the prune_ratio quantile are zeroed
// (jointly for both moments by default, see ReLoraOptions). The learning rate
// follows the jagged cosine schedule (core/optim/schedule.h).
//
// The controller keeps the run's starting weights W_start of every adapted
// module (host copies), so the whole update W_now + s B A - W_start is known:
// its numerical rank is reported at each reset, and the trained adapter is
// exported as one LoRA of that update relative to the original base.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/adapters/lora.h"
#include "core/adapters/variant.h"

namespace lwb {

// torch.quantile's default (linear interpolation between order statistics).
double quantile_linear(std::vector<double> values, double q);

// The settings (adapter.relora.*), read from an AdapterConfig.
struct ReLoraOptions {
  std::int64_t reset_every = 100;    // merge and re-initialise every this many steps
  std::int64_t restart_warmup = 10;  // linear LR re-warm-up after each reset
  double prune_ratio = 0.9;          // AdamW moments below this quantile are zeroed
  // The authors prune exp_avg and exp_avg_sq independently. An entry can then
  // keep a large first moment while its second moment is zeroed, and its next
  // update m / (sqrt(v) + eps) explodes: on the tiny model held-out loss goes
  // from 2.0 to 3.7 at the first reset and stays there. By default both
  // moments of an entry are kept or dropped together, ranked by the second
  // moment; `true` restores the authors' exact rule.
  bool prune_independently = false;

  ReLoraOptions() = default;
  explicit ReLoraOptions(const AdapterConfig& config);
};

// A reset ("relora.reset") and the run's final update rank ("relora.update_rank").
struct ReLoraEvent {
  static constexpr const char* kResetKind = "relora.reset";
  static constexpr const char* kUpdateRankKind = "relora.update_rank";
  bool reset = true;  // false: the final update rank
  std::int64_t step = 0;
  int resets = 0;     // the reset's number, or the run's count at the end
  double moments_kept_fraction = 1;
  double rank_tolerance = 0;
  std::map<std::string, int> update_rank;  // tracked module -> numerical rank of the update
  int max_update_rank() const;
  VariantEvent encode() const;
  static std::optional<ReLoraEvent> decode(const VariantEvent& e);
};

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
  // The whole update (every merged cycle and the live adapter) as one LoRA of
  // rank r * (resets + 1) (at most min(in, out)) relative to the original
  // base, by exact SVD: the update has at most that rank.
  void finish_adapter_state(AdapterState& state) const override;

  // W_now (+ s B A when include_adapter) - W_start of module i, [out, in].
  std::vector<double> delta(std::size_t module, bool include_adapter) const;
  // Numerical rank of that update for the tracked modules (every target of
  // the first and the last layer).
  std::map<std::string, int> update_ranks(bool include_adapter) const;
  int resets() const { return resets_; }
  // Fraction of moment entries kept by the last pruning.
  double last_kept_fraction() const { return last_kept_; }

 private:
  void reset(std::int64_t step, std::vector<VariantEvent>& events);

  AdapterConfig config_;
  ReLoraOptions options_;
  ScheduleConfig schedule_;
  double max_lr_;
  std::int64_t total_steps_;
  std::uint64_t seed_;
  Model* model_ = nullptr;
  AdamW* optimizer_ = nullptr;
  std::vector<LoraLinear*> modules_;
  std::vector<std::size_t> tracked_;            // indices into modules_
  std::vector<std::vector<float>> w_start_;     // every module's W at the start, [out, in]
  int resets_ = 0;
  double last_kept_ = 1.0;
};

const VariantDescriptor& relora_variant();

}  // namespace lwb

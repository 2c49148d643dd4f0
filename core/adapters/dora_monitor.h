#pragma once
// Watches DoRA's magnitude vectors during training: every few steps it
// reports, per adapted module, how far m has moved from its start
// (||m - m0|| / ||m0||), so the window can summarise the change per layer.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/adapters/dora.h"
#include "core/adapters/variant.h"

namespace lwb {

// The event it reports (kind "dora.magnitude").
struct DoraMagnitudeEvent {
  static constexpr const char* kKind = "dora.magnitude";
  std::int64_t step = 0;  // 0-based step after which it was taken
  std::map<std::string, double> magnitude_change;  // module hf name -> ||m - m0|| / ||m0||
  VariantEvent encode() const;
  // nullopt for an event of another kind.
  static std::optional<DoraMagnitudeEvent> decode(const VariantEvent& e);
};

class DoraMonitor : public VariantController {
 public:
  static constexpr std::int64_t kEvery = 20;  // steps between reports

  explicit DoraMonitor(std::int64_t total_steps) : total_steps_(total_steps) {}
  void attach(Model& model, AdamW& optimizer, MemoryLedger& ledger) override;
  void after_step(std::int64_t step, double grad_scale, std::vector<VariantEvent>& events) override;
  std::vector<VariantEvent> summary() override;

  std::map<std::string, double> relative_change() const;

 private:
  VariantEvent event(std::int64_t step) const;

  std::int64_t total_steps_;
  std::int64_t last_step_ = -1;  // the last step taken (0-based): a stopped run reports there
  Backend* backend_ = nullptr;
  std::vector<DoraLinear*> modules_;
  std::vector<std::vector<double>> start_;
};

}  // namespace lwb

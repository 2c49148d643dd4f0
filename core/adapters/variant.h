#pragma once
// What a variant does around the optimiser step, beyond its modules' forward
// and backward: AdaLoRA's orthogonal regulariser and rank allocator, ReLoRA's
// merge-and-reinit with its jagged learning rate. The Trainer calls these at
// fixed points of every step; plain LoRA, DoRA and full fine-tuning have none.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/adapters/adapter_config.h"
#include "core/common/variant_event.h"
#include "core/tensor/ledger.h"
#include "core/model/model.h"
#include "core/optim/adamw.h"
#include "core/optim/schedule.h"

namespace lwb {

class VariantController {
 public:
  virtual ~VariantController() = default;
  // After the model and optimiser are materialised and initialised.
  virtual void attach(Model& model, AdamW& optimizer, MemoryLedger& ledger) = 0;
  // Before step `step` (0-based) computes anything.
  virtual void before_step(std::int64_t step, std::vector<VariantEvent>& events) {}
  // After the backward: adds the variant's own loss terms to the gradients
  // and returns their value (added to the reported training loss).
  virtual double regularize() { return 0; }
  virtual double learning_rate(std::int64_t step, double scheduled) const { return scheduled; }
  // After the optimiser update of step `step`; grad_scale is the clip factor.
  virtual void after_step(std::int64_t step, double grad_scale, std::vector<VariantEvent>& events) {}
  // Final facts for the run's result (AdaLoRA ranks, ReLoRA update rank).
  virtual std::vector<VariantEvent> summary() { return {}; }
};

// nullptr for methods without step-level behaviour.
std::unique_ptr<VariantController> make_variant_controller(const AdapterConfig& adapter,
                                                           const ScheduleConfig& schedule,
                                                           double max_lr, std::int64_t total_steps,
                                                           std::uint64_t seed);

}  // namespace lwb

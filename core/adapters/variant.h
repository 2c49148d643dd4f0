#pragma once
// What a variant does around the optimiser step, beyond its modules' forward
// and backward: AdaLoRA's orthogonal regulariser and rank allocator, ReLoRA's
// merge-and-reinit with its jagged learning rate, DoRA's magnitude monitor.
// The Trainer calls these at fixed points of every step and knows no variant
// by name; the descriptor (core/adapters/descriptor.h) makes the controller.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/adapters/adapter_config.h"
#include "core/common/variant_event.h"
#include "core/model/model.h"
#include "core/optim/adamw.h"
#include "core/optim/schedule.h"
#include "core/tensor/ledger.h"

namespace lwb {

struct AdapterState;

class VariantController {
 public:
  virtual ~VariantController() = default;
  // Declares the controller's own device buffers (importance averages,
  // scratch) once the model's trainable parameters are laid out; the planner
  // counts them from here. Nothing is allocated yet.
  virtual std::vector<const TensorArena*> declare(Model& model) { return {}; }
  // After the model and optimiser are materialised and initialised:
  // declares (if not done), materialises and takes its starting state.
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
  // The trained adapter as it is kept and exported, from the modules' own
  // tensors: AdaLoRA adds its frozen rank pattern, ReLoRA replaces them by
  // its whole update relative to the original base.
  virtual void finish_adapter_state(AdapterState& state) const {}
};

// The descriptor's controller for this adapter config; nullptr for variants
// without step-level behaviour.
std::unique_ptr<VariantController> make_variant_controller(const AdapterConfig& adapter,
                                                           const ScheduleConfig& schedule,
                                                           double max_lr, std::int64_t total_steps,
                                                           std::uint64_t seed);

}  // namespace lwb

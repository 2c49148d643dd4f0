#pragma once
// AdamW over a ParameterSet: the moments are flat mirrors of the parameter
// arena (same slots, same offsets), so one step is two flat backend calls
// (the weight-decayed prefix and the rest), whatever the number of tensors.
#include "core/tensor/ledger.h"
#include "core/tensor/arena.h"
#include "core/tensor/backend.h"

namespace lwb {

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
  double grad_clip = 1.0;  // global L2 norm; <= 0 disables clipping
};

class AdamW {
 public:
  AdamW(ParameterSet& params, AdamWConfig config);
  // Lays out the two moments as mirrors of the parameters (nothing is
  // allocated: the planner counts them from here); materialize() does it too.
  void declare();
  void materialize(Backend& backend, MemoryLedger& ledger);

  // Global L2 norm of all gradients (before clipping).
  double grad_norm(Backend& backend) const;
  // One update at learning rate lr; returns the clip factor applied.
  double step(Backend& backend, double lr, double grad_norm);
  std::int64_t steps_taken() const { return step_; }
  void set_steps_taken(std::int64_t s) { step_ = s; }

  TensorArena& exp_avg() { return m_; }
  TensorArena& exp_avg_sq() { return v_; }
  const AdamWConfig& config() const { return config_; }

 private:
  ParameterSet& params_;
  AdamWConfig config_;
  TensorArena m_;
  TensorArena v_;
  std::int64_t step_ = 0;
};

}  // namespace lwb

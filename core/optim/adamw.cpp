#include "core/optim/adamw.h"

#include <cmath>

namespace lwb {

AdamW::AdamW(ParameterSet& params, AdamWConfig config)
    : params_(params),
      config_(config),
      m_(MemCategory::OptimizerState, params.params().dtype()),
      v_(MemCategory::OptimizerState, params.params().dtype()) {}

void AdamW::declare() {
  if (!m_.entries().empty()) return;
  params_.layout();
  m_.mirror(params_.params(), ".exp_avg");
  v_.mirror(params_.params(), ".exp_avg_sq");
}

void AdamW::materialize(Backend& backend, MemoryLedger& ledger) {
  declare();
  m_.materialize(backend, ledger);
  v_.materialize(backend, ledger);
}

double AdamW::grad_norm(Backend& backend) const {
  return std::sqrt(backend.sum_squares(params_.grads().flat()));
}

double AdamW::step(Backend& backend, double lr, double grad_norm) {
  ++step_;
  double clip = 1.0;
  if (config_.grad_clip > 0 && grad_norm > config_.grad_clip)
    clip = config_.grad_clip / (grad_norm + 1e-6);
  Backend::AdamWStep s{lr, config_.beta1, config_.beta2, config_.eps, 0.0, step_, clip};
  const Tensor& p = params_.params().flat();
  const Tensor& g = params_.grads().flat();
  const std::int64_t split = params_.decay_prefix_numel(), total = p.numel();
  auto range = [](const Tensor& t, std::int64_t a, std::int64_t b) {
    return t.view(a, Shape{b - a});
  };
  if (split > 0) {
    s.weight_decay = config_.weight_decay;
    backend.adamw(range(p, 0, split), range(g, 0, split), range(m_.flat(), 0, split),
                  range(v_.flat(), 0, split), s);
  }
  if (total > split) {
    s.weight_decay = 0.0;
    backend.adamw(range(p, split, total), range(g, split, total), range(m_.flat(), split, total),
                  range(v_.flat(), split, total), s);
  }
  return clip;
}

}  // namespace lwb

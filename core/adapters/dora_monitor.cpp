#include "core/adapters/dora_monitor.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/model/weights_init.h"

namespace lwb {

void DoraMonitor::attach(Model& model, AdamW&, MemoryLedger&) {
  backend_ = &model.backend();
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : kAllTargets)
      if (auto* m = dynamic_cast<DoraLinear*>(&model.linear(l, t))) {
        modules_.push_back(m);
        start_.push_back(download_values(*backend_, m->magnitude));
      }
}

std::map<std::string, double> DoraMonitor::relative_change() const {
  std::map<std::string, double> out;
  for (std::size_t i = 0; i < modules_.size(); ++i) {
    const std::vector<double> now = download_values(*backend_, modules_[i]->magnitude);
    double d2 = 0, r2 = 0;
    for (std::size_t j = 0; j < now.size(); ++j) {
      d2 += (now[j] - start_[i][j]) * (now[j] - start_[i][j]);
      r2 += start_[i][j] * start_[i][j];
    }
    out[modules_[i]->hf_name()] = r2 > 0 ? std::sqrt(d2 / r2) : 0.0;
  }
  return out;
}

VariantEvent DoraMonitor::event(std::int64_t step) const {
  nlohmann::json j = {{"step", step}};
  for (const auto& [name, change] : relative_change()) j["magnitude_change"][name] = change;
  return {"dora.magnitude", j.dump()};
}

void DoraMonitor::after_step(std::int64_t step, double, std::vector<VariantEvent>& events) {
  last_step_ = step;
  if ((step + 1) % kEvery == 0 || step + 1 == total_steps_) events.push_back(event(step));
}

std::vector<VariantEvent> DoraMonitor::summary() { return {event(last_step_)}; }

}  // namespace lwb
